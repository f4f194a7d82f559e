"""The workspace on both backends: schema, migrations, idempotent import, audit log, reviews."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.review.reviews import (
    ReviewError,
    ReviewInput,
    get_or_create_judge,
    save_draft,
    submit_review,
    visible_reviews,
)
from app.review.rubrics import CriterionSpec, create_rubric, is_frozen
from app.traces.ingest import import_paths
from app.workspace import audit
from app.workspace.db import (
    current_revision,
    head_revision,
    make_engine,
    open_workspace,
    resolve_url,
    upgrade,
)
from app.workspace.errors import WorkspaceError
from app.workspace.models import (
    AuditEntry,
    Base,
    ImportBatch,
    Review,
    Trace,
    include_in_autogenerate,
)

CHAT = {
    "id": "t1",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    "reward": 1,
}


def test_open_creates_schema_at_head(db_url):
    ws = open_workspace(db_url)
    try:
        assert current_revision(ws.engine) == head_revision()
        tables = set(inspect(ws.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        if ws.dialect == "sqlite":
            with ws.engine.connect() as c:
                assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        ws.close()


def test_models_and_migrations_agree(db_url):
    """Autogenerate finds nothing to do: the migrations create exactly the ORM schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    ws = open_workspace(db_url)
    try:
        with ws.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(
                    conn,
                    opts={"compare_type": False, "include_name": include_in_autogenerate},
                ),
                Base.metadata,
            )
        assert diff == []
    finally:
        ws.close()


def test_reimport_is_idempotent_and_batches_are_recorded(db_url, write):
    ws = open_workspace(db_url)
    try:
        path = write("a.jsonl", lines=[CHAT, {**CHAT, "id": "t2"}, CHAT])
        first = import_paths(ws, [path])
        second = import_paths(ws, [path])
        assert (first.imported, first.duplicates) == (2, 1)
        assert (second.imported, second.duplicates) == (0, 3)
        with ws.session() as s:
            assert s.scalar(select(func.count(Trace.id))) == 2
            batches = list(s.scalars(select(ImportBatch).order_by(ImportBatch.id)))
            assert [(b.n_records, b.n_imported, b.n_duplicates, b.format) for b in batches] == [
                (3, 2, 1, "benchmark"),
                (3, 0, 3, "benchmark"),
            ]
            assert batches[0].sha256 == batches[1].sha256 and len(batches[0].sha256) == 64
            t = s.scalar(select(Trace).where(Trace.external_id == "t1"))
            assert t.outcome == 1.0 and t.messages[0]["parts"][0]["text"] == "hi"
            assert t.batch_id == batches[0].id
    finally:
        ws.close()


def test_audit_log_is_append_only(db_url):
    ws = open_workspace(db_url)
    try:
        with ws.session() as s:
            audit.record(s, "test", "thing", 1, note="x")
        with pytest.raises((DBAPIError, IntegrityError)) as exc, ws.session() as s:
            s.execute(text("UPDATE audit_log SET action = 'forged'"))
        assert "append-only" in str(exc.value)
        with pytest.raises((DBAPIError, IntegrityError)), ws.session() as s:
            s.execute(text("DELETE FROM audit_log"))
        with ws.session() as s:
            assert [e.action for e in s.scalars(select(AuditEntry))] == ["test"]
    finally:
        ws.close()


def _rubric(s):
    return create_rubric(
        s,
        "R",
        [
            CriterionSpec("ok", "Correct", "binary"),
            CriterionSpec(
                "style",
                "Style",
                "ordinal",
                levels=[{"value": v, "label": str(v)} for v in (1, 2, 3)],
                required_for=["approve"],
            ),
        ],
    )


