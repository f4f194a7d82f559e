"""Lost updates: two windows of one judge, two leads. Optimistic concurrency on both backends.

Each write names the version it read; the database refuses an UPDATE whose version moved
(`UPDATE ... WHERE version = <read>`), and the audit log keeps both versions.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.review import reviews as reviews_mod
from app.review.adjudication import (
    adjudicate,
    get_adjudication,
    record_adjudication_conflict,
)
from app.review.reviews import (
    ReviewInput,
    get_or_create_judge,
    record_conflict,
    save_draft,
    submit_review,
    withdraw_submission,
)
from app.review.rubrics import CriterionSpec, create_rubric
from app.traces.ingest import import_paths
from app.workspace import audit
from app.workspace.db import open_workspace
from app.workspace.errors import ConflictError
from app.workspace.models import Adjudication, Review, Trace

CHAT = {
    "id": "t1",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
}


@pytest.fixture
def team(db_url, write):
    ws = open_workspace(db_url)
    import_paths(ws, [write("a.jsonl", lines=[CHAT])])
    with ws.session() as s:
        trace = s.scalar(select(Trace))
        lead1 = get_or_create_judge(s, "Lead One", "lead")
        lead2 = get_or_create_judge(s, "Lead Two", "lead")
        judge = get_or_create_judge(s, "Ada")
        v = create_rubric(s, "R", [CriterionSpec("ok", "Correct", "binary")])
        ids = {"trace": trace.id, "v": v.id, "judge": judge.id, "l1": lead1.id, "l2": lead2.id}
    yield ws, ids
    ws.close()


def _approve(why: str) -> ReviewInput:
    return ReviewInput(decision="approve", scores={"ok": 1}, rationale=why)


def test_two_windows_second_submit_is_refused_and_both_versions_are_audited(team):
    ws, ids = team
    t, j, v = ids["trace"], ids["judge"], ids["v"]
    # Both windows opened the trace before either wrote: each read "no review" (version 0).
    with ws.session() as s:
        first = submit_review(s, t, j, v, _approve("window one"), expected_version=0)
    assert first.version == 1
    with pytest.raises(ConflictError) as err, ws.session() as s:
        submit_review(s, t, j, v, _approve("window two"), expected_version=0)
    exc = err.value
    assert exc.theirs["rationale"] == "window one" and exc.theirs["version"] == 1
    assert exc.mine["rationale"] == "window two"
    with ws.session() as s:  # nothing of window two was written
        assert s.scalar(select(Review.rationale)) == "window one"
        theirs = record_conflict(s, exc, j)
    assert theirs["rationale"] == "window one"
    # The judge keeps theirs' replacement: window two writes again, naming version 1.
    with ws.session() as s:
        second = submit_review(s, t, j, v, _approve("window two"), expected_version=1)
        assert second.version == 2
    with ws.session() as s:
        log = [(e.action, e.details) for e in audit.entries(s, "review")]
    assert [a for a, _ in log] == ["submit", "conflict", "amend"]
    conflict, amend = log[1][1], log[2][1]
    assert conflict["mine"]["rationale"] == "window two"
    assert conflict["theirs"]["rationale"] == "window one" and conflict["theirs"]["version"] == 1
    assert amend["before"]["rationale"] == "window one" and amend["before"]["version"] == 1
    assert amend["replaced_version"] == 1 and amend["version"] == 2


def test_drafts_from_two_windows_conflict_too(team):
    ws, ids = team
    t, j, v = ids["trace"], ids["judge"], ids["v"]
    with ws.session() as s:
        d = save_draft(s, t, j, v, ReviewInput(rationale="draft A"), expected_version=0)
        assert d.version == 1
    with pytest.raises(ConflictError), ws.session() as s:
        save_draft(s, t, j, v, ReviewInput(rationale="draft B"), expected_version=0)
    with ws.session() as s:
        d = save_draft(s, t, j, v, ReviewInput(rationale="draft A2"), expected_version=1)
        assert d.version == 2
        assert s.scalar(select(Review.rationale)) == "draft A2"


def test_write_racing_between_read_and_update_is_refused(team, monkeypatch):
    """Another window commits after this one read the row and before its UPDATE: the
    `WHERE version = read` matches nothing, so nothing is overwritten (no expected version
    given: the check is the database's, not only the caller's)."""
    ws, ids = team
    t, j, v = ids["trace"], ids["judge"], ids["v"]
    with ws.session() as s:
        submit_review(s, t, j, v, _approve("original"))
    real_apply = reviews_mod._apply
    raced = []

    def apply_after_a_rival(review, data):
        if not raced:
            raced.append(1)
            worker = threading.Thread(target=_rival_amend, args=(ws, t, j, v))
            worker.start()
            worker.join()
        real_apply(review, data)

    monkeypatch.setattr(reviews_mod, "_apply", apply_after_a_rival)
    with pytest.raises(ConflictError), ws.session() as s:
        submit_review(s, t, j, v, _approve("late writer"))
    monkeypatch.setattr(reviews_mod, "_apply", real_apply)
    with ws.session() as s:
        row = s.scalar(select(Review))
        assert (row.rationale, row.version) == ("rival", 2)
        amends = [e.details for e in audit.entries(s, "review") if e.action == "amend"]
    assert len(amends) == 1 and amends[0]["before"]["rationale"] == "original"


def _rival_amend(ws, t, j, v):
    with ws.session() as s:
        submit_review(s, t, j, v, _approve("rival"))


def test_undo_of_a_stale_submission_is_refused(team):
    ws, ids = team
    t, j, v = ids["trace"], ids["judge"], ids["v"]
    with ws.session() as s:
        r = submit_review(s, t, j, v, _approve("one"), expected_version=0)
        rid = r.id
    with ws.session() as s:
        submit_review(s, t, j, v, _approve("two"), expected_version=1)
    with pytest.raises(ConflictError), ws.session() as s:
        withdraw_submission(s, rid, j, expected_version=1)
    with ws.session() as s:
        assert s.scalar(select(Review.status)) == "submitted"
        w = withdraw_submission(s, rid, j, expected_version=2)
        assert (w.status, w.version) == ("draft", 3)


def test_two_leads_recording_a_verdict(team):
    ws, ids = team
    t, v = ids["trace"], ids["v"]
    with ws.session() as s:
        adjudicate(s, t, v, ids["l1"], "approve", {"ok": 1}, "lead one", expected_version=0)
    with pytest.raises(ConflictError) as err, ws.session() as s:
        adjudicate(s, t, v, ids["l2"], "reject", {"ok": 0}, "lead two", expected_version=0)
    assert err.value.theirs["rationale"] == "lead one"
    with ws.session() as s:
        assert get_adjudication(s, t, v).rationale == "lead one"
        record_adjudication_conflict(s, err.value, ids["l2"])
    with ws.session() as s:
        adj = adjudicate(s, t, v, ids["l2"], "reject", {"ok": 0}, "lead two", expected_version=1)
        assert adj.version == 2
    with ws.session() as s:
        log = [(e.action, e.details) for e in audit.entries(s, "adjudication")]
    assert [a for a, _ in log] == ["adjudicate", "conflict", "amend"]
    assert log[1][1]["theirs"]["rationale"] == "lead one"
    assert log[1][1]["mine"]["rationale"] == "lead two"
    assert log[2][1]["previous"]["rationale"] == "lead one"
    assert log[2][1]["previous"]["lead_id"] == ids["l1"]


def test_adjudication_race_between_read_and_update(team):
    """Two sessions hold the same gold row; the second flush finds its version gone."""
    ws, ids = team
    t, v = ids["trace"], ids["v"]
    with ws.session() as s:
        adjudicate(s, t, v, ids["l1"], "approve", {"ok": 1}, "first")
    s1, s2 = ws.sessions(), ws.sessions()
    try:
        a1 = s1.scalar(select(Adjudication))
        a2 = s2.scalar(select(Adjudication))
        a1.rationale = "from session one"
        s1.commit()
        a2.rationale = "from session two"
        from sqlalchemy.orm.exc import StaleDataError

        with pytest.raises(StaleDataError):
            s2.commit()
    finally:
        s1.close()
        s2.close()
    with ws.session() as s:
        adj = s.scalar(select(Adjudication))
        assert (adj.rationale, adj.version) == ("from session one", 2)


def test_migration_0004_keeps_reviews_and_verdicts_at_version_1(tmp_path, pg_url):
    from sqlalchemy import text

    from app.workspace.db import current_revision, head_revision, make_engine, upgrade

    for url in (f"sqlite:///{tmp_path / 'old.sqlite'}", pg_url):
        engine = make_engine(url)
        upgrade(engine, "0003_step_labels")  # a workspace from before the version columns
        with engine.begin() as c:
            now = "CURRENT_TIMESTAMP"
            c.execute(
                text(
                    f"INSERT INTO judges (name, role, active, created_at) VALUES ('L', 'lead', true, {now})"
                )
            )
            c.execute(
                text(
                    "INSERT INTO traces (source, messages, tools, metadata, scores, n_messages, "
                    f"n_tool_calls, content_hash, imported_at) VALUES ('x', '[]', '[]', '{{}}', '[]', 0, 0, 'h', {now})"
                )
            )
            c.execute(
                text(f"INSERT INTO rubrics (name, description, created_at) VALUES ('R', '', {now})")
            )
            c.execute(
                text(
                    f"INSERT INTO rubric_versions (rubric_id, version, notes, created_at) VALUES (1, 1, '', {now})"
                )
            )
            c.execute(
                text(
                    "INSERT INTO reviews (trace_id, judge_id, rubric_version_id, status, decision, "
                    "scores, rationale, time_on_task_s, created_at, updated_at) VALUES "
                    f"(1, 1, 1, 'submitted', 'approve', '{{}}', 'kept', 0, {now}, {now})"
                )
            )
            c.execute(
                text(
                    "INSERT INTO adjudications (trace_id, rubric_version_id, lead_id, decision, "
                    f"scores, rationale, created_at) VALUES (1, 1, 1, 'approve', '{{}}', 'gold', {now})"
                )
            )
        engine.dispose()
        ws = open_workspace(url)
        try:
            assert current_revision(ws.engine) == head_revision()
            with ws.session() as s:
                r = s.scalar(select(Review))
                a = s.scalar(select(Adjudication))
                assert (r.rationale, r.version, a.rationale, a.version) == ("kept", 1, "gold", 1)
            with ws.session() as s:  # and the first amendment names version 1
                submit_review(s, 1, 1, 1, ReviewInput("approve", {}, "amended"), expected_version=1)
            with ws.session() as s:
                assert s.scalar(select(Review.version)) == 2
        finally:
            ws.close()
