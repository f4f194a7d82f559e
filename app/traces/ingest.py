"""Import trace files into a workspace: streaming, batched, idempotent, never half-written.

Records are parsed one at a time and inserted in batches, each batch in its own transaction,
so memory stays bounded and a crash leaves only whole traces. Re-importing the same content
adds nothing: every trace carries a content hash with a unique constraint. A record the
database refuses is reported without its content; the rest of its batch is kept.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError

from app.traces import search_index
from app.traces.importers import IMPORTER_VERSION, scan_paths
from app.traces.importers.conversations import KeyOptions
from app.traces.importers.reader import FileUnreadable
from app.traces.parse_worker import BATCH_SIZE, Chunk, parallel_chunks, parse_chunks
from app.traces.rows import COLUMNS, INDEX, LOCATOR, reject_nul, trace_row
from app.workspace import audit
from app.workspace.db import Workspace, bulk_checkpoints, checkpoints_aside
from app.workspace.imports import close_batch, importer_identity
from app.workspace.models import ImportBatch, Trace
from app.workspace.paths import file_sha256

__all__ = ["BATCH_SIZE", "ImportReport", "import_paths", "store_traces", "trace_row"]

_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chambers-hash")
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
    warnings: int = 0
    unreadable: str | None = None
    digest: Future[str] | None = field(default=None, repr=False)


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    cancelled: bool = False
    indexed: int = 0  # traces the full-text index caught up with (SQLite)

    @property
    def unreadable(self) -> list[FileReport]:
        return [f for f in self.files if f.unreadable]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "errors": self.errors,
        }
        if self.warnings:
            out["warnings"] = self.warnings
        if self.skipped:
            out["skipped"] = self.skipped
        return out


Progress = Callable[[str, int, int], None]  # (file, records read, traces imported so far)


_STAGE = "_chambers_import_rows"  # PostgreSQL: COPY lands here, then one INSERT ... SELECT


def _insert_sql(dialect: str) -> str:
    """DBAPI-level INSERT that skips content already stored (the unique content hash)."""
    quoted = ", ".join(f'"{c}"' for c in COLUMNS)
    if dialect == "postgresql":
        return (
            f"INSERT INTO traces ({quoted}) SELECT {quoted} FROM {_STAGE} "
            "ON CONFLICT (content_hash) DO NOTHING"
        )
    return f"INSERT OR IGNORE INTO traces ({quoted}) VALUES ({', '.join('?' for _ in COLUMNS)})"


_VALUES = operator.itemgetter(*COLUMNS[:-1])  # every column but imported_at, set per batch


def _params(rows: list[dict[str, Any]], stamp: Any) -> list[tuple[Any, ...]]:
    unique: dict[str, tuple[Any, ...]] = {}
    for r in rows:
        if r["content_hash"] not in unique:
            unique[r["content_hash"]] = (*_VALUES(r), stamp)
    return list(unique.values())


def store_traces(ws: Workspace, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose content hash is new, in one transaction; returns how many.

    Goes straight to the DBAPI: the rows are plain values already (SQLAlchemy's per-row
    parameter processing was a third of the import time). The database skips known content
    itself (no query first); PostgreSQL receives the batch by COPY.
    """
    if not rows:
        return 0
    with ws.session() as s:
        conn = s.connection()
        if ws.dialect == "postgresql":
            return _copy_postgres(conn, _params(rows, datetime.now(UTC)))
        ts_type = Trace.__table__.c.imported_at.type.dialect_impl(conn.dialect)
        to_db = ts_type.bind_processor(conn.dialect) or (lambda v: v)  # SQLite: its text form
        bulk_checkpoints(conn)
        deferred = search_index.has_pending_list(conn)
        if deferred:  # a write first: this transaction holds the lock before reading max(id)
            conn.exec_driver_sql("INSERT INTO trace_fts_bulk (importer) VALUES (1)")
            before = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM traces").scalar()
        result = conn.exec_driver_sql(
            _insert_sql(ws.dialect), _params(rows, to_db(datetime.now(UTC)))
        )
        if deferred:
            _filters_and_pending(conn, rows, before)
            conn.exec_driver_sql("DELETE FROM trace_fts_bulk")
        return max(result.rowcount, 0)


