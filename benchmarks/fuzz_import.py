"""Fuzz every importer with mutants of real files; print crashes, hangs and errors per format.

    python benchmarks/fuzz_import.py [--n 10000] [--seed 1] [--timeout 5] [--keep DIR]

Seeds are the shared corpus (../shared/corpus: real exports) and the format fixtures
(tests/fixtures/formats), plus an Inspect .eval archive built from its JSON log. Each mutant
applies one to three mutations: truncated bytes, a value of the wrong type, a deleted or a
duplicated field, a huge string or number, control and bidi characters, flipped bytes. It
is read by the importer exactly as `chambers import` reads it (detection, parsing, encoding
of every row). A crash is any exception other than "this file cannot be read"; a hang is a
file that takes longer than --timeout seconds. Target: 0 crashes, 0 hangs.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import signal
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures" / "formats"
_TEXT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".traj")

# ---------------------------------------------------------------------------------------------
# Seeds


def _eval_zip(log: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", json.dumps({k: v for k, v in log.items() if k != "samples"}))
        for s in log.get("samples", []):
            z.writestr(f"samples/{s['id']}_epoch_{s['epoch']}.json", json.dumps(s))
    return buf.getvalue()


def seeds() -> list[tuple[str, bytes]]:
    """(file name, bytes) of every seed file."""
    out = []
    for folder in (CORPUS, FIXTURES):
        if folder.is_dir():
            for f in sorted(folder.rglob("*")):
                if f.is_file() and f.suffix in _TEXT_SUFFIXES:
                    out.append((f.name, f.read_bytes()))
    log = FIXTURES / "inspect_log.json"
    if log.exists():
        out.append(("inspect.eval", _eval_zip(json.loads(log.read_text()))))
    return out


# ---------------------------------------------------------------------------------------------
# Mutations of a parsed JSON value


def _nodes(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, node) of a JSON value, iteratively (seeds are shallow, mutants may not be)."""
    out, stack = [], [(path, value)]
    while stack:
        p, node = stack.pop()
        out.append((p, node))
        if isinstance(node, dict):
            stack.extend((p + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((p + (i,), v) for i, v in enumerate(node))
    return out


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return root


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


WRONG = [0, -1, 1.5, 1e308, True, False, None, "", "x", [], {}, [None], {"": None}, [[[]]]]
HUGE = [
    lambda r: "A" * r.choice([10_000, 1_000_000]),
    lambda r: 10 ** r.choice([20, 300, 400]),
    lambda r: -(2**64),
    lambda r: float("1e308") * 10,  # inf: orjson writes null
    lambda r: [0] * r.choice([1000, 100_000]),
]
CONTROL = ["\x00", "\x1b[2J", "\x07", "\u202e", "\ufeff", "\ud800", "\r\n", "\x7f", "\u2028"]


def wrong_type(value: Any, rng: random.Random) -> Any:
    path, _ = rng.choice(_nodes(value))
    return _set(value, path, json.loads(json.dumps(rng.choice(WRONG))))


def delete_field(value: Any, rng: random.Random) -> Any:
    cands = [p for p, _ in _nodes(value) if p]
    if not cands:
        return value
    path = rng.choice(cands)
    parent = _parent(value, path)
    del parent[path[-1]]
    return value


def duplicate_field(value: Any, rng: random.Random) -> Any:
    lists = [(p, n) for p, n in _nodes(value) if isinstance(n, list) and n]
    dicts = [(p, n) for p, n in _nodes(value) if isinstance(n, dict) and n]
    if lists and (not dicts or rng.random() < 0.5):
        _, node = rng.choice(lists)
        i = rng.randrange(len(node))
        node.insert(i, json.loads(json.dumps(node[i])))
    elif dicts:
        _, node = rng.choice(dicts)
        key = rng.choice(list(node))
        node[key + rng.choice(["", "_", "2"])] = json.loads(json.dumps(node[key]))
    return value


def huge_value(value: Any, rng: random.Random) -> Any:
    path, _ = rng.choice(_nodes(value))
    return _set(value, path, rng.choice(HUGE)(rng))


def control_chars(value: Any, rng: random.Random) -> Any:
    strings = [(p, n) for p, n in _nodes(value) if isinstance(n, str)]
    if not strings:
        return value
    path, text = rng.choice(strings)
    i = rng.randrange(len(text) + 1)
    return _set(value, path, text[:i] + rng.choice(CONTROL) + text[i:])


def deep_nesting(value: Any, rng: random.Random) -> Any:
    path, node = rng.choice(_nodes(value))
    for _ in range(rng.choice([50, 260, 300, 1100])):
        node = rng.choice([[node], {"a": node}])
    return _set(value, path, node)


STRUCTURAL = [wrong_type, delete_field, duplicate_field, huge_value, control_chars, deep_nesting]

# ---------------------------------------------------------------------------------------------
# Mutations of bytes


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def _dumps(value: Any) -> str:
    # ensure_ascii: lone surrogates stay \ud800 escapes, as hostile files write them
    return json.dumps(value, allow_nan=True)


def _mutate_json_text(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    jsonl = len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines if line.strip())
    try:
        if jsonl:
            i = rng.randrange(len(lines))
            value = rng.choice(STRUCTURAL)(json.loads(lines[i]), rng)
            lines[i] = _dumps(value)
            return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
        value = rng.choice(STRUCTURAL)(json.loads(text), rng)
        return _dumps(value).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):  # already broken by an earlier byte mutation
        return flip_bytes(data, rng)


def _mutate_zip(data: bytes, rng: random.Random) -> bytes:
    try:
        src = zipfile.ZipFile(io.BytesIO(data))
        members = {i.filename: src.read(i) for i in src.infolist()}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError):
        return flip_bytes(data, rng)
    name = rng.choice(sorted(members))
    members[name] = _mutate_json_text(members[name], rng)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for n, body in members.items():
            out.writestr(n, body)
    return buf.getvalue()


