"""Import trace files into a workspace: streaming, batched, idempotent, never half-written.

Records are parsed one at a time and inserted in batches, each batch in its own transaction,
so memory stays bounded and a crash leaves only whole traces. Re-importing the same content
adds nothing: every trace carries a content hash with a unique constraint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from app import audit
from app.db import Workspace
from app.importers import IMPORTER_VERSION, FileImport, expand_paths
from app.importers.conversations import KeyOptions
from app.importers.messages import RecordError
from app.importers.reader import FileUnreadable
from app.models import ImportBatch, Trace
from app.tracemodel import TraceRecord

BATCH_SIZE = 500
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


def trace_row(rec: TraceRecord, batch_id: int | None) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "external_id": rec.external_id[:512] if rec.external_id else None,
        "source": rec.source,
        "task": rec.task,
        "task_key": rec.task_key,
        "messages": rec.messages,
        "final_output": rec.final_output,
        "tools": rec.tools,
        "meta": rec.metadata,
        "outcome": rec.outcome,
        "outcome_label": rec.outcome_label,
        "outcome_source": rec.outcome_source,
        "scores": rec.scores,
        "n_messages": rec.n_messages,
        "n_tool_calls": rec.n_tool_calls,
        "content_hash": rec.content_hash(),
        "split": rec.split,
        "imported_at": datetime.now(UTC),
    }


def store_traces(ws: Workspace, rows: list[dict[str, Any]]) -> int:
    """Insert rows whose content hash is new, in one transaction; returns how many."""
    if not rows:
        return 0
    unique: dict[str, dict[str, Any]] = {}
    for r in rows:
        unique.setdefault(r["content_hash"], r)
    with ws.session() as s:
        existing = set(s.scalars(select(Trace.content_hash).where(Trace.content_hash.in_(list(unique)))))
        new = [r for h, r in unique.items() if h not in existing]
        if new:
            s.execute(insert(Trace), new)
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


def _import_file(ws, path, fmt, options, report, progress, should_cancel) -> FileReport:
    fr = FileReport(path=str(path))
    try:
        reader = FileImport(path, fmt, options)
        digest = sha256_file(path) if path.is_file() else ""
        records = iter(reader)
        pending: list[tuple[str, TraceRecord | RecordError]] = []
        first = next(records, None)  # detects the format (may raise FileUnreadable)
        if first is not None:
            pending.append(first)
    except FileUnreadable as exc:
        fr.unreadable = str(exc)
        report.errors.append({"file": str(path), "record": None, "message": str(exc)})
        return fr
    except OSError as exc:
        fr.unreadable = f"{path}: {exc.strerror or exc}"
        report.errors.append({"file": str(path), "record": None, "message": fr.unreadable})
        return fr
    fr.format = reader.format
    with ws.session() as s:
        batch = ImportBatch(path=str(path), sha256=digest, format=reader.format or "unknown", importer_version=IMPORTER_VERSION)
        s.add(batch)
        s.flush()
        fr.batch_id = batch.id
    kept_errors: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        n = store_traces(ws, rows)
        fr.imported += n
        fr.duplicates += len(rows) - n
        rows.clear()
        if progress:
            progress(str(path), fr.records, report.imported + fr.imported)

    try:
        for locator, result in _chain(pending, records):
            fr.records += 1
            if isinstance(result, RecordError):
                fr.errors += 1
                if len(kept_errors) < MAX_ERRORS_KEPT:
                    msg = f"{result.field}: {result.reason}" if result.field else result.reason
                    kept_errors.append({"file": str(path), "record": locator, "message": msg})
                continue
            rows.append(trace_row(result, fr.batch_id))
            if len(rows) >= BATCH_SIZE:
                flush()
                if should_cancel and should_cancel():
                    report.cancelled = True
                    break
        flush()
    except FileUnreadable as exc:
        fr.unreadable = str(exc)
        kept_errors.append({"file": str(path), "record": None, "message": str(exc)})
    fr.format = reader.format
    if fr.errors > len(kept_errors):
        kept_errors.append({"file": str(path), "record": None, "message": f"... and {fr.errors - len(kept_errors)} more errors"})
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
        audit.record(s, "import", "import_batch", fr.batch_id, path=str(path), imported=fr.imported, duplicates=fr.duplicates, errors=fr.errors, cancelled=report.cancelled)
    return fr


def _chain(first, rest):
    yield from first
    yield from rest
