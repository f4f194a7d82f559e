"""Trace records as rows of the traces table: encoded once, checked before they are stored.

Encoding can fail on valid input (orjson refuses nesting deeper than 255 levels, which a tool
call's arguments can reach), and PostgreSQL refuses the NUL character that SQLite stores: both
become the record's error, naming the field, before any row of its batch is written.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.traces.importers.messages import RecordError
from app.traces.index_text import filter_entry
from app.traces.model import TraceRecord

JSON_COLUMNS = ("messages", "tools", "metadata", "scores")
TEXT_COLUMNS = ("external_id", "task", "final_output", "outcome_label", "source")
COLUMNS = (
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
LOCATOR = "_locator"  # where the row came from (not a column)
INDEX = "_index"  # its tool names and scores (app.traces.index_text; not a column)
ROW_KEYS = (LOCATOR, INDEX, *COLUMNS)  # a row's keys, in the order trace_row writes them
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash


def trace_row(
    rec: TraceRecord, batch_id: int | None, locator: str = "", index: bool = True
) -> dict[str, Any]:
    """A row for the traces table, JSON columns already serialised (once, also for the hash),
    with its tool names and scores for the filter tables when `index` (SQLite; PostgreSQL
    builds its own).

    Raises RecordError when the record cannot be serialised."""
    try:
        encoded = rec.encoded()
    except (orjson.JSONEncodeError, TypeError, ValueError, OverflowError) as exc:
        raise _encode_error(rec, exc) from None
    calls = [p for m in rec.messages for p in m["parts"] if p["type"] == "tool_call"]
    return {
        LOCATOR: locator,
        INDEX: filter_entry(calls, encoded["scores"]) if index else None,
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
        "n_tool_calls": len(calls),
        "content_hash": rec.content_hash(encoded),
        "split": rec.split,
        "imported_at": None,  # one time for the whole batch, set when it is stored
    }


def _encode_error(rec: TraceRecord, exc: Exception) -> RecordError:
    """Name the message (or column) that cannot be serialised."""
    reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    if "recursion" in reason.lower() or "depth" in reason.lower():
        reason = "nested deeper than the 255 levels that JSON storage allows"
    for i, msg in enumerate(rec.messages):
        try:
            orjson.dumps(msg)
        except (orjson.JSONEncodeError, TypeError, ValueError, OverflowError):
            return RecordError(f"messages[{i}]", f"cannot be stored: {reason}")
    for name, value in (("tools", rec.tools), ("metadata", rec.metadata), ("scores", rec.scores)):
        try:
            orjson.dumps(value, default=str)
        except (orjson.JSONEncodeError, TypeError, ValueError, OverflowError):
            return RecordError(name, f"cannot be stored: {reason}")
    return RecordError("", f"cannot be stored: {reason}")


def nul_field(row: dict[str, Any]) -> str | None:
    """The first field holding a NUL character (PostgreSQL cannot store one), or None; the
    messages first, as the task and final output are taken from them."""
    for col in ("messages", *TEXT_COLUMNS, *JSON_COLUMNS[1:]):
        if col in TEXT_COLUMNS:
            value = row.get(col)
            if isinstance(value, str) and "\x00" in value:
                return col
            continue
        text = row[col]
        if "\\u0000" not in text or not _JSON_NUL.search(text):
            continue
        if col == "messages":
            for i, msg in enumerate(orjson.loads(text)):
                if _JSON_NUL.search(orjson.dumps(msg).decode()):
                    return f"messages[{i}]"
        return col
    return None


def reject_nul(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Rows PostgreSQL can store, and an error (no content) for each row it cannot."""
    kept, errors = [], []
    for row in rows:
        field = nul_field(row)
        if field is None:
            kept.append(row)
        else:
            errors.append(
                (
                    row[LOCATOR],
                    f"{field}: contains a NUL character (\\u0000), which PostgreSQL cannot store",
                )
            )
    return kept, errors