def mutate(name: str, data: bytes, rng: random.Random) -> bytes:
    """One to three mutations of a seed file."""
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.15:
            data = truncate(data, rng)
        elif roll < 0.25:
            data = flip_bytes(data, rng)
        elif name.endswith(".eval"):
            data = _mutate_zip(data, rng)
        else:
            data = _mutate_json_text(data, rng)
    return data


# ---------------------------------------------------------------------------------------------
# Running the importer on one file


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def read_file(path: Path) -> tuple[str, int, int]:
    """(format, traces, record errors), or raises FileUnreadable: what an import would do,
    short of the database (rows are built and encoded)."""
    from app.traces.importers import FileImport
    from app.traces.importers.messages import RecordError
    from app.traces.rows import trace_row

    reader = FileImport(path)
    traces = errors = 0
    for locator, result in reader:
        if isinstance(result, RecordError):
            errors += 1
            continue
        try:
            trace_row(result, None, locator)
            traces += 1
        except RecordError:
            errors += 1
    return reader.format or "?", traces, errors


def run(n: int, seed: int, timeout: float, keep: Path | None) -> dict[str, Counter]:
    from app.traces.importers.reader import FileUnreadable

    rng = random.Random(seed)
    pool = seeds()
    stats: dict[str, Counter] = defaultdict(Counter)
    crashes: list[str] = []
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            name, data = rng.choice(pool)
            mutant = mutate(name, data, rng)
            path = Path(tmp) / f"m{i}{Path(name).suffix}"
            path.write_bytes(mutant)
            row = stats[name]
            row["runs"] += 1
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                fmt, traces, errors = read_file(path)
                row["traces"] += traces
                row["record errors"] += errors
                stats["(by format) " + fmt]["runs"] += 1
            except FileUnreadable:
                row["unreadable"] += 1
            except Hang:
                row["hangs"] += 1
                _keep(keep, path, "hang")
            except Exception:  # noqa: BLE001 - a crash is what this script counts
                row["crashes"] += 1
                crashes.append(f"{name} (mutant {i}):\n{traceback.format_exc(limit=-3)}")
                _keep(keep, path, "crash")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                path.unlink(missing_ok=True)
    for text in crashes[:10]:
        print(text)
    return stats


def _keep(keep: Path | None, path: Path, what: str) -> None:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{what}-{path.name}").write_bytes(path.read_bytes())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--keep", type=Path, help="write crashing and hanging mutants here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    stats = run(args.n, args.seed, args.timeout, args.keep)
    seconds = time.perf_counter() - t0
    cols = ["runs", "crashes", "hangs", "unreadable", "traces", "record errors"]
    print(f"{'seed file':<44}" + "".join(f"{c:>14}" for c in cols))
    total: Counter = Counter()
    for name in sorted(k for k in stats if not k.startswith("(by format)")):
        total.update(stats[name])
        print(f"{name[:43]:<44}" + "".join(f"{stats[name][c]:>14,}" for c in cols))
    print(f"{'total':<44}" + "".join(f"{total[c]:>14,}" for c in cols))
    print(
        "mutants read per detected format: "
        + ", ".join(
            f"{k.removeprefix('(by format) ')} {v['runs']}"
            for k, v in sorted(stats.items())
            if k.startswith("(by format)")
        )
    )
    print(
        f"{args.n:,} mutants in {seconds:.1f}s; target 0 crashes, 0 hangs: "
        f"{'met' if total['crashes'] == 0 and total['hangs'] == 0 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
