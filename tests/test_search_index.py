"""The full-text index catching up after an import (SQLite, app.traces.search_index): the
traces are stored first, their index follows in batches of its own. Pending traces survive
updates, deletes, a failed batch, concurrent catch-ups and a downgrade without corrupting the
contentless index; a search, a round chosen by search and the queue wait for or say what is
missing."""

from __future__ import annotations

import json
import threading

import pytest
from alembic import command
from sqlalchemy import delete, func, select, update

import app.traces.index_worker as index_worker
import app.traces.search_index as search_index
from app.cli import main
from app.review.reviews import get_or_create_judge
from app.review.rounds import RoundError, create_round
from app.review.rubrics import CriterionSpec, create_rubric
from app.traces.ingest import import_paths
from app.traces.queries import TraceFilter, count_traces
from app.traces.rows import ROW_KEYS, trace_row
from app.workspace.db import alembic_config, open_workspace
from app.workspace.models import Assignment, Trace, TraceTool
from tests.test_search import fts_terms


def _record(i: int) -> dict:
    return {
        "id": f"t{i}",
        "messages": [
            {"role": "user", "content": f"Refund order {i} please"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps({"order": i})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"order {i}: parcel{i} delivered"},
            {"role": "assistant", "content": f"Refunded order {i}."},
        ],
        "reward": i % 2,
        "metadata": {"domain": "retail", "shard": f"s{i % 3}"},
    }


N = 25


@pytest.fixture
def stored(ws, write):
    """N traces stored, their full-text index not caught up yet."""
    report = import_paths(
        ws, [write("t.jsonl", lines=[_record(i) for i in range(N)])], catch_up_index=False
    )
    assert report.imported == N and report.indexed == 0
    return ws


def _pending(ws) -> int:
    with ws.session() as s:
        return search_index.pending(s)


def _count(ws, **flt) -> int:
    with ws.session() as s:
        return count_traces(s, TraceFilter(**flt))


def test_stored_first_then_searchable(stored):
    ws = stored
    assert _pending(ws) == N
    assert _count(ws) == N  # in the queue at once
    assert _count(ws, tools=["lookup"]) == N  # tool and score filters work at once
    assert _count(ws, search="parcel7") == 0  # the text is not indexed yet
    assert fts_terms(ws) == []
    seen = []
    assert search_index.catch_up(ws, lambda n, total: seen.append((n, total)), batch=10) == N
    assert seen == [(10, N), (20, N), (N, N)]
    assert _pending(ws) == 0
    assert _count(ws, search="parcel7") == 1
    assert _count(ws, search="refund order") == N
    assert _count(ws, meta=[("shard", "s1")]) == 8  # the metadata filter uses the index too
    assert search_index.catch_up(ws) == 0  # nothing left


def test_import_catches_up_by_default(ws, write):
    report = import_paths(ws, [write("t.jsonl", lines=[_record(i) for i in range(N)])])
    assert report.indexed == N and _pending(ws) == 0
    assert _count(ws, search="parcel3") == 1


def test_updates_and_deletes_of_pending_traces_keep_the_index_whole(stored):
    ws = stored
    with ws.session() as s:
        ids = list(s.scalars(select(Trace.id).order_by(Trace.id)))
        s.execute(update(Trace).where(Trace.id == ids[0]).values(task="Lost luggage in Oslo"))
        s.execute(delete(Trace).where(Trace.id == ids[1]))
        assert s.scalar(select(TraceTool.name).where(TraceTool.trace_id == ids[1])) is None
    assert _pending(ws) == N - 1  # the deleted trace left the list
    assert search_index.catch_up(ws) == N - 1
    assert _count(ws, search="oslo") == 1  # indexed with its current values
    assert _count(ws, search='"parcel1 delivered"') == 0  # the deleted trace's result
    with ws.session() as s:  # an indexed trace updated, then everything deleted
        s.execute(update(Trace).where(Trace.id == ids[2]).values(task="Changed again"))
    assert _count(ws, search="changed") == 1
    with ws.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(ws) == []  # every row was indexed once and unindexed with its values


