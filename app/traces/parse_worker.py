"""Parsing a file into chunks of rows, in this process or in a child process.

A big file is parsed in a child process so that parsing and database writes overlap. The child
must never outlive its parent: if the importer is killed (kill -9, a closed terminal), a child
blocked on a full queue would wait forever, holding multiprocessing's resource tracker with it.
A watchdog thread in the child exits as soon as the parent is gone.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue as queue_mod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.traces.child_process import (
    pickled,
    put_while_parent_lives,
    start_child,
    unpickle,
    widen_pipe,
)
from app.traces.importers import FileImport
from app.traces.importers.conversations import KeyOptions
from app.traces.importers.messages import RecordError
from app.traces.importers.reader import FileUnreadable
from app.traces.rows import ROW_KEYS, trace_row

BATCH_SIZE = 2000  # rows per transaction: fewer commits (each may checkpoint the WAL)

# A parsed chunk: (format, rows, errors, warnings); errors and warnings are (locator, message).
Chunk = tuple[str | None, list[dict[str, Any]], list[tuple[str, str]], list[tuple[str, str]]]


def _message(err: RecordError) -> str:
    return f"{err.field}: {err.reason}" if err.field else err.reason


def parse_chunks(
    path: Path, fmt: str | None, options: KeyOptions | None, index: bool = True
) -> Iterator[Chunk]:
    """Parse a file into chunks of BATCH_SIZE rows (with their search index entries when
    `index`). Raises FileUnreadable before the first chunk if the file cannot be read at all."""
    reader = FileImport(path, fmt, options)
    rows: list[dict[str, Any]] = []
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    try:
        for locator, result in reader:
            if isinstance(result, RecordError):
                errors.append((locator, _message(result)))
                continue
            try:
                rows.append(trace_row(result, None, locator, index))
            except RecordError as exc:
                errors.append((locator, _message(exc)))
                continue
            warnings += [(locator, str(w)) for w in result.metadata.get("import_warnings") or ()]
            if len(rows) >= BATCH_SIZE:
                yield reader.format, rows, errors, warnings
                rows, errors, warnings = [], [], []
    except FileUnreadable as exc:
        if rows or errors or reader.format:
            yield reader.format, rows, [*errors, ("", str(exc))], warnings
            return
        raise
    except Exception as exc:  # noqa: BLE001 - a reader bug must not crash the import
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        message = f"{path}: reading stopped: unexpected {type(exc).__name__} ({detail})"
        if not (rows or errors or reader.format):
            raise FileUnreadable(message) from None
        yield reader.format, rows, [*errors, ("", message)], warnings
        return
    yield reader.format, rows, errors, warnings


def _packed(chunk: Chunk) -> tuple:
    """Rows as tuples for the pipe: pickled and unpickled faster than dicts (no keys)."""
    fmt, rows, errors, warnings = chunk
    return fmt, [tuple(r.values()) for r in rows], errors, warnings


def _unpacked(packed: tuple) -> Chunk:
    fmt, rows, errors, warnings = packed
    return fmt, [dict(zip(ROW_KEYS, r, strict=True)) for r in rows], errors, warnings


def parser_process(
    path: str, fmt: str | None, options: KeyOptions | None, q: Any, parent: int, index: bool
) -> None:
    """Runs in a child process: parse and serialise while the parent writes to the database."""
    start_child(parent)
    try:
        for chunk in parse_chunks(Path(path), fmt, options, index):
            put_while_parent_lives(q, ("chunk", pickled(_packed(chunk))), parent)
            del chunk
            gc.collect()
        put_while_parent_lives(q, ("done", None), parent)
    except FileUnreadable as exc:
        put_while_parent_lives(q, ("unreadable", str(exc)), parent)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never lost
        put_while_parent_lives(q, ("crash", f"{type(exc).__name__}: {exc}"), parent)


def parallel_chunks(
    path: Path, fmt: str | None, options: KeyOptions | None, index: bool = True
) -> Iterator[Chunk]:
    """parse_chunks in a child process, so parsing and database writes overlap (two cores).

    The queue is bounded, so memory stays bounded whatever the file size.
    """
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may run Qt threads
    q = ctx.Queue(maxsize=4)
    widen_pipe(q)
    proc = ctx.Process(
        target=parser_process,
        args=(str(path), fmt, options, q, os.getpid(), index),
        daemon=True,
    )
    proc.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue_mod.Empty:
                if proc.is_alive():
                    continue
                raise FileUnreadable(
                    f"{path}: the parser process died (exit code {proc.exitcode})"
                ) from None
            if kind == "chunk":
                yield _unpacked(unpickle(payload))
            elif kind == "done":
                return
            elif kind == "unreadable":
                raise FileUnreadable(payload)
            else:
                raise FileUnreadable(f"{path}: the parser failed ({payload})")
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
        q.close()
