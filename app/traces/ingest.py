"""Import trace files into a workspace: streaming, batched, idempotent, never half-written.

Records are parsed one at a time and inserted in batches, each batch in its own transaction,
so memory stays bounded and a crash leaves only whole traces. Re-importing the same content
adds nothing: every trace carries a content hash with a unique constraint.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from app.traces.importers import IMPORTER_VERSION, FileImport, expand_paths
from app.traces.importers.conversations import KeyOptions
from app.traces.importers.messages import RecordError
from app.traces.importers.reader import FileUnreadable
from app.traces.model import TraceRecord
from app.workspace import audit
from app.workspace.db import Workspace
from app.workspace.models import ImportBatch, Trace

BATCH_SIZE = 500
PARALLEL_MIN_BYTES = 16 * 2**20  # files this big are parsed in a second process
MAX_ERRORS_KEPT = 1000  # per file; the count is always exact


@dataclass
class FileReport:
    path: str
    format: str | None = None
    batch_id: int | None = None
    records: int = 0
    imported: int = 0
    duplicates: int = 0
    errors: int = 0
    unreadable: str | None = None


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    cancelled: bool = False

    @property
    def unreadable(self) -> list[FileReport]:
        return [f for f in self.files if f.unreadable]

    def as_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "duplicates": self.duplicates, "errors": self.errors}


Progress = Callable[[str, int, int], None]  # (file, records read, traces imported so far)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


JSON_COLUMNS = ("messages", "tools", "metadata", "scores")
_COLUMNS = (
    "batch_id",
    "external_id",
    "source",
    "task",
    "task_key",
    "messages",
    "final_output",
    "tools",
    "metadata",
    "outcome",
    "outcome_label",
    "outcome_source",
    "scores",
    "n_messages",
    "n_tool_calls",
    "content_hash",
    "split",
    "imported_at",
)


def trace_row(rec: TraceRecord, batch_id: int | None) -> dict[str, Any]:
    """A row for the traces table, JSON columns already serialised (once, also for the hash)."""
    encoded = rec.encoded()
    return {
        "batch_id": batch_id,
        "external_id": rec.external_id[:512] if rec.external_id else None,
        "source": rec.source,
        "task": rec.task,
        "task_key": rec.task_key,
        "messages": encoded["messages"],
        "final_output": rec.final_output,
        "tools": encoded["tools"],
        "metadata": encoded["metadata"],
        "outcome": rec.outcome,
        "outcome_label": rec.outcome_label,
        "outcome_source": rec.outcome_source,
        "scores": encoded["scores"],
        "n_messages": rec.n_messages,
        "n_tool_calls": rec.n_tool_calls,
        "content_hash": rec.content_hash(encoded),
        "split": rec.split,
        "imported_at": datetime.now(UTC),
    }


def _insert_sql(dialect: str) -> str:
    """DBAPI-level INSERT: JSON arrives serialised by orjson (cast to JSONB on PostgreSQL)."""
    mark = "?" if dialect == "sqlite" else "%s"
    values = [
        f"CAST({mark} AS JSONB)" if dialect == "postgresql" and c in JSON_COLUMNS else mark
        for c in _COLUMNS
    ]
    quoted = ", ".join(f'"{c}"' for c in _COLUMNS)
    return f"INSERT INTO traces ({quoted}) VALUES ({', '.join(values)})"


def store_traces(ws: Workspace, rows: list[dict[str, Any]]) -> int:
    """Insert rows whose content hash is new, in one transaction; returns how many.

    Goes straight to the DBAPI's executemany: the rows are plain values already, and
    SQLAlchemy's per-row parameter processing was a third of the import time.
    """
    if not rows:
        return 0
    unique: dict[str, dict[str, Any]] = {}
    for r in rows:
        unique.setdefault(r["content_hash"], r)
    with ws.session() as s:
        existing = set(
            s.scalars(select(Trace.content_hash).where(Trace.content_hash.in_(list(unique))))
        )
        new = [r for h, r in unique.items() if h not in existing]
        if new:
            conn = s.connection()
            ts_type = Trace.__table__.c.imported_at.type.dialect_impl(conn.dialect)
            to_db = ts_type.bind_processor(conn.dialect) or (lambda v: v)  # SQLite: its text form
            params = [
                tuple(to_db(r[c]) if c == "imported_at" else r[c] for c in _COLUMNS) for r in new
            ]
            conn.exec_driver_sql(_insert_sql(ws.dialect), params)
    return len(new)


def import_paths(
    ws: Workspace,
    paths: Iterable[Path | str],
    fmt: str | None = None,
    options: KeyOptions | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ImportReport:
    report = ImportReport()
    for path in expand_paths([Path(p) for p in paths]):
        fr = _import_file(ws, path, fmt, options, report, progress, should_cancel)
        report.files.append(fr)
        if report.cancelled:
            break
    return report


# A parsed chunk: (format, rows, errors) where errors are (locator, message).
Chunk = tuple[str | None, list[dict[str, Any]], list[tuple[str, str]]]


def parse_chunks(path: Path, fmt: str | None, options: KeyOptions | None) -> Iterator[Chunk]:
    """Parse a file into chunks of BATCH_SIZE rows. Raises FileUnreadable before the first
    chunk if the file cannot be read at all."""
    reader = FileImport(path, fmt, options)
    rows: list[dict[str, Any]] = []
    errors: list[tuple[str, str]] = []
    try:
        for locator, result in reader:
            if isinstance(result, RecordError):
                errors.append(
                    (locator, f"{result.field}: {result.reason}" if result.field else result.reason)
                )
                continue
            rows.append(trace_row(result, None))
            if len(rows) >= BATCH_SIZE:
                yield reader.format, rows, errors
                rows, errors = [], []
    except FileUnreadable as exc:
        if rows or errors or reader.format:
            yield reader.format, rows, [*errors, ("", str(exc))]
            return
        raise
    yield reader.format, rows, errors


def _parser_process(path: str, fmt: str | None, options: KeyOptions | None, queue: Any) -> None:
    """Runs in a child process: parse and serialise while the parent writes to the database."""
    try:
        for chunk in parse_chunks(Path(path), fmt, options):
            queue.put(("chunk", chunk))
        queue.put(("done", None))
    except FileUnreadable as exc:
        queue.put(("unreadable", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never lost
        queue.put(("crash", f"{type(exc).__name__}: {exc}"))


def parallel_chunks(path: Path, fmt: str | None, options: KeyOptions | None) -> Iterator[Chunk]:
    """parse_chunks in a child process, so parsing and database writes overlap (two cores).

    The queue is bounded, so memory stays bounded whatever the file size.
    """
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may run Qt threads
    queue = ctx.Queue(maxsize=4)
    proc = ctx.Process(target=_parser_process, args=(str(path), fmt, options, queue), daemon=True)
    proc.start()
    try:
        while True:
            kind, payload = queue.get()
            if kind == "chunk":
                yield payload
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


def _import_file(ws, path, fmt, options, report, progress, should_cancel) -> FileReport:
    fr = FileReport(path=str(path))
    try:
        big = path.stat().st_size >= PARALLEL_MIN_BYTES
        chunks = (parallel_chunks if big else parse_chunks)(path, fmt, options)
        first = next(chunks, None)  # detects the format; FileUnreadable if it cannot
        digest = sha256_file(path)
    except FileUnreadable as exc:
        fr.unreadable = str(exc)
        report.errors.append({"file": str(path), "record": None, "message": str(exc)})
        return fr
    except OSError as exc:
        fr.unreadable = f"{path}: {exc.strerror or exc}"
        report.errors.append({"file": str(path), "record": None, "message": fr.unreadable})
        return fr
    with ws.session() as s:
        batch = ImportBatch(
            path=str(path),
            sha256=digest,
            format=(first and first[0]) or "unknown",
            importer_version=IMPORTER_VERSION,
        )
        s.add(batch)
        s.flush()
        fr.batch_id = batch.id
    kept_errors: list[dict[str, Any]] = []
    try:
        for fmt_seen, rows, errors in chain([first] if first else [], chunks):
            fr.format = fmt_seen
            for row in rows:
                row["batch_id"] = fr.batch_id
            n = store_traces(ws, rows)
            fr.records += len(rows) + sum(1 for loc, _ in errors if loc)
            fr.imported += n
            fr.duplicates += len(rows) - n
            for locator, message in errors:
                fr.errors += 1
                if len(kept_errors) < MAX_ERRORS_KEPT:
                    kept_errors.append(
                        {"file": str(path), "record": locator or None, "message": message}
                    )
            if progress:
                progress(str(path), fr.records, report.imported + fr.imported)
            if should_cancel and should_cancel():
                report.cancelled = True
                break
    except FileUnreadable as exc:
        fr.errors += 1
        kept_errors.append({"file": str(path), "record": None, "message": str(exc)})
    finally:
        chunks.close()
    if fr.errors > len(kept_errors):
        kept_errors.append(
            {
                "file": str(path),
                "record": None,
                "message": f"... and {fr.errors - len(kept_errors)} more errors",
            }
        )
    report.errors.extend(kept_errors)
    report.imported += fr.imported
    report.duplicates += fr.duplicates
    with ws.session() as s:
        s.execute(
            update(ImportBatch)
            .where(ImportBatch.id == fr.batch_id)
            .values(
                format=fr.format or "unknown",
                n_records=fr.records,
                n_imported=fr.imported,
                n_duplicates=fr.duplicates,
                n_errors=fr.errors,
                errors=kept_errors,
                finished_at=datetime.now(UTC),
            )
        )
        audit.record(
            s,
            "import",
            "import_batch",
            fr.batch_id,
            path=str(path),
            imported=fr.imported,
            duplicates=fr.duplicates,
            errors=fr.errors,
            cancelled=report.cancelled,
        )
    return fr