def _filters_and_pending(conn, rows: list[dict[str, Any]], before: int) -> None:
    """The tool names and scores of the rows this batch stored (ids above `before`; the
    duplicates were skipped), from the entries computed while parsing (app.traces.index_text),
    and their ids on the full-text index's to-do list (app.traces.search_index)."""
    entries = {r["content_hash"]: r[INDEX] for r in rows}
    stored = conn.exec_driver_sql(
        "SELECT id, content_hash FROM traces WHERE id > ?", (before,)
    ).all()
    tools = [(tid, name) for tid, digest in stored for name in entries[digest][0]]
    scores = [(tid, *score) for tid, digest in stored for score in entries[digest][1]]
    if tools:
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO trace_tools (trace_id, name) VALUES (?, ?)", tools
        )
    if scores:
        conn.exec_driver_sql(
            "INSERT INTO trace_scores (trace_id, name, value) VALUES (?, ?, ?)", scores
        )
    conn.exec_driver_sql(
        "INSERT INTO trace_fts_pending (trace_id) SELECT id FROM traces WHERE id > ?", (before,)
    )


def _copy_postgres(conn, params: list[tuple[Any, ...]]) -> int:
    raw = conn.connection.driver_connection
    quoted = ", ".join(f'"{c}"' for c in COLUMNS)
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS SELECT {quoted} FROM traces WITH NO DATA"
        )
        cur.execute(f"TRUNCATE {_STAGE}")
        with cur.copy(f"COPY {_STAGE} ({quoted}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        cur.execute(_insert_sql("postgresql"))
        return max(cur.rowcount, 0)


def store_rows(ws: Workspace, rows: list[dict[str, Any]]) -> tuple[int, list[tuple[str, str]]]:
    """store_traces, and if the database refuses the batch, row by row: the refused rows
    become errors (the database's reason, never the content), the others are kept."""
    if ws.dialect == "postgresql":
        rows, errors = reject_nul(rows)
    else:
        errors = []
    try:
        return store_traces(ws, rows), errors
    except (DataError, IntegrityError):
        pass
    stored = 0
    for row in rows:
        try:
            stored += store_traces(ws, [row])
        except IntegrityError:  # stored meanwhile by another importer: a duplicate
            continue
        except DataError as exc:
            errors.append((row[LOCATOR], f"the database refused this record ({_reason(exc)})"))
    return stored, errors


def _reason(exc: DataError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:100] if str(orig) else ''}"


def import_paths(
    ws: Workspace,
    paths: Iterable[Path | str],
    fmt: str | None = None,
    options: KeyOptions | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    catch_up_index: bool = True,
) -> ImportReport:
    """Import the files (folders: the trace files in them), then, unless `catch_up_index` is
    false or the import was cancelled, write the full-text index of what was stored (SQLite;
    app.traces.search_index): the traces are in the workspace before that starts."""
    report = ImportReport()
    given = [Path(p) for p in paths]
    files, skipped = scan_paths(given)
    report.skipped = [{"file": f, "reason": why} for f, why in skipped]
    for d in given:
        if d.is_dir() and not any(str(f).startswith(str(d)) for f in files):
            report.errors.append(
                {
                    "file": str(d),
                    "record": None,
                    "message": f"no trace files in this folder ({len(skipped)} other files skipped)",
                }
            )
    with checkpoints_aside(ws):
        for path in files:
            fr = _import_file(ws, path, fmt, options, report, progress, should_cancel)
            report.files.append(fr)
            if report.cancelled:
                break
    if catch_up_index and not report.cancelled:
        report.indexed = search_index.catch_up(ws, should_stop=should_cancel)
    return report


def finish_interrupted(ws: Workspace, path: str, by: int) -> int:
    """Batches of the same file left unfinished by a killed import: counted and closed (the
    import re-reading the file completes them). Opening a workspace closes those whose importer
    is gone already (app.workspace.imports)."""
    with ws.session() as s:
        stale = s.scalars(
            select(ImportBatch).where(
                ImportBatch.path == path,
                ImportBatch.finished_at.is_(None),
                ImportBatch.id != by,
            )
        ).all()
        for batch in stale:
            close_batch(s, batch, f"completed by batch {by}")
        return len(stale)


