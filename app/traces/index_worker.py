"""The search index's values for a large backlog, computed in a child process (spawned by
app.traces.search_index while it writes them). Light on purpose: the child imports sqlite3,
orjson and the index text, not the database layer."""

from __future__ import annotations

import gc
import sqlite3
import urllib.parse
from typing import Any

import orjson

from app.traces.child_process import pickled, put_while_parent_lives, start_child
from app.traces.index_text import fts_values

# Each value row: (generation, content hash, trace id, the seven fts values); the writer
# indexes a trace only if it is still listed at that generation with that content.
READ = (
    "SELECT p.trace_id, p.generation, t.content_hash, t.task, t.final_output, t.messages, "
    "t.metadata, t.scores FROM trace_fts_pending AS p JOIN traces AS t ON t.id = p.trace_id "
    "WHERE p.trace_id > ? ORDER BY p.trace_id LIMIT ?"
)


def values(tid: int, task, answer, messages: str, metadata: str, scores: str) -> tuple:
    """(trace id, its seven fts values) from its stored columns."""
    return (tid, *fts_values(task, answer, orjson.loads(messages), metadata, scores))


def value_rows(rows: list[tuple]) -> list[tuple]:
    return [(gen, digest, *values(tid, *rest)) for tid, gen, digest, *rest in rows]


def values_process(path: str, q: Any, parent: int, batch: int, busy_ms: int) -> None:
    """Runs in a child process: read the pending traces (read-only, each batch its own read
    transaction) and send their index values, in trace order, until none is left."""
    start_child(parent)
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        last = 0
        while True:
            rows = conn.execute(READ, (last, batch)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            put_while_parent_lives(q, ("values", pickled(value_rows(rows))), parent)
            del rows
            gc.collect()
        put_while_parent_lives(q, ("done", None), parent)
    except BaseException as exc:  # noqa: BLE001 - the parent does the rest itself
        put_while_parent_lives(q, ("crash", f"{type(exc).__name__}: {exc}"), parent)
