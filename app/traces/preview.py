"""What an import would make of each file, before importing: its format and first records."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from app.traces.importers import FileImport, scan_paths
from app.traces.importers.conversations import KeyOptions
from app.traces.importers.messages import RecordError
from app.traces.importers.reader import FileUnreadable
from app.traces.model import TraceRecord


@dataclass
class RecordPreview:
    locator: str
    external_id: str | None = None
    n_messages: int = 0
    n_tool_calls: int = 0
    outcome: str = ""
    task: str = ""
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class FilePreview:
    path: str
    format: str | None = None
    records: list[RecordPreview] = field(default_factory=list)
    unreadable: str | None = None
    skipped: str | None = None


def _outcome(rec: TraceRecord) -> str:
    if rec.outcome is None and rec.outcome_label is None:
        return ""
    number = "" if rec.outcome is None else f"{rec.outcome:g}"
    label = rec.outcome_label or ""
    return f"{number} ({label})" if number and label else number or label


def record_preview(locator: str, result: TraceRecord | RecordError) -> RecordPreview:
    if isinstance(result, RecordError):
        reason = f"{result.field}: {result.reason}" if result.field else result.reason
        return RecordPreview(locator, error=reason)
    return RecordPreview(
        locator,
        external_id=result.external_id,
        n_messages=result.n_messages,
        n_tool_calls=result.n_tool_calls,
        outcome=_outcome(result),
        task=(result.task or "")[:200],
        warnings=list(result.metadata.get("import_warnings") or ()),
    )


def preview_file(
    path: Path, fmt: str | None = None, options: KeyOptions | None = None, limit: int = 5
) -> FilePreview:
    out = FilePreview(str(path))
    try:
        reader = FileImport(path, fmt, options)
        out.records = [record_preview(loc, r) for loc, r in islice(reader, limit)]
        out.format = reader.format
    except FileUnreadable as exc:
        out.unreadable = str(exc)
    except OSError as exc:
        out.unreadable = f"{path}: {exc.strerror or exc}"
    return out


def preview_paths(
    paths: list[Path], fmt: str | None = None, options: KeyOptions | None = None, limit: int = 5
) -> list[FilePreview]:
    """Each file's preview, then the files a folder import would skip."""
    files, skipped = scan_paths(paths)
    previews = [preview_file(p, fmt, options, limit) for p in files]
    return previews + [FilePreview(f, skipped=why) for f, why in skipped]
