"""Queue search and filters on the search index (SQLite FTS5, PostgreSQL GIN), saved views and
`chambers traces list` filters. Every test runs on both databases."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text, update

import app.workspace
from app.cli import main
from app.review.queue import queue_count, queue_rows
from app.review.reviews import get_or_create_judge
from app.review.rubrics import CriterionSpec, create_rubric
from app.review.views import delete_view, list_views, save_view
from app.traces.index_text import fts_values
from app.traces.ingest import import_paths
from app.traces.queries import TraceFilter, count_traces, facets, list_traces
from app.traces.rows import COLUMNS
from app.traces.search import FilterError, fts5_query, phrases, tsquery
from app.workspace.db import make_engine, open_workspace, resolve_url, upgrade
from app.workspace.models import Trace, TraceScore, TraceTool


def _call(i: int, name: str, args: dict) -> dict:
    return {
        "id": f"c{i}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def _trace(ext: str, task: str, tool: str, args: dict, result: str, answer: str, **extra) -> dict:
    return {
        "id": ext,
        "messages": [
            {"role": "system", "content": "You are an airline agent."},
            {"role": "user", "content": task},
            {"role": "assistant", "tool_calls": [_call(1, tool, args)]},
            {"role": "tool", "tool_call_id": "c1", "content": result},
            {"role": "assistant", "content": answer},
        ],
        **extra,
    }


TRACES = [
    _trace(
        "airline-0042",
        "Book me on the Tuesday flight to Denver",
        "book_reservation",
        {"flight_number": "HAT170", "cabin": "economy", "passengers": 2},
        json.dumps({"reservation_id": "ZFA04Y", "status": "confirmed"}),
        "You are booked: reservation ZFA04Y.",
        reward=1.0,
        metadata={"domain": "airline", "attempt": 3, "user": {"tier": "gold"}},
        scores={"judge_llm": 0.9, "policy_ok": 1},
    ),
    _trace(
        "airline-0043",
        "Cancel my reservation please",
        "cancel_reservation",
        {"reservation_id": "Q1W2E3"},
        "Error: reservation is not refundable",
        "Sorry, it cannot be cancelled.",
        reward=0.0,
        metadata={"domain": "airline", "attempt": "3"},
        scores={"judge_llm": 0.2},
    ),
    _trace(
        "retail-7",
        "Where is my parcel?",
        "track_shipment",
        {"tracking": "1Z999AA10123456784"},
        "in transit, café de Flore depot",
        "It is in transit and arrives Friday.",
        reward=0.5,
        metadata={"domain": "retail"},
    ),
]


@pytest.fixture
def workspace(db_url, write):
    ws = open_workspace(db_url)
    report = import_paths(ws, [write("t.jsonl", lines=TRACES)], "benchmark")
    assert report.imported == 3, report.errors
    yield ws
    ws.close()


def _ids(ws, flt: TraceFilter) -> list[str]:
    with ws.session() as s:
        return [r["external_id"] for r in list_traces(s, flt)]


def test_query_syntax_is_the_same_on_both_databases():
    assert phrases('book_reservation "tuesday flight"  ,, Denv') == [
        ["book", "reservation"],
        ["tuesday", "flight"],
        ["denv"],
    ]
    assert fts5_query([["book", "reservation"], ["denv"]]) == '"book reservation"* AND "denv"*'
    assert fts5_query([["gold"]], "meta") == 'meta : "gold"*'
    assert (
        tsquery([["book", "reservation"], ["denv"]]) == "('book' <-> 'reservation':*) & ('denv':*)"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("book_reservation", ["airline-0042"]),  # a tool name
        ("HAT170", ["airline-0042"]),  # a tool argument value
        ("flight_number", ["airline-0042"]),  # a tool argument key
        ("ZFA04Y confirmed", ["airline-0042"]),  # a tool result (and the answer)
        ("not refundable", ["airline-0043"]),  # an error result
        ("Denver", ["airline-0042"]),  # the task
        ("arrives friday", ["retail-7"]),  # the answer
        ("gold", ["airline-0042"]),  # nested metadata
        ("judge_llm", ["airline-0042", "airline-0043"]),  # an automated score's name
        ("reserv", ["airline-0042", "airline-0043"]),  # prefix of a word
        ("cancel_reservation Q1W2", ["airline-0043"]),  # every word required
        ('"tuesday flight"', ["airline-0042"]),  # a phrase
        ('"flight tuesday"', []),
        ("line-00", ["airline-0042", "airline-0043"]),  # external id substring, as before
        ("0043", ["airline-0043"]),
        ("%", []),  # LIKE wildcards are literal
        ("café", ["retail-7"]),
        ("nothing-like-this", []),
    ],
)
def test_search_finds_tools_arguments_results_metadata_and_ids(workspace, query, expected):
    assert _ids(workspace, TraceFilter(search=query)) == expected


def test_search_ignores_tool_schemas_and_system_role_words(workspace):
    """`tool`, `assistant`, `tool_call` are structure, not content: they find nothing."""
    for word in ("assistant", "tool_call", "call_id"):
        assert _ids(workspace, TraceFilter(search=word)) == [], word


def test_filters_by_tool_steps_score_metadata_outcome_and_source(workspace):
    ids = lambda **kw: _ids(workspace, TraceFilter(**kw))  # noqa: E731
    assert ids(tools=["book_reservation"]) == ["airline-0042"]
    assert ids(tools=["book"]) == []  # a tool filter is exact
    assert ids(tools=["book_reservation", "track_shipment"]) == []  # calls every one
    assert ids(min_steps=5, max_steps=5) == ["airline-0042", "airline-0043", "retail-7"]
    assert ids(min_steps=6) == []
    assert ids(score_name="judge_llm", min_score=0.5) == ["airline-0042"]
    assert ids(score_name="judge_llm", max_score=0.5) == ["airline-0043"]
    assert ids(score_name="policy_ok", min_score=1) == ["airline-0042"]
    assert ids(meta=[("domain", "airline")]) == ["airline-0042", "airline-0043"]
    assert ids(meta=[("attempt", "3")]) == ["airline-0042", "airline-0043"]  # number, string
    assert ids(meta=[("user.tier", "gold")]) == ["airline-0042"]
    assert ids(meta=[("user.tier", "gol")]) == []  # a value matches whole
    assert ids(meta=[("domain", "airline"), ("attempt", "3")], min_outcome=0.5) == ["airline-0042"]
    assert ids(min_outcome=0.2, max_outcome=0.6) == ["retail-7"]
    assert ids(source="benchmark", search="transit") == ["retail-7"]
    with pytest.raises(FilterError, match="not a key"):
        ids(meta=[('a"b', "x")])


def test_facets_list_tools_scores_and_sources(workspace):
    with workspace.session() as s:
        assert facets(s) == {
            "sources": ["benchmark"],
            "tools": ["book_reservation", "cancel_reservation", "track_shipment"],
            "scores": ["judge_llm", "policy_ok"],
        }


def test_index_follows_updates_and_deletes(workspace):
    with workspace.session() as s:
        tid = s.scalar(select(Trace.id).where(Trace.external_id == "retail-7"))
        s.execute(update(Trace).where(Trace.id == tid).values(task="Lost luggage in Oslo"))
        scores = [{"name": "policy_ok", "value": False}, {"name": "label", "value": "x"}]
        s.execute(update(Trace).where(Trace.id == tid).values(scores=scores))
    assert _ids(workspace, TraceFilter(search="oslo")) == ["retail-7"]
    assert _ids(workspace, TraceFilter(score_name="policy_ok", max_score=0)) == ["retail-7"]
    with workspace.session() as s:  # booleans count as 1/0, text values are left out
        assert s.scalar(select(TraceScore.value).where(TraceScore.trace_id == tid)) == 0.0
        assert s.scalar(select(TraceScore.name).where(TraceScore.name == "label")) is None
    assert _ids(workspace, TraceFilter(search="transit")) == ["retail-7"]  # result unchanged
    with workspace.session() as s:
        s.execute(delete(Trace).where(Trace.id == tid))
    assert _ids(workspace, TraceFilter(search="oslo")) == []
    assert _ids(workspace, TraceFilter(tools=["track_shipment"])) == []
    with workspace.session() as s:
        assert s.scalar(select(TraceTool.name).where(TraceTool.trace_id == tid)) is None


def test_queue_search_and_saved_views(workspace):
    with workspace.session() as s:
        lead = get_or_create_judge(s, "Lee", "lead")
        other = get_or_create_judge(s, "Ann", "judge")
        version = create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")]).id
        lead_id, other_id = lead.id, other.id
    flt = TraceFilter(search="reservation", meta=[("domain", "airline")], max_outcome=0.5)
    with workspace.session() as s:
        lead = s.get(type(lead), lead_id)
        rows = queue_rows(s, lead, version, flt)
        assert [r.external_id for r in rows] == ["airline-0043"]
        assert queue_count(s, lead, version, flt, "todo") == 1
        save_view(s, lead_id, "Failed airline", flt, "todo")
        save_view(s, lead_id, "Tools", TraceFilter(tools=["book_reservation"]))
        save_view(s, lead_id, "Tools", TraceFilter(tools=["track_shipment"]))  # replaces
    with workspace.session() as s:
        views = list_views(s, lead_id)
        assert [(v.name, v.status) for v in views] == [("Failed airline", "todo"), ("Tools", None)]
        assert views[0].filter == flt
        assert views[1].filter.tools == ["track_shipment"]
        assert list_views(s, other_id) == []  # per judge
        with pytest.raises(FilterError, match="needs a name"):
            save_view(s, lead_id, "  ", flt)
        assert delete_view(s, lead_id, "Tools") and not delete_view(s, lead_id, "Tools")
    with workspace.session() as s:
        assert [v.name for v in list_views(s, lead_id)] == ["Failed airline"]


def _old_rows(tmp_path, write) -> list[dict]:
    """TRACES as rows of the traces table (read from a workspace at head)."""
    src = open_workspace(str(tmp_path / "src.sqlite"))
    try:
        import_paths(src, [write("old.jsonl", lines=TRACES)], "benchmark")
        with src.session() as s:
            cols = ", ".join(c for c in COLUMNS if c != "batch_id")
            return [dict(r._mapping) for r in s.execute(text(f"SELECT {cols} FROM traces"))]
    finally:
        src.close()


@pytest.mark.parametrize("start", ["0003_step_labels", "0006_models"])
def test_migration_indexes_existing_traces(tmp_path, write, db_url, start):
    """A workspace at 0003 (no index) or 0006 (indexed by 0005's triggers) with traces:
    upgrading makes them searchable, and the index stays consistent on later deletes."""
    rows = _old_rows(tmp_path, write)
    url = resolve_url(db_url)
    engine = make_engine(url)
    upgrade(engine, start)
    with engine.begin() as c:  # as the importer of that time stored them
        names = ", ".join(rows[0])
        marks = ", ".join(f":{k}" for k in rows[0])
        c.execute(text(f"INSERT INTO traces ({names}) VALUES ({marks})"), rows)
    engine.dispose()
    ws = open_workspace(db_url)
    try:
        assert _ids(ws, TraceFilter(search="book_reservation")) == ["airline-0042"]
        assert _ids(ws, TraceFilter(tools=["cancel_reservation"])) == ["airline-0043"]
        with ws.session() as s:
            assert s.scalar(select(TraceScore.value).where(TraceScore.name == "policy_ok")) == 1.0
            assert count_traces(s, TraceFilter(search="reservation")) == 2
            s.execute(delete(Trace))
        if ws.dialect == "sqlite":
            assert fts_terms(ws) == []
    finally:
        ws.close()


def fts_terms(ws) -> list[str]:
    """Every term the SQLite index still holds for some row (deletes applied)."""
    with ws.session() as s:
        s.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, trace_fts, 'row')"
            )
        )
        return list(s.scalars(text("SELECT term FROM temp.v")))


def test_cli_traces_list_filters(capsys, workspace, db_url):
    def run(*argv):
        code = main(["--db", db_url, "traces", "list", "--json", *argv])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if code == 0 else err)

    code, rows = run("--search", "book_reservation")
    assert code == 0 and [r["external_id"] for r in rows] == ["airline-0042"]
    code, rows = run("--tool", "cancel_reservation", "--meta", "domain=airline")
    assert [r["external_id"] for r in rows] == ["airline-0043"]
    code, rows = run("--score", "judge_llm", "--min-score", "0.5", "--min-steps", "5")
    assert [r["external_id"] for r in rows] == ["airline-0042"]
    code, err = run("--meta", "domain")
    assert code != 0 and "--meta 'domain': expected KEY=VALUE" in err and "Traceback" not in err
    code, err = run("--min-score", "1")
    assert code != 0 and "need --score NAME" in err


def test_postgresql_search_uses_the_gin_index(pg_url, write):
    """The query's document expression is the index's: the planner can answer from it."""
    from sqlalchemy import text

    ws = open_workspace(pg_url)
    try:
        import_paths(ws, [write("t.jsonl", lines=TRACES)], "benchmark")
        q = TraceFilter(search="book_reservation").apply(select(Trace.id))
        sql = str(q.compile(ws.engine, compile_kwargs={"literal_binds": True}))
        with ws.engine.connect() as c:
            c.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + sql))
        assert "ix_traces_search" in plan, plan
    finally:
        ws.close()


def test_sqlite_search_looks_hits_up_by_id(ws, write):
    """A rare word is looked up through the id list, not found by scanning every trace."""
    from sqlalchemy import text

    import_paths(ws, [write("t.jsonl", lines=TRACES)], "benchmark")
    q = TraceFilter(search="HAT170").apply(select(Trace.id)).order_by(Trace.id).limit(200)
    sql = str(q.compile(ws.engine, compile_kwargs={"literal_binds": True}))
    with ws.engine.connect() as c:
        plan = [r[3] for r in c.execute(text("EXPLAIN QUERY PLAN " + sql))]
    assert any("SEARCH traces USING INTEGER PRIMARY KEY" in p for p in plan), plan
    assert not any(p.startswith("SCAN traces") for p in plan), plan


def _migration(name: str):
    """A migration module (their file names start with a digit: loaded by path)."""
    path = Path(app.workspace.__file__).parent / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: the example is shown
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    args=st.lists(_JSON, min_size=1, max_size=3),
    meta=st.dictionaries(st.text(min_size=1, max_size=6), _JSON, max_size=3),
    reward=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
)
def test_importer_writes_the_values_the_delete_trigger_computes(
    tmp_path_factory, args, meta, reward
):
    """SQLite: the full-text index catches up after the import (app.traces.search_index) from
    values computed in Python (app.traces.index_text). The delete trigger recomputes each row's
    values in SQL from the stored JSON, so they must be the same (reals, booleans, huge
    integers, nested keys, empty metadata); after updates and deletes the contentless index
    holds no term of any row."""
    tmp = tmp_path_factory.mktemp("bulk")
    records = [
        _trace(f"t{i}", f"task {i}", f"tool_{i}", a, f"result {i}", "done", metadata=meta)
        | ({} if reward is None else {"reward": reward})
        for i, a in enumerate(args)
    ]
    path = tmp / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ws = open_workspace(str(tmp / "ws.sqlite"))
    try:
        report = import_paths(ws, [path], "benchmark")
        assert report.imported == len(records), report.errors
        assert report.indexed == len(records)
        sql = _migration("0007_import_index").fts_values("traces")
        with ws.session() as s:
            stored = s.execute(text(f"SELECT id, {sql} FROM traces ORDER BY id")).all()
            assert fts_terms(ws)
            tools = s.scalars(text("SELECT name FROM trace_tools ORDER BY trace_id")).all()
            assert tools == [f"tool_{i}" for i in range(len(records))]
            # the values the catch-up computed, recomputed the same way, equal the SQL ones
            columns = "task, final_output, messages, metadata, scores"
            rows = s.execute(text(f"SELECT {columns} FROM traces ORDER BY id")).all()
        python = [fts_values(t, a, orjson.loads(m), md, sc) for t, a, m, md, sc in rows]
        assert python == [tuple(r[1:]) for r in stored]
        with ws.session() as s:
            s.execute(update(Trace).values(task="changed"))
            s.execute(delete(Trace))
        assert fts_terms(ws) == []
    finally:
        ws.close()