def test_reviews_drafts_submissions_and_blindness(db_url, write):
    ws = open_workspace(db_url)
    try:
        import_paths(ws, [write("a.jsonl", lines=[CHAT])])
        with ws.session() as s:
            trace = s.scalar(select(Trace))
            v = _rubric(s)
            a, b = get_or_create_judge(s, "A"), get_or_create_judge(s, "B")
            lead = get_or_create_judge(s, "L", "lead")
            assert not is_frozen(s, v.id)
            save_draft(s, trace.id, a.id, v.id, ReviewInput(decision="approve", scores={"ok": 1}))
            assert is_frozen(s, v.id)
            with pytest.raises(ReviewError, match="style: required for approve"):
                submit_review(
                    s, trace.id, a.id, v.id, ReviewInput(decision="approve", scores={"ok": 1})
                )
        with ws.session() as s:
            submit_review(
                s,
                trace.id,
                a.id,
                v.id,
                ReviewInput(decision="approve", scores={"ok": 1, "style": 3}, time_on_task_s=12.5),
            )
            with pytest.raises(ReviewError, match="rationale is required"):
                submit_review(
                    s, trace.id, b.id, v.id, ReviewInput(decision="reject", scores={"ok": 0})
                )
            submit_review(
                s,
                trace.id,
                b.id,
                v.id,
                ReviewInput(decision="reject", scores={"ok": 0}, rationale="wrong"),
            )
            assert [r.judge_id for r in visible_reviews(s, trace.id, a)] == [a.id]
            assert [r.judge_id for r in visible_reviews(s, trace.id, b)] == [b.id]
            assert {r.judge_id for r in visible_reviews(s, trace.id, lead)} == {a.id, b.id}
        with ws.session() as s:  # a draft save after submission never demotes the review
            save_draft(s, trace.id, a.id, v.id, ReviewInput(decision="reject"))
            r = s.scalar(select(Review).where(Review.judge_id == a.id))
            assert (r.status, r.decision, r.scores, r.time_on_task_s) == (
                "submitted",
                "approve",
                {"ok": 1, "style": 3},
                12.5,
            )
            # amendment is audited with the previous values
            submit_review(
                s,
                trace.id,
                a.id,
                v.id,
                ReviewInput(decision="approve", scores={"ok": 1, "style": 2}),
            )
            actions = [
                (e.action, e.details.get("before", {}).get("scores"))
                for e in audit.entries(s, "review", r.id)
            ]
            assert actions == [("submit", None), ("amend", {"ok": 1, "style": 3})]
            with pytest.raises(IntegrityError), s.begin_nested():
                s.add(
                    Review(trace_id=trace.id, judge_id=a.id, rubric_version_id=v.id, status="draft")
                )
                s.flush()
    finally:
        ws.close()


def test_migration_from_first_revision_keeps_rows(tmp_path, pg_url):
    for url in (f"sqlite:///{tmp_path / 'old.sqlite'}", pg_url):
        engine = make_engine(url)
        upgrade(engine, "0001")  # an "older workspace"
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO judges (name, role, active, created_at) VALUES ('old judge', 'lead', true, CURRENT_TIMESTAMP)"
                )
            )
            c.execute(
                text(
                    "INSERT INTO audit_log (at, action, entity, details) VALUES (CURRENT_TIMESTAMP, 'legacy', 'x', '{}')"
                )
            )
            c.execute(text("UPDATE audit_log SET action = 'still mutable at 0001'"))
        assert current_revision(engine) == "0001"
        engine.dispose()
        ws = open_workspace(url)  # opening upgrades in place
        try:
            assert current_revision(ws.engine) == head_revision()
            with ws.session() as s:
                assert s.execute(text("SELECT name, role FROM judges")).all() == [
                    ("old judge", "lead")
                ]
                assert s.scalar(text("SELECT action FROM audit_log")) == "still mutable at 0001"
            with pytest.raises((DBAPIError, IntegrityError)), ws.session() as s:
                s.execute(text("UPDATE audit_log SET action = 'now refused'"))
        finally:
            ws.close()


def test_foreign_database_is_left_alone(tmp_path):
    import sqlite3

    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE customers (id integer)").connection.commit()
    with pytest.raises(WorkspaceError, match="not a Chambers workspace"):
        open_workspace(str(path))


def test_url_resolution(tmp_path, monkeypatch):
    assert resolve_url(str(tmp_path / "x.sqlite")) == f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("CHAMBERS_DB", str(tmp_path / "env.sqlite"))
    assert resolve_url(None).endswith("env.sqlite")
    monkeypatch.delenv("CHAMBERS_DB")
    assert resolve_url(None).endswith("home/workspace.sqlite")  # CHAMBERS_HOME from conftest
    with pytest.raises(WorkspaceError, match="is a directory"):
        resolve_url(str(tmp_path))


def test_unreachable_server_is_one_clear_error():
    with pytest.raises(WorkspaceError, match="cannot open workspace postgresql"):
        open_workspace("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
