"""The full-text index catching up with an import (SQLite).

An import stores its traces first (they are in the queue and the tool and score filters work
at once; text and metadata searches need the index) and lists them in `trace_fts_pending`;
`catch_up` then writes their rows of the contentless FTS5 table `trace_fts`, a batch per
transaction, from the stored columns (app.traces.index_text computes exactly the values the
delete trigger recomputes in SQL).

Each batch claims its traces by deleting them from the list in its own write transaction, so
two processes catching up at once never index a trace twice, and a killed one loses nothing:
its transaction rolls back and the traces stay listed. `chambers import` catches up before it
ends; the app's import ends when the traces are stored and its window catches up in the
background (ui/traces/search_indexer.py), also when it opens (what a killed import left);
the command-line searches catch up first. Until then a text or metadata search does not see
the pending traces, and the queue says so; a round chosen by search is refused.

A large backlog is read and turned into values by a second process while this one writes
them: each of its batches carries the `generation` of every trace as it read it, and only
traces still listed at that generation are claimed (an update counts it up), so values read
before a change are never indexed.
PostgreSQL computes its search document as the row is written: nothing is ever pending.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
from collections.abc import Callable

import orjson
from sqlalchemy.orm import Session

from app.traces.child_process import unpickle, widen_pipe
from app.traces.index_worker import values, values_process
from app.traces.queries import TraceFilter
from app.traces.search import FTS_COLUMNS
from app.workspace.db import BUSY_TIMEOUT_S, Workspace, bulk_checkpoints, checkpoints_aside

BATCH = 2000  # traces per transaction

_INSERT = (
    f"INSERT INTO trace_fts (rowid, {', '.join(FTS_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in FTS_COLUMNS)})"
)
_CLAIM = (
    "DELETE FROM trace_fts_pending WHERE trace_id IN "
    "(SELECT trace_id FROM trace_fts_pending ORDER BY trace_id LIMIT ?) RETURNING trace_id"
)

Progress = Callable[[int, int], None]  # (traces indexed so far, traces pending at the start)


def has_pending_list(conn) -> bool:
    """SQLite at 0008 or later: imports list their traces here and skip the insert trigger's
    indexing (older schemas, opened without migrating, index by their triggers or not at
    all)."""
    found = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_fts_pending'"
    )
    return found.first() is not None


def pending(session: Session) -> int:
    """How many stored traces the full-text index does not cover yet."""
    conn = session.connection()
    if conn.dialect.name != "sqlite" or not has_pending_list(conn):
        return 0
    return conn.exec_driver_sql("SELECT count(*) FROM trace_fts_pending").scalar() or 0


def unseen_by(session: Session, flt: TraceFilter) -> int:
    """Pending traces that the filter's text or metadata search cannot see yet (0 when the
    filter searches neither: tools, scores and the rest work on stored traces)."""
    return pending(session) if flt.search or flt.meta else 0


def catch_up(
    ws: Workspace,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch: int = BATCH,
) -> int:
    """Index every pending trace (or until `should_stop`); returns how many this call did.

    A large backlog is read and turned into index values by a second process while this one
    writes them (two cores); what that leaves (traces changed meanwhile) is done here."""
    if ws.dialect != "sqlite":
        return 0
    with ws.session() as s:
        total = pending(s)
    done = 0
    with checkpoints_aside(ws):
        path = ws.engine.url.database
        if total >= PARALLEL_MIN and path and path != ":memory:":
            done = _catch_up_in_parallel(ws, path, total, progress, should_stop, batch)
        while total and not (should_stop and should_stop()):
            with ws.session() as s:
                n = index_batch(s, batch)
            if not n:
                break
            done += n
            if progress:
                progress(min(done, total), total)
    return done


def index_batch(session: Session, batch: int) -> int:
    """Index up to `batch` pending traces in the session's transaction; returns how many."""
    conn = session.connection()
    if conn.dialect.name != "sqlite" or not has_pending_list(conn):
        return 0
    ids = [row[0] for row in conn.exec_driver_sql(_CLAIM, (batch,))]  # the write lock first
    bulk_checkpoints(conn)
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    stored = conn.exec_driver_sql(
        "SELECT id, task, final_output, messages, metadata, scores FROM traces "
        f"WHERE id IN ({marks})",
        tuple(ids),
    )
    rows = [values(*row) for row in stored]
    if rows:
        conn.exec_driver_sql(_INSERT, rows)
    return len(ids)


# --- a large backlog: values computed in a second process (app.traces.index_worker) ------

PARALLEL_MIN = 20_000  # pending traces worth starting a process for (~0.3 s)
# the listed traces still at the generation and with the content read (not changed, not
# deleted, not claimed by another catch-up), taken off the list under the write lock
_CLAIM_READ = (
    "DELETE FROM trace_fts_pending WHERE trace_id IN (SELECT p.trace_id FROM json_each(?) AS j "
    "JOIN trace_fts_pending AS p ON p.trace_id = json_extract(j.value, '$[0]') "
    "AND p.generation = json_extract(j.value, '$[1]') "
    "JOIN traces AS t ON t.id = p.trace_id AND t.content_hash = json_extract(j.value, '$[2]')"
    ") RETURNING trace_id"
)


def _catch_up_in_parallel(ws, path, total, progress, should_stop, batch) -> int:
    """Write the values a child process computes; returns how many traces were indexed.
    Stops early (the caller goes on alone) if the child fails."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may run Qt threads
    q = ctx.Queue(maxsize=4)
    widen_pipe(q)
    proc = ctx.Process(
        target=values_process,
        args=(path, q, os.getpid(), batch, BUSY_TIMEOUT_S * 1000),
        daemon=True,
    )
    proc.start()
    done = 0
    try:
        while not (should_stop and should_stop()):
            try:
                kind, payload = q.get(timeout=1.0)
            except queue_mod.Empty:
                if proc.is_alive():
                    continue
                break
            if kind != "values":
                break  # "done", or "crash": what is left is done sequentially
            with ws.session() as s:
                done += _store_values(s, unpickle(payload))
            if progress:
                progress(min(done, total), total)
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
        q.close()
    return done


def _store_values(session: Session, rows: list[tuple]) -> int:
    """Index the value rows (app.traces.index_worker) of the traces this claims."""
    conn = session.connection()
    bulk_checkpoints(conn)
    read = orjson.dumps([(r[2], r[0], r[1]) for r in rows]).decode()  # id, generation, hash
    claimed = {row[0] for row in conn.exec_driver_sql(_CLAIM_READ, (read,))}
    fresh = [r[2:] for r in rows if r[2] in claimed]
    if fresh:  # another catch-up may have claimed them all
        conn.exec_driver_sql(_INSERT, fresh)
    return len(claimed)