def _open_file(
    ws: Workspace, path: Path, fmt, options, fr: FileReport, report: ImportReport, index: bool
):
    """(first chunk, chunks, digest future), or None with the file reported unreadable. Rows
    carry their search index entries when `index` (SQLite writes them per batch).

    The file's hash is computed in a thread (hashlib releases the GIL) while it is parsed."""
    try:
        if path.stat().st_size >= PARALLEL_MIN_BYTES:
            chunks = parallel_chunks(path, fmt, options, index)
        else:
            chunks = parse_chunks(path, fmt, options, index)
        first = next(chunks, None)  # detects the format; FileUnreadable if it cannot
        digest = _HASHER.submit(file_sha256, path)
        return first, chunks, digest
    except FileUnreadable as exc:
        fr.unreadable = str(exc)
    except OSError as exc:
        fr.unreadable = f"{path}: {exc.strerror or exc}"
    report.errors.append({"file": str(path), "record": None, "message": fr.unreadable})
    return None


def _import_file(ws, path, fmt, options, report, progress, should_cancel) -> FileReport:
    fr = FileReport(path=str(path))
    opened = _open_file(ws, path, fmt, options, fr, report, ws.dialect == "sqlite")
    if opened is None:
        return fr
    first, chunks, digest = opened
    host, pid = importer_identity()
    with ws.session() as s:
        batch = ImportBatch(
            path=str(path),
            sha256="",  # known when the file has been read (set when the batch finishes)
            format=(first and first[0]) or "unknown",
            importer_version=IMPORTER_VERSION,
            importer_host=host,
            importer_pid=pid,
        )
        s.add(batch)
        s.flush()
        fr.batch_id = batch.id
    finish_interrupted(ws, str(path), fr.batch_id)
    fr.digest = digest
    kept: list[dict[str, Any]] = []
    try:
        for chunk in chain([first] if first else [], chunks):
            _store_chunk(ws, path, chunk, fr, kept, report)
            if progress:
                progress(str(path), fr.records, report.imported + fr.imported)
            if should_cancel and should_cancel():
                report.cancelled = True
                break
    except FileUnreadable as exc:
        fr.errors += 1
        kept.append({"file": str(path), "record": None, "message": str(exc)})
    finally:
        chunks.close()
        _finish_batch(ws, path, fr, kept, report)
    return fr


def _store_chunk(ws, path, chunk: Chunk, fr, kept, report) -> None:
    fmt_seen, rows, errors, warnings = chunk
    fr.format = fmt_seen
    for row in rows:
        row["batch_id"] = fr.batch_id
    n, refused = store_rows(ws, rows)
    errors = [*errors, *refused]
    fr.records += len(rows) + sum(1 for loc, _ in errors if loc) - len(refused)
    fr.imported += n
    fr.duplicates += len(rows) - len(refused) - n
    for locator, message in errors:
        fr.errors += 1
        if len(kept) < MAX_ERRORS_KEPT:
            kept.append({"file": str(path), "record": locator or None, "message": message})
    for locator, message in warnings:
        fr.warnings += 1
        report.warnings.append({"file": str(path), "record": locator or None, "message": message})


def _digest(fr: FileReport) -> str:
    try:
        return fr.digest.result() if fr.digest is not None else ""
    except OSError:
        return ""


def _finish_batch(ws, path, fr: FileReport, kept: list[dict[str, Any]], report) -> None:
    if fr.errors > len(kept):
        kept.append(
            {
                "file": str(path),
                "record": None,
                "message": f"... and {fr.errors - len(kept)} more errors",
            }
        )
    report.errors.extend(kept)
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
                errors=kept,
                sha256=_digest(fr),
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


def error_line(entry: dict[str, Any]) -> str:
    """One error or warning as a line naming file and record once each."""
    message = str(entry["message"])
    where = [] if message.startswith(str(entry["file"])) else [str(entry["file"])]
    if entry.get("record") and not message.startswith(f"{entry['file']}: {entry['record']}"):
        where.append(str(entry["record"]))
    return ": ".join([*where, message])
