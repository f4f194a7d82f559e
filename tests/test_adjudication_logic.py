"""What the adjudication screen shows, computed in app/: disagreement cells, the majority
pre-fill (a tie is a tie), one validation for reviews and gold; writes that say what changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.review import adjudication as adj
from app.review.reviews import (
    ReviewError,
    ReviewInput,
    get_or_create_judge,
    other_reviews,
    save_draft_changes,
    submit_review,
    submit_review_changes,
    withdraw_changes,
)
from app.review.rubrics import create_rubric
from app.workspace.models import Adjudication, Review, RubricVersion, Trace
from tests.test_reliability import SPECS, _traces


@pytest.fixture
def three(ws):
    """Three judges and a lead, two traces, the rubric of test_reliability (ok, quality)."""
    _traces(ws, 2)
    with ws.session() as s:
        ids = list(s.scalars(select(Trace.id).order_by(Trace.external_id)))
        judges = [get_or_create_judge(s, n).id for n in ("A", "B", "C")]
        lead = get_or_create_judge(s, "Lead", "lead").id
        vid = create_rubric(s, "R", SPECS).id
    return ws, ids, judges, lead, vid


def _submit(ws, tid, jid, vid, decision, scores, rationale="because"):
    with ws.session() as s:
        data = ReviewInput(decision, scores, rationale)
        if decision == "modify":
            data.corrected_output = "a better answer"
        submit_review(s, tid, jid, vid, data)


def _reviews(s, tid, vid):
    return [r for r, _ in adj.reviews_of(s, tid, vid)]


def test_a_one_one_one_tie_preselects_no_decision(three):
    ws, ids, (a, b, c), _, vid = three
    _submit(ws, ids[0], a, vid, "approve", {"ok": 1, "quality": 3})
    _submit(ws, ids[0], b, vid, "modify", {"ok": 1, "quality": 2})
    _submit(ws, ids[0], c, vid, "reject", {"ok": 0, "quality": 1})
    with ws.session() as s:
        m = adj.majority_verdict(s.get(RubricVersion, vid), _reviews(s, ids[0], vid))
    assert m.decision is None and m.tied
    assert m.counts == {"approve": 1, "modify": 1, "reject": 1}
    assert m.scores == {}  # no criterion on which every judge agreed


def test_a_tie_keeps_only_unanimous_scores(three):
    ws, ids, (a, b, _c), _, vid = three
    _submit(ws, ids[0], a, vid, "approve", {"ok": 1, "quality": 3})
    _submit(ws, ids[0], b, vid, "modify", {"ok": 1, "quality": 2})
    with ws.session() as s:
        m = adj.majority_verdict(s.get(RubricVersion, vid), _reviews(s, ids[0], vid))
    assert m.decision is None and m.scores == {"ok": 1}


def test_the_majority_decision_brings_its_own_scores(three):
    ws, ids, (a, b, c), _, vid = three
    _submit(ws, ids[0], a, vid, "reject", {"ok": 0, "quality": 1})
    _submit(ws, ids[0], b, vid, "reject", {"ok": 0, "quality": 2})
    _submit(ws, ids[0], c, vid, "approve", {"ok": 1, "quality": 3})
    with ws.session() as s:
        m = adj.majority_verdict(s.get(RubricVersion, vid), _reviews(s, ids[0], vid))
    # reject, with the rejecting judges' ok=0; their quality is 1-1 split: left for the lead
    # (a plurality over all three judges would have paired reject with the approver's values)
    assert (m.decision, m.scores, m.tied) == ("reject", {"ok": 0}, False)


def test_side_by_side_marks_the_rows_where_judges_differ(three):
    ws, ids, (a, b, c), _, vid = three
    _submit(ws, ids[0], a, vid, "reject", {"ok": 0, "quality": 1}, "wrong refund")
    _submit(ws, ids[0], b, vid, "reject", {"ok": 0, "quality": 2}, "bad")
    _submit(ws, ids[0], c, vid, "modify", {"ok": 0, "quality": 1}, "fixable")
    with ws.session() as s:
        sbs = adj.side_by_side(s.get(RubricVersion, vid), adj.reviews_of(s, ids[0], vid))
    assert sbs.judges == ["A", "B", "C"]
    assert sbs.row_keys == ["decision", "ok", "quality", "rationale", "correction"]
    assert sbs.cells[0] == ["reject", "reject", "modify"]
    assert sbs.cells[1] == ["fail", "fail", "fail"]
    assert sbs.cells[2] == ["1", "2", "1"]
    assert sbs.cells[4] == ["", "", "yes"]
    # decision and quality differ; ok agrees; free text is never "disagreement"
    assert sbs.disagree == [True, False, True, False, False]


def test_adjudicate_refuses_a_reject_a_review_would_refuse(three):
    ws, ids, _, lead, vid = three
    bare = {"ok": 1, "quality": 3}  # nothing failed, and no rationale
    with ws.session() as s:
        trace = ids[0]
        with pytest.raises(ReviewError) as as_review:
            submit_review(s, trace, lead, vid, ReviewInput("reject", bare, ""))
        with pytest.raises(adj.AdjudicationError) as as_gold:
            adj.adjudicate(s, trace, vid, lead, "reject", bare, "")
    assert (
        as_gold.value.problems
        == as_review.value.problems
        == [
            "reject: mark at least one failed criterion",
            "reject: a rationale is required",
        ]
    )
    with ws.session() as s:
        assert s.scalar(select(Adjudication)) is None
        # with a failed criterion and a rationale it is gold
        adj.adjudicate(s, ids[0], vid, lead, "reject", {"ok": 0, "quality": 1}, "wrong refund")
        # a gold modify may adopt the decision without rewriting the trace
        adj.adjudicate(s, ids[1], vid, lead, "modify", {"ok": 1, "quality": 2}, "")
        assert len(s.scalars(select(Adjudication)).all()) == 2


def test_writes_say_what_changed_in_the_queue(three):
    ws, ids, (a, _b, _c), _, vid = three
    with ws.session() as s:
        first = save_draft_changes(s, ids[0], a, vid, ReviewInput("approve", {"ok": 1}))
        again = save_draft_changes(s, ids[0], a, vid, ReviewInput("approve", {"ok": 0}))
    assert (first.before, first.after, first.submitted_delta) == ("todo", "draft", 0)
    assert (again.before, again.after) == ("draft", "draft") and again.review_id == first.review_id
    with ws.session() as s:
        done = submit_review_changes(
            s, ids[0], a, vid, ReviewInput("approve", {"ok": 1, "quality": 3})
        )
        kept = save_draft_changes(s, ids[0], a, vid, ReviewInput("reject", {"ok": 0}))
    assert (done.before, done.after, done.submitted_delta) == ("draft", "done", 1)
    assert (kept.before, kept.after) == ("done", "done")  # a submission is not turned back
    with ws.session() as s:
        back = withdraw_changes(s, done.review_id, a)
        assert s.get(Review, done.review_id).status == "draft"
    assert (back.before, back.after, back.submitted_delta, back.trace_id) == (
        "done",
        "draft",
        -1,
        ids[0],
    )


def test_all_reviews_are_blind_for_judges(three):
    ws, ids, (a, b, _c), lead, vid = three
    _submit(ws, ids[0], a, vid, "approve", {"ok": 1, "quality": 3}, "fine")
    _submit(ws, ids[0], b, vid, "modify", {"ok": 1, "quality": 2}, "close")
    with ws.session() as s:
        from app.workspace.models import Judge

        as_lead, versions = other_reviews(s, ids[0], s.get(Judge, lead))
        as_a, _ = other_reviews(s, ids[0], s.get(Judge, a))
    assert [(x.judge, x.decision, x.scores) for x in as_lead] == [
        ("A", "approve", {"ok": 1, "quality": 3}),
        ("B", "modify", {"ok": 1, "quality": 2}),
    ]
    assert as_lead[1].corrected == "a better answer"
    assert set(versions) == {vid}
    assert [x.judge for x in as_a] == ["A"]