def test_a_failed_batch_is_rolled_back_and_done_next_time(stored, monkeypatch):
    ws = stored
    real = index_worker.fts_values
    calls = {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 12:
            raise OSError("disk full")
        return real(*args)

    monkeypatch.setattr(index_worker, "fts_values", failing)
    with pytest.raises(OSError, match="disk full"):
        search_index.catch_up(ws, batch=10)
    assert _pending(ws) == N - 10  # the first batch is in; the second rolled back whole
    assert _count(ws, search="parcel3") == 1 and _count(ws, search="parcel13") == 0
    monkeypatch.setattr(index_worker, "fts_values", real)
    assert search_index.catch_up(ws) == N - 10
    with ws.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(ws) == []


def test_two_catch_ups_at_once_index_each_trace_once(stored):
    url = stored.url
    done: list[int] = []

    def run():
        other = open_workspace(url)
        try:
            done.append(search_index.catch_up(other, batch=3))
        finally:
            other.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == N and _pending(stored) == 0
    assert _count(stored, search="refund") == N
    with stored.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(stored) == []  # a trace indexed twice would leave terms behind


def test_downgrade_indexes_the_pending_traces(stored):
    ws = stored
    with ws.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0007_import_index")
    assert _count(ws, search="parcel5") == 1  # indexed by the downgrade, with 0007's SQL
    ws.close()
    ws = open_workspace(ws.url)  # upgraded again
    try:
        assert _pending(ws) == 0
        with ws.session() as s:
            s.execute(delete(Trace))
        assert fts_terms(ws) == []
    finally:
        ws.close()


def test_a_round_by_search_waits_for_the_index(stored):
    ws = stored
    with ws.session() as s:
        judges = [get_or_create_judge(s, n, "judge").id for n in ("A", "B")]
        version = create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")]).id
    with ws.session() as s, pytest.raises(RoundError, match="25 traces just imported"):
        create_round(s, "r1", version, judges, 1, TraceFilter(search="refund"))
    with ws.session() as s:  # a round not chosen by text is fine
        create_round(s, "r0", version, judges, 1, TraceFilter(tools=["lookup"]))
    search_index.catch_up(ws)
    with ws.session() as s:
        rnd = create_round(s, "r1", version, judges, 1, TraceFilter(search="refund"))
        n = s.scalar(select(func.count()).where(Assignment.round_id == rnd.id))
        assert n == N  # overlap 1: each trace to one judge


def test_cli_search_finishes_what_an_interrupted_import_left(stored, capsys):
    code = main(["--db", stored.url, "traces", "list", "--search", "parcel4", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and [r["external_id"] for r in json.loads(out)] == ["t4"]
    assert f"indexed {N} traces left by an interrupted import first" in err
    assert _pending(stored) == 0


def test_a_rows_keys_come_in_the_order_the_parser_sends_them(write):
    from app.traces.importers import FileImport

    [(_, rec)] = list(FileImport(write("one.jsonl", lines=[_record(1)]), None))
    assert tuple(trace_row(rec, None)) == ROW_KEYS


def test_a_large_backlog_is_indexed_with_a_second_process(stored, monkeypatch):
    monkeypatch.setattr(search_index, "PARALLEL_MIN", 1)
    seen = []
    assert search_index.catch_up(stored, lambda n, t: seen.append((n, t)), batch=10) == N
    assert seen == [(10, N), (20, N), (N, N)]
    assert _pending(stored) == 0
    assert _count(stored, search="parcel7") == 1 and _count(stored, search="refund") == N
    with stored.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(stored) == []


def _read_values(ws) -> list[tuple]:
    """What the second process sends for the pending traces (app.traces.index_worker)."""
    with ws.session() as s:
        read = s.connection().exec_driver_sql(index_worker.READ, (0, 10 * N)).all()
    return index_worker.value_rows([tuple(r) for r in read])


def test_values_read_before_a_trace_changed_are_not_indexed(stored):
    """The second process read a trace, then it was updated: its old values are dropped, the
    trace stays listed and is indexed with its new values."""
    ws = stored
    values = _read_values(ws)
    first = values[0][2]
    with ws.session() as s:
        s.execute(update(Trace).where(Trace.id == first).values(task="Lost luggage in Oslo"))
    with ws.session() as s:
        assert search_index._store_values(s, values) == N - 1
    assert _pending(ws) == 1
    assert _count(ws, search="oslo") == 0
    assert search_index.catch_up(ws) == 1
    assert _count(ws, search="oslo") == 1
    with ws.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(ws) == []


def test_values_of_a_deleted_trace_are_not_indexed_under_its_reused_id(stored, write):
    ws = stored
    values = _read_values(ws)
    last = values[-1][2]
    with ws.session() as s:
        s.execute(delete(Trace).where(Trace.id == last))
    import_paths(ws, [write("new.jsonl", lines=[_record(999)])], catch_up_index=False)
    with ws.session() as s:  # SQLite gives the new trace the deleted one's id
        assert s.scalar(select(Trace.id).where(Trace.external_id == "t999")) == last
    with ws.session() as s:
        assert search_index._store_values(s, values) == N - 1
    assert search_index.catch_up(ws) == 1
    assert _count(ws, search="parcel999") == 1
    assert _count(ws, search=f'"parcel{N - 1} delivered"') == 0
    with ws.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(ws) == []


def test_values_another_catch_up_indexed_first_are_skipped(stored):
    values = _read_values(stored)
    assert search_index.catch_up(stored) == N
    with stored.session() as s:
        assert search_index._store_values(s, values) == 0  # nothing claimed, nothing written
    with stored.session() as s:
        s.execute(delete(Trace))
    assert fts_terms(stored) == []


def test_an_import_leaves_every_connection_checkpointing_as_usual(ws, write):
    """The bulk checkpoint setting goes back with each connection to the pool."""
    import_paths(ws, [write("t.jsonl", lines=[_record(i) for i in range(N)])])
    with ws.engine.connect() as a, ws.engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000


def test_cli_import_prints_the_stored_traces_then_the_index(ws, write, capsys):
    path = write("t.jsonl", lines=[_record(i) for i in range(N)])
    assert main(["--db", ws.url, "import", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[-2] == f"imported {N}, duplicates 0, errors 0"
    assert lines[-1].startswith(f"search index: {N} traces added in ")
    assert f"indexing {N} traces for search" in err
    assert _pending(ws) == 0 and _count(ws, search="parcel7") == 1
