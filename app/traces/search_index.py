"""The full-text index catching up with an import (SQLite).

An import stores its traces first (they are in the queue and the tool, score and metadata
filters work at once) and lists them in `trace_fts_pending`; `catch_up` then writes their rows
of the contentless FTS5 table `trace_fts`, a batch per transaction, from the stored columns
(app.traces.index_text computes exactly the values the delete trigger recomputes in SQL).

Each batch claims its traces by deleting them from the list in its own write transaction, so
two processes catching up at once never index a trace twice, and a killed one loses nothing:
its transaction rolls back and the traces stay listed. `chambers import` and the app's import
catch up before they finish; any other command, and the app when it opens, finishes what a
killed import left. Until then a text search does not see the pending traces, and says so.
PostgreSQL computes its search document as the row is written: nothing is ever pending.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue as queue_mod
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.orm import Session

from app.traces.index_text import fts_values
from app.traces.parse_worker import put_while_parent_lives, unpickle, watch_parent, widen_pipe
from app.traces.search import FTS_COLUMNS
from app.workspace.db import BUSY_TIMEOUT_S, Workspace, checkpoints_aside

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


def _has_list(conn) -> bool:
    found = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_fts_pending'"
    )
    return found.first() is not None


def pending(session: Session) -> int:
    """How many stored traces the full-text index does not cover yet."""
    conn = session.connection()
    if conn.dialect.name != "sqlite" or not _has_list(conn):
        return 0
    return conn.exec_driver_sql("SELECT count(*) FROM trace_fts_pending").scalar() or 0


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
    if conn.dialect.name != "sqlite" or not _has_list(conn):
        return 0
    ids = [row[0] for row in conn.exec_driver_sql(_CLAIM, (batch,))]  # the write lock first
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    stored = conn.exec_driver_sql(
        "SELECT id, task, final_output, messages, metadata, scores FROM traces "
        f"WHERE id IN ({marks})",
        tuple(ids),
    )
    conn.exec_driver_sql(_INSERT, [_values(*row) for row in stored])
    return len(ids)


def _values(tid, task, answer, messages, metadata, scores) -> tuple:
    return (tid, *fts_values(task, answer, orjson.loads(messages), metadata, scores))


# --- a large backlog: values computed in a second process ---------------------------------

PARALLEL_MIN = 20_000  # pending traces worth starting a process for (~0.3 s)
_READ = (
    "SELECT p.trace_id, p.generation, t.task, t.final_output, t.messages, t.metadata, t.scores "
    "FROM trace_fts_pending AS p JOIN traces AS t ON t.id = p.trace_id "
    "WHERE p.trace_id > ? ORDER BY p.trace_id LIMIT ?"
)
# the listed traces whose generation is still the one read (not changed, not deleted, not
# claimed by another catch-up), taken off the list under the write lock
_CLAIM_READ = (
    "DELETE FROM trace_fts_pending WHERE trace_id IN (SELECT p.trace_id FROM json_each(?) AS j "
    "JOIN trace_fts_pending AS p ON p.trace_id = json_extract(j.value, '$[0]') "
    "AND p.generation = json_extract(j.value, '$[1]')) RETURNING trace_id"
)


def values_process(path: str, q: Any, parent: int, batch: int) -> None:
    """Runs in a child process: read the pending traces (read-only, each batch its own read
    transaction) and send their index values, in trace order, until none is left."""
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    gc.freeze()
    gc.disable()  # as the parser: short-lived containers, no cycles; collected per batch
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        last = 0
        while True:
            rows = conn.execute(_READ, (last, batch)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            out = [(gen, *_values(tid, *rest)) for tid, gen, *rest in rows]
            put_while_parent_lives(q, ("values", pickle.dumps(out, protocol=5)), parent)
            del rows, out
            gc.collect()
        put_while_parent_lives(q, ("done", None), parent)
    except BaseException as exc:  # noqa: BLE001 - the parent does the rest itself
        put_while_parent_lives(q, ("crash", f"{type(exc).__name__}: {exc}"), parent)


def _catch_up_in_parallel(ws, path, total, progress, should_stop, batch) -> int:
    """Write the values a child process computes; returns how many traces were indexed.
    Stops early (the caller goes on alone) if the child fails."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may run Qt threads
    q = ctx.Queue(maxsize=4)
    widen_pipe(q)
    proc = ctx.Process(target=values_process, args=(path, q, os.getpid(), batch), daemon=True)
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
    conn = session.connection()
    read = orjson.dumps([(r[1], r[0]) for r in rows]).decode()  # (trace id, generation)
    claimed = {row[0] for row in conn.exec_driver_sql(_CLAIM_READ, (read,))}
    conn.exec_driver_sql(_INSERT, [r[1:] for r in rows if r[1] in claimed])
    return len(claimed)
