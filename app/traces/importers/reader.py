"""Read JSON, JSON arrays and JSONL in bounded memory, with clear errors on garbage.

`read_records(path)` yields `Item(locator, value | error)`: the locator is "line N" for JSONL
and "record N" (0-based) for arrays, so every error names where it is. A file that cannot be
read at all (missing, binary, not JSON) raises FileUnreadable.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson
import orjson

from app.workspace.errors import ChambersError

MAX_RECORD_BYTES = 64 * 1024 * 1024  # one trace; a 1 MB tool output is normal, 64 MB is not
MAX_STRING_CHARS = 16 * 1024 * 1024  # one string value (a message, a tool output)
MAX_DEPTH = 256  # JSON nesting; real traces stay well under 50
MAX_WHOLE_FILE_BYTES = 512 * 1024 * 1024  # a single top-level object is loaded whole
_SNIFF_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_ZIP_MAGIC = b"PK\x03\x04"


class FileUnreadable(ChambersError):
    """The file cannot be read as JSON or JSONL at all."""


@dataclass
class Item:
    locator: str
    value: Any = None
    error: str | None = None


def check_shape(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ValueError if `value` nests deeper than `limit` or holds an oversized string.

    Iterative, so a hostile 100,000-deep document cannot exhaust the Python stack.
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"JSON nested deeper than {limit} levels")
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and len(child) > MAX_STRING_CHARS:
                raise ValueError(
                    f"a string of {len(child) / 2**20:.1f} M characters is over the "
                    f"{MAX_STRING_CHARS // 2**20} M limit for one value"
                )


def open_text(path: Path):
    """The file opened in binary mode past a UTF-8 byte-order mark (Windows tools write one)."""
    f = path.open("rb")
    if f.read(3) != _BOM:
        f.seek(0)
    return f


def _is_jsonl(text: str) -> bool:
    """One JSON object per line. A first line that does not parse (a truncated or garbled
    record) still makes a JSONL file when a later line, unindented, is an object of its own;
    a pretty-printed object never has one."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return False
    for i, line in enumerate(lines[:50]):
        if i > 0 and line[:1] != "{":
            continue
        try:
            if isinstance(orjson.loads(line), dict):
                return True
        except orjson.JSONDecodeError:
            continue
    return False


