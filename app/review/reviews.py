"""Judges and reviews: drafts saved continuously, submissions validated and audited.

Blind review: `visible_reviews` shows a judge only their own reviews, before and after they
submit (seeing a colleague's verdict would bias an amendment); leads see all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.review.rubrics import validate_scores
from app.workspace import audit
from app.workspace.errors import ChambersError, ConflictError, NotFound
from app.workspace.models import Judge, Review, RubricVersion, Trace
from app.workspace.types import (
    DECISIONS,
    ROLES,
    STEP_LABELS,
    Decision,
    QueueStatus,
    ReviewId,
    TraceId,
)


class ReviewError(ChambersError):
    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


def get_or_create_judge(session: Session, name: str, role: str = "judge") -> Judge:
    name = name.strip()
    if not name:
        raise ReviewError("a judge needs a name")
    if role not in ROLES:
        raise ReviewError(f"role must be one of {', '.join(ROLES)}")
    judge = session.scalar(select(Judge).where(Judge.name == name))
    if judge is None:
        judge = Judge(name=name, role=role)
        session.add(judge)
        session.flush()
        audit.record(session, "create", "judge", judge.id, judge.id, name=name, role=role)
    return judge


def get_judge(session: Session, name: str) -> Judge:
    judge = session.scalar(select(Judge).where(Judge.name == name))
    if judge is None:
        raise NotFound(f"no judge named {name!r}")
    return judge


@dataclass
class ReviewInput:
    """What a judge has entered so far (a draft may be incomplete)."""

    decision: Decision | None = None
    scores: dict[str, Any] | None = None
    rationale: str = ""
    corrected_messages: list[dict[str, Any]] | None = None
    corrected_output: str | None = None
    time_on_task_s: float = 0.0
    # [{"step": message index, "label": "good"|"wrong"|"first_error", "reason", "comment"}]
    step_labels: list[dict[str, Any]] | None = None


def _find(session: Session, trace_id: int, judge_id: int, version_id: int) -> Review | None:
    return session.scalar(
        select(Review).where(
            Review.trace_id == trace_id,
            Review.judge_id == judge_id,
            Review.rubric_version_id == version_id,
        )
    )


def _apply(review: Review, data: ReviewInput) -> None:
    review.decision = data.decision
    review.scores = dict(data.scores or {})
    review.rationale = data.rationale
    review.corrected_messages = data.corrected_messages
    review.corrected_output = data.corrected_output
    review.step_labels = [dict(x) for x in data.step_labels] if data.step_labels else None
    review.time_on_task_s = data.time_on_task_s
    review.updated_at = datetime.now(UTC)


def snapshot(review: Review | None) -> dict[str, Any] | None:
    """The stored values of a review as the audit log and a conflict dialog show them."""
    if review is None:
        return None
    return {
        "id": review.id,
        "version": review.version,
        "status": review.status,
        "decision": review.decision,
        "scores": dict(review.scores or {}),
        "rationale": review.rationale,
        "corrected_output": review.corrected_output,
        "step_labels": review.step_labels,
        "updated_at": review.updated_at.isoformat() if review.updated_at else None,
    }


def _mine(data: ReviewInput, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "decision": data.decision,
        "scores": dict(data.scores or {}),
        "rationale": data.rationale,
        "corrected_output": data.corrected_output,
        "step_labels": data.step_labels,
    }


def _check_version(
    review: Review | None, expected: int | None, mine: dict[str, Any], key: dict[str, int]
) -> None:
    """`expected` is the version the caller read (0: it saw no review; None: no check)."""
    if expected is None:
        return
    stored = review.version if review is not None else 0
    if stored != expected:
        raise ConflictError(
            "review", review.id if review else None, expected, mine, snapshot(review), key
        )


def _flush(
    session: Session, review: Review, read: int, mine: dict[str, Any], key: dict[str, int]
) -> None:
    """Flush; the UPDATE is conditioned on the version read, the INSERT on the unique key."""
    review_id = review.id  # read now: a failed flush rolls the session back
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise ConflictError("review", review_id, read, mine, None, key) from None


def save_draft(
    session: Session,
    trace_id: int,
    judge_id: int,
    version_id: int,
    data: ReviewInput,
    expected_version: int | None = None,
) -> Review:
    """Upsert the judge's draft. A submitted review is never turned back into a draft.

    Raises ConflictError when the stored review is not the version the caller read."""
    key = {"trace_id": trace_id, "judge_id": judge_id, "version_id": version_id}
    review = _find(session, trace_id, judge_id, version_id)
    _check_version(review, expected_version, _mine(data, "draft"), key)
    if review is not None and review.status == "submitted":
        return review
    if data.decision is not None and data.decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}")
    read = review.version if review is not None else 0
    if review is None:
        review = Review(
            trace_id=trace_id, judge_id=judge_id, rubric_version_id=version_id, status="draft"
        )
        session.add(review)
    _apply(review, data)
    _flush(session, review, read, _mine(data, "draft"), key)
    return review


def check_submission(
    session: Session,
    trace: Trace,
    version: RubricVersion,
    data: ReviewInput,
    require_correction: bool = True,
) -> list[str]:
    """Everything wrong with a submission (or a lead's gold verdict), as messages.

    One validation for both: `adjudicate` calls it with require_correction=False, so a gold
    "modify" may adopt the decision without the lead rewriting the trace."""
    if data.decision not in DECISIONS:
        return [f"choose a decision: {', '.join(DECISIONS)}"]
    problems = validate_scores(version, data.decision, data.scores or {})
    if data.decision == "reject":
        failed = [
            c.key
            for c in version.criteria
            if (data.scores or {}).get(c.key) in (0, False)
            or _is_lowest(c, (data.scores or {}).get(c.key))
        ]
        if not failed:
            problems.append("reject: mark at least one failed criterion")
        if not data.rationale.strip():
            problems.append("reject: a rationale is required")
    if data.decision == "modify":
        changed = data.corrected_messages is not None and data.corrected_messages != trace.messages
        changed = changed or (
            data.corrected_output is not None
            and data.corrected_output != (trace.final_output or "")
        )
        if not changed and require_correction:
            problems.append("modify: edit the agent's output (nothing was changed)")
    problems += step_label_problems(trace.messages, data.step_labels)
    return problems


def step_label_problems(
    messages: list[dict[str, Any]], labels: list[dict[str, Any]] | None
) -> list[str]:
    """Step labels must point at assistant messages, use a known label, and mark at most one
    first error; each step is labelled once."""
    problems: list[str] = []
    seen: set[int] = set()
    first_errors = 0
    for i, lab in enumerate(labels or []):
        step, label = lab.get("step"), lab.get("label")
        where = f"step label {i + 1}"
        if not isinstance(step, int) or not 0 <= step < len(messages):
            problems.append(f"{where}: step {step!r} is not a message of this trace")
            continue
        if messages[step].get("role") != "assistant":
            problems.append(f"{where}: step {step} is not an assistant step")
        if label not in STEP_LABELS:
            problems.append(f"{where}: label must be one of {', '.join(STEP_LABELS)}")
        if step in seen:
            problems.append(f"{where}: step {step} is labelled twice")
        seen.add(step)
        first_errors += label == "first_error"
    if first_errors > 1:
        problems.append("step labels: mark at most one first error")
    return problems


def _is_lowest(c, value: Any) -> bool:
    return c.scale == "ordinal" and value == 1


def submit_review(
    session: Session,
    trace_id: int,
    judge_id: int,
    version_id: int,
    data: ReviewInput,
    expected_version: int | None = None,
) -> Review:
    """Validate and store a submission (a new review or an amendment); audited.

    The audit entry names the version replaced and the one written. Raises ConflictError when
    the stored review is not `expected_version` or changes between the read and the write."""
    trace = session.get(Trace, trace_id)
    version = session.get(RubricVersion, version_id)
    if trace is None or version is None:
        raise NotFound("trace or rubric version no longer exists")
    problems = check_submission(session, trace, version, data)
    if problems:
        raise ReviewError("; ".join(problems), problems)
    key = {"trace_id": trace_id, "judge_id": judge_id, "version_id": version_id}
    mine = _mine(data, "submitted")
    review = _find(session, trace_id, judge_id, version_id)
    _check_version(review, expected_version, mine, key)
    before = snapshot(review) if review is not None and review.status == "submitted" else None
    read = review.version if review is not None else 0
    if review is None:
        review = Review(trace_id=trace_id, judge_id=judge_id, rubric_version_id=version_id)
        session.add(review)
    _apply(review, data)
    review.status = "submitted"
    review.submitted_at = datetime.now(UTC)
    _flush(session, review, read, mine, key)
    audit.record(
        session,
        "amend" if before else "submit",
        "review",
        review.id,
        judge_id,
        trace_id=trace_id,
        decision=data.decision,
        scores=review.scores,
        rationale=review.rationale,
        version=review.version,
        replaced_version=read,
        **({"before": before} if before else {}),
    )
    return review


def withdraw_submission(
    session: Session, review_id: int, judge_id: int, expected_version: int | None = None
) -> Review:
    """Undo a submission: the review becomes the judge's draft again (audited)."""
    review = session.get(Review, review_id)
    if review is None or review.judge_id != judge_id:
        raise NotFound("no such review of yours")
    key = {
        "trace_id": review.trace_id,
        "judge_id": judge_id,
        "version_id": review.rubric_version_id,
    }
    mine = {"status": "draft"}
    _check_version(review, expected_version, mine, key)
    before = snapshot(review)
    review.status = "draft"
    review.submitted_at = None
    _flush(session, review, before["version"], mine, key)
    audit.record(
        session,
        "withdraw",
        "review",
        review.id,
        judge_id,
        trace_id=review.trace_id,
        version=review.version,
        replaced_version=before["version"],
        before=before,
    )
    return review


def record_conflict(session: Session, exc: ConflictError, actor_id: int | None) -> dict | None:
    """Audit a refused write with both versions (the one refused and the one stored) and return
    the stored one, read afresh, for the judge to compare."""
    k = exc.key
    theirs = snapshot(_find(session, k["trace_id"], k["judge_id"], k["version_id"])) if k else None
    audit.record(
        session,
        "conflict",
        exc.entity,
        exc.entity_id or (theirs or {}).get("id"),
        actor_id,
        expected_version=exc.expected,
        mine=exc.mine,
        theirs=theirs,
        **k,
    )
    exc.theirs = theirs
    return theirs


def visible_reviews(session: Session, trace_id: int, viewer: Judge) -> list[Review]:
    """Blind: a judge sees only their own review; a lead sees every submitted review."""
    reviews = list(
        session.scalars(
            select(Review)
            .where(Review.trace_id == trace_id, Review.status == "submitted")
            .order_by(Review.id)
        )
    )
    if viewer.role == "lead":
        return reviews
    return [r for r in reviews if r.judge_id == viewer.id]


# ---------------------------------------------------------------------------------------
# Writes that say what they changed, so a screen repaints one row and adjusts its counters
# instead of recounting a 100,000-trace queue (Anki's OpChanges).


@dataclass(frozen=True)
class ReviewChange:
    review_id: ReviewId
    trace_id: TraceId
    before: QueueStatus  # the trace's status in the judge's queue before the write
    after: QueueStatus
    version: int = 0  # the review's row version after the write (the next expected_version)

    @property
    def submitted_delta(self) -> int:
        """+1 / -1 / 0: how the trace's count of submitted reviews moved."""
        return int(self.after == "done") - int(self.before == "done")


def queue_status(review: Review | None) -> QueueStatus:
    if review is None:
        return "todo"
    return "done" if review.status == "submitted" else "draft"


def save_draft_changes(
    session: Session,
    trace_id: int,
    judge_id: int,
    version_id: int,
    data: ReviewInput,
    expected_version: int | None = None,
) -> ReviewChange:
    """`save_draft`, returning what changed (a submitted review stays as it is: done)."""
    before = queue_status(_find(session, trace_id, judge_id, version_id))
    review = save_draft(session, trace_id, judge_id, version_id, data, expected_version)
    return ReviewChange(
        ReviewId(review.id), TraceId(trace_id), before, queue_status(review), review.version
    )


def submit_review_changes(
    session: Session,
    trace_id: int,
    judge_id: int,
    version_id: int,
    data: ReviewInput,
    expected_version: int | None = None,
) -> ReviewChange:
    before = queue_status(_find(session, trace_id, judge_id, version_id))
    review = submit_review(session, trace_id, judge_id, version_id, data, expected_version)
    return ReviewChange(ReviewId(review.id), TraceId(trace_id), before, "done", review.version)


def withdraw_changes(
    session: Session, review_id: int, judge_id: int, expected_version: int | None = None
) -> ReviewChange:
    review = session.get(Review, review_id)
    before = queue_status(review)
    review = withdraw_submission(session, review_id, judge_id, expected_version)
    return ReviewChange(
        ReviewId(review.id), TraceId(review.trace_id), before, "draft", review.version
    )


def own_review(
    session: Session, trace_id: int, judge_id: int, version_id: int
) -> dict[str, Any] | None:
    """The judge's own review of a trace (draft or submitted) as plain values, for the form."""
    r = _find(session, trace_id, judge_id, version_id)
    if r is None:
        return None
    return {
        "decision": r.decision,
        "scores": dict(r.scores),
        "rationale": r.rationale,
        "corrected_messages": r.corrected_messages,
        "step_labels": r.step_labels,
        "time_on_task_s": r.time_on_task_s,
        "status": r.status,
        "id": r.id,
        "version": r.version,
    }


def active_judges(session: Session) -> list[tuple[int, str, str]]:
    """(id, name, role) of every active profile, by name."""
    return [
        (j.id, j.name, j.role)
        for j in session.scalars(select(Judge).where(Judge.active).order_by(Judge.name))
    ]


@dataclass(frozen=True)
class OtherReview:
    """A submitted review as a lead reads it in "All reviews": whole values, and the rubric
    version it was scored under (scores under different versions do not compare)."""

    judge: str
    version_id: int
    decision: Decision | None
    scores: dict[str, Any]
    rationale: str
    corrected: str | None


def other_reviews(
    session: Session, trace_id: int, viewer: Judge
) -> tuple[list[OtherReview], dict[int, str]]:
    """`visible_reviews` (blind for judges) with names, and a label per rubric version."""
    reviews = visible_reviews(session, trace_id, viewer)
    judges = {r.judge_id for r in reviews}
    names = dict(session.execute(select(Judge.id, Judge.name).where(Judge.id.in_(judges))).all())
    versions = {
        v.id: f"{v.rubric.name} · v{v.version}"
        for v in session.scalars(
            select(RubricVersion).where(
                RubricVersion.id.in_({r.rubric_version_id for r in reviews})
            )
        )
    }
    rows = [
        OtherReview(
            names.get(r.judge_id, "?"),
            r.rubric_version_id,
            r.decision,
            dict(r.scores),
            r.rationale,
            r.corrected_output,
        )
        for r in reviews
    ]
    return rows, versions
