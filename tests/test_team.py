"""Who may do what: the first profile is the lead, only leads create profiles, and on
PostgreSQL real database roles bound by row-level security (tested with plain SQL)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from app.cli import main
from app.review.reviews import ReviewInput, submit_review
from app.review.rubrics import CriterionSpec, create_rubric
from app.review.team import acting_judge, create_profile, grant_role, set_role
from app.traces.ingest import import_paths
from app.workspace import audit
from app.workspace.db import open_workspace
from app.workspace.errors import NotAllowed
from app.workspace.models import Judge, Review, Trace


def test_first_profile_is_the_lead_and_only_a_lead_creates_profiles(db_url):
    ws = open_workspace(db_url)
    try:
        with ws.session() as s:
            ann = create_profile(s, "Ann", "judge", None)
            assert ann.role == "lead"  # the first profile, whatever was asked
        with pytest.raises(NotAllowed), ws.session() as s:
            create_profile(s, "Mallory", "lead", None)
        with ws.session() as s:
            bob = create_profile(s, "Bob", "judge", s.get(Judge, ann.id))
        with pytest.raises(NotAllowed), ws.session() as s:
            create_profile(s, "Mallory", "lead", s.get(Judge, bob.id))
        with pytest.raises(NotAllowed), ws.session() as s:
            set_role(s, "Bob", "lead", s.get(Judge, bob.id))
        with pytest.raises(NotAllowed, match="only lead"), ws.session() as s:
            set_role(s, "Ann", "judge", s.get(Judge, ann.id))
        with ws.session() as s:
            set_role(s, "Bob", "lead", s.get(Judge, ann.id))
            assert {j.name: j.role for j in s.scalars(select(Judge))} == {
                "Ann": "lead",
                "Bob": "lead",
            }
            log = [(e.action, e.actor_id, e.details) for e in audit.entries(s, "judge")]
        assert [(a, actor) for a, actor, _ in log] == [
            ("create", ann.id),
            ("create", ann.id),
            ("set_role", ann.id),
        ]
        assert log[0][2]["first_profile"] is True and log[1][2]["role"] == "judge"
    finally:
        ws.close()


def test_team_commands(tmp_path, capsys):
    db = str(tmp_path / "ws.sqlite")
    assert main(["--db", db, "team", "add", "Ann"]) == 0
    assert main(["--db", db, "team", "add", "Bob"]) == 2
    assert "only a lead can create profiles" in capsys.readouterr().err
    assert main(["--db", db, "team", "add", "Bob", "--as", "Ann"]) == 0
    assert main(["--db", db, "team", "add", "Cy", "--role", "lead", "--as", "Bob"]) == 2
    assert main(["--db", db, "team", "grant-role", "bob", "Bob", "--as", "Ann"]) == 2
    assert "SQLite is single-user" in capsys.readouterr().err
    assert main(["--db", db, "team", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"name": "Ann"' in out and '"role": "lead"' in out and "Cy" not in out


# ---------------------------------------------------------------------------------------
# PostgreSQL: real roles, row-level security


def _as_role(pg_url: str, role: str) -> str:
    return pg_url.replace("postgres@", f"{role}@", 1)


@pytest.fixture
def pg_team(pg_url, write):
    """A workspace owned by the superuser, three profiles mapped to three fresh login roles."""
    tag = uuid.uuid4().hex[:8]
    roles = {"Lead": f"lead_{tag}", "A": f"judge_a_{tag}", "B": f"judge_b_{tag}"}
    ws = open_workspace(pg_url)
    chat = {
        "id": "t1",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    import_paths(ws, [write("t.jsonl", lines=[chat])])
    with ws.session() as s:
        lead = create_profile(s, "Lead", "lead", None)
        a = create_profile(s, "A", "judge", lead)
        b = create_profile(s, "B", "judge", lead)
        v = create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")])
        trace_id = s.scalar(select(Trace.id))
        for name, role in roles.items():
            grant_role(s, role, name, lead, create=True)
        ids = {"Lead": lead.id, "A": a.id, "B": b.id, "v": v.id, "trace": trace_id}
    with ws.session() as s:  # the owner (not bound by RLS) writes one review for each judge
        for name in ("A", "B"):
            submit_review(
                s, trace_id, ids[name], v.id, ReviewInput("approve", {"ok": 1}, f"by {name}")
            )
    yield ws, ids, roles
    ws.close()
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as c:
        for role in roles.values():
            c.execute(f'DROP OWNED BY "{role}"')
            c.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_judge_role_cannot_read_or_write_as_another_judge(pg_url, pg_team):
    ws, ids, roles = pg_team
    judge_ws = open_workspace(_as_role(pg_url, roles["A"]))
    try:
        with judge_ws.engine.connect() as c:
            assert c.execute(text("SELECT current_user")).scalar() == roles["A"]
            seen = c.execute(text("SELECT judge_id, rationale FROM reviews")).all()
            assert seen == [(ids["A"], "by A")]  # not B's
            # Updating B's review touches nothing: the row is invisible.
            n = c.execute(
                text("UPDATE reviews SET rationale = 'forged' WHERE judge_id = :b"), {"b": ids["B"]}
            ).rowcount
            assert n == 0
            c.rollback()
            with pytest.raises(DBAPIError, match="row-level security"):
                c.execute(
                    text(
                        "INSERT INTO reviews (trace_id, judge_id, rubric_version_id, status, "
                        "scores, rationale, time_on_task_s, created_at, updated_at, version) "
                        "VALUES (:t, :b, :v, 'draft', '{}', 'as B', 0, now(), now(), 1)"
                    ),
                    {"t": ids["trace"], "b": ids["B"], "v": ids["v"]},
                )
            c.rollback()
            with pytest.raises(DBAPIError, match="row-level security"):  # no forged audit entries
                c.execute(
                    text(
                        "INSERT INTO audit_log (at, actor_id, action, entity, details) "
                        "VALUES (now(), :b, 'submit', 'review', '{}')"
                    ),
                    {"b": ids["B"]},
                )
            c.rollback()
            with pytest.raises(DBAPIError, match="row-level security"):  # no self-promotion
                c.execute(
                    text(
                        "INSERT INTO judges (name, role, active, created_at) "
                        "VALUES ('Mallory', 'lead', true, now())"
                    )
                )
            c.rollback()
            assert (
                c.execute(
                    text("UPDATE judges SET role = 'lead' WHERE id = :a"), {"a": ids["A"]}
                ).rowcount
                == 0
            )
            c.rollback()
            assert c.execute(text("SELECT count(*) FROM adjudications")).scalar() == 0
            with pytest.raises(ProgrammingError):  # never the schema
                c.execute(text("DELETE FROM alembic_version"))
        # Through the app: the login decides who this is, and the judge's own work goes through.
        with judge_ws.session() as s:
            me = acting_judge(s)
            assert me.name == "A"
            submit_review(
                s, ids["trace"], me.id, ids["v"], ReviewInput("approve", {"ok": 1}, "amended by A")
            )
        with ws.session() as s:  # the owner sees B's review untouched
            rows = {r.judge_id: r.rationale for r in s.scalars(select(Review))}
        assert rows == {ids["A"]: "amended by A", ids["B"]: "by B"}
    finally:
        judge_ws.close()


def test_a_lead_role_reads_every_review_and_adjudicates(pg_url, pg_team):
    from app.review.adjudication import adjudicate

    ws, ids, roles = pg_team
    lead_ws = open_workspace(_as_role(pg_url, roles["Lead"]))
    try:
        with lead_ws.session() as s:
            me = acting_judge(s)
            assert me.name == "Lead"
            assert sorted(r.rationale for r in s.scalars(select(Review))) == ["by A", "by B"]
            adjudicate(s, ids["trace"], ids["v"], me.id, "approve", {"ok": 1}, "gold")
            create_profile(s, "C", "judge", me)  # a lead role may add profiles
        with lead_ws.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM adjudications")).scalar() == 1
    finally:
        lead_ws.close()


def test_an_unmapped_role_sees_no_reviews(pg_url, pg_team):
    ws, ids, roles = pg_team
    with ws.session() as s:  # B's login is unmapped again: the owner clears it
        s.execute(text("UPDATE judges SET db_role = NULL WHERE id = :b"), {"b": ids["B"]})
    judge_ws = open_workspace(_as_role(pg_url, roles["B"]))
    try:
        with judge_ws.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM reviews")).scalar() == 0
        with judge_ws.session() as s:
            assert acting_judge(s) is None
    finally:
        judge_ws.close()