def sniff(path: Path) -> str:
    """'jsonl', 'array', 'object' or 'zip' from the first bytes; FileUnreadable otherwise."""
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise FileUnreadable(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileUnreadable(f"{path}: is a directory") from None
    except OSError as exc:
        raise FileUnreadable(f"{path}: cannot read ({exc.strerror})") from None
    if not head.strip():
        raise FileUnreadable(f"{path}: the file is empty")
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if b"\x00" in head:
        raise FileUnreadable(f"{path}: binary data, not JSON or JSONL")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte char cut by the sniff window
            raise FileUnreadable(
                f"{path}: not UTF-8 text (invalid byte at offset {exc.start}), not JSON or JSONL"
            ) from None
        text = head[: exc.start].decode("utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "array"
    if stripped.startswith('"'):
        raise FileUnreadable(f"{path}: a bare JSON string, not a trace or a list of traces")
    if not stripped.startswith("{"):
        raise FileUnreadable(f"{path}: not JSON or JSONL (starts with {stripped[:20]!r})")
    if "\n" in stripped.rstrip() and _is_jsonl(stripped):
        return "jsonl"
    return "object"


def read_records(path: Path) -> Iterator[Item]:
    kind = sniff(path)
    if kind == "jsonl":
        yield from _read_jsonl(path)
    elif kind == "zip":
        yield from _read_eval_zip(path)
    elif kind == "array":
        yield from _read_array(path)
    else:
        yield _read_object(path)


def _read_jsonl(path: Path) -> Iterator[Item]:
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            loc = f"line {lineno}"
            if len(line) > MAX_RECORD_BYTES:
                yield Item(loc, error=_too_big(len(line)))
                continue
            try:
                value = orjson.loads(line)  # orjson itself refuses nesting deeper than 1024
                if len(line) > MAX_STRING_CHARS:  # only a line this long can hold such a string
                    check_shape(value, limit=1024)
            except orjson.JSONDecodeError as exc:
                yield Item(loc, error=_decode_error(exc, "invalid JSON"))
                continue
            except ValueError as exc:
                yield Item(loc, error=str(exc))
                continue
            yield Item(loc, value)


def _read_array(path: Path) -> Iterator[Item]:
    """Stream the items of a top-level JSON array.

    Built from yajl's low-level events rather than `ijson.items`, so that an item nested
    deeper than MAX_DEPTH is skipped with an error instead of being built (a 100,000-deep
    item would otherwise exhaust memory).
    """
    index = 0
    with open_text(path) as f:
        events = ijson.basic_parse(f, use_float=True)
        try:
            event, _ = next(events)
            if event != "start_array":
                yield Item("record 0", error="expected a JSON array")
                return
            while True:
                loc = f"record {index}"
                item = _build_item(events)
                if item is _END:
                    return
                index += 1
                value, error = item
                if error is None:
                    try:
                        check_shape(value)
                    except ValueError as exc:
                        error = str(exc)
                yield Item(loc, value if error is None else None, error)
        except ijson.common.IncompleteJSONError as exc:
            yield Item(f"record {index}", error=f"truncated or invalid JSON ({_short(exc)})")
        except (ijson.common.JSONError, ValueError) as exc:
            yield Item(f"record {index}", error=f"invalid JSON ({_short(exc)})")


_END = object()
_SCALARS = {"string", "number", "boolean", "null", "integer", "double"}


def _build_item(events: Iterator[tuple[str, Any]]) -> Any:
    """Consume one array item from `events`: (value, None), (None, error) or _END."""
    stack: list[Any] = []
    keys: list[str | None] = []
    too_deep = False
    depth = 0
    for event, value in events:
        if event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH:
                too_deep = True
            if not too_deep:
                stack.append({} if event == "start_map" else [])
                keys.append(None)
            continue
        if event == "map_key":
            if not too_deep:
                keys[-1] = value
            continue
        if event in ("end_map", "end_array"):
            if depth == 0:  # the end of the top-level array
                return _END
            depth -= 1
            if too_deep:
                if depth == 0:
                    return None, f"JSON nested deeper than {MAX_DEPTH} levels"
                continue
            done = stack.pop()
            keys.pop()
            if not stack:
                return done, None
            _attach(stack, keys, done)
            continue
        if event in _SCALARS:
            if depth == 0:
                return value, None
            if not too_deep:
                _attach(stack, keys, value)
    raise ijson.common.IncompleteJSONError("unexpected end of file")


def _attach(stack: list[Any], keys: list[str | None], value: Any) -> None:
    top = stack[-1]
    if isinstance(top, dict):
        top[keys[-1]] = value
    else:
        top.append(value)


def _read_object(path: Path) -> Item:
    size = path.stat().st_size
    if size > MAX_WHOLE_FILE_BYTES:
        raise FileUnreadable(
            f"{path}: a single JSON object of {size / 2**20:.0f} MB; write one record per line (JSONL)"
        )
    try:
        data = path.read_bytes()
        value = orjson.loads(data[3:] if data.startswith(_BOM) else data)
    except orjson.JSONDecodeError as exc:
        return Item("record 0", error=_decode_error(exc, "truncated or invalid JSON"))
    try:
        check_shape(value)
    except ValueError as exc:
        return Item("record 0", error=str(exc))
    return Item("record 0", value)


def _decode_error(exc: Exception, what: str) -> str:
    text = str(exc).lower()
    if "depth limit" in text or "recursion" in text:
        return f"JSON nested deeper than the parser allows (limit {MAX_DEPTH} levels for a trace)"
    return f"{what} ({_short(exc)})"


def _too_big(n: int) -> str:
    return (
        f"record is {n / 2**20:.1f} MB, over the {MAX_RECORD_BYTES // 2**20} MB limit for one trace"
    )


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# Inspect AI writes its logs as zip archives (.eval): a header plus one JSON member per sample.
INSPECT_EVAL_KEY = "__inspect_eval__"


def _read_eval_zip(path: Path) -> Iterator[Item]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileUnreadable(f"{path}: a damaged zip archive ({_short(exc)})") from None
    with archive:
        members = {i.filename: i for i in archive.infolist()}  # a re-logged sample: last wins
        samples = sorted(n for n in members if n.startswith("samples/") and n.endswith(".json"))
        if not samples and "header.json" not in members and "_journal/start.json" not in members:
            raise FileUnreadable(f"{path}: a zip archive, but not an Inspect AI .eval log")
        header = _zip_json(archive, members, "header.json") or _zip_json(
            archive, members, "_journal/start.json"
        )
        info = header.get("eval") if isinstance(header, dict) else None
        info = info if isinstance(info, dict) else {}
        for name in samples:
            value, error = _zip_member(archive, members[name])
            if error is None and isinstance(value, dict):
                value[INSPECT_EVAL_KEY] = {
                    k: v for k, v in info.items() if isinstance(v, (str, int, float))
                }
            yield Item(name, value if error is None else None, error)


def _zip_json(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str) -> Any:
    if name not in members:
        return None
    value, error = _zip_member(archive, members[name])
    return value if error is None else None


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[Any, str | None]:
    if info.file_size > MAX_RECORD_BYTES:
        return None, _too_big(info.file_size)
    try:
        with archive.open(info) as member:
            data = member.read(MAX_RECORD_BYTES + 1)  # the header's size may lie
        if len(data) > MAX_RECORD_BYTES:
            return None, _too_big(len(data))
        value = orjson.loads(data)
        check_shape(value)
        return value, None
    except orjson.JSONDecodeError as exc:
        return None, _decode_error(exc, "invalid JSON")
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError) as exc:
        return None, f"cannot read this member of the archive ({_short(exc)})"
