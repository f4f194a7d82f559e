"""Lead adjudication: the gold verdict on a trace, and the reviews a lead reads first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.review.rubrics import validate_scores
from app.workspace import audit
from app.workspace.errors import ChambersError, ConflictError, NotFound
from app.workspace.models import (
    Adjudication,
    Judge,
    Review,
    RubricVersion,
    Trace,
)
from app.workspace.types import DECISIONS


class AdjudicationError(ChambersError):
    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


# ---------------------------------------------------------------------------------------
# Adjudication: the lead's final verdict becomes gold


def reviews_of(session: Session, trace_id: int, version_id: int) -> list[tuple[Review, str]]:
    """Every submitted review of a trace under a version, with the judge's name (leads only)."""
    return [
        (r, name)
        for r, name in session.execute(
            select(Review, Judge.name)
            .join(Judge, Judge.id == Review.judge_id)
            .where(
                Review.trace_id == trace_id,
                Review.rubric_version_id == version_id,
                Review.status == "submitted",
            )
            .order_by(Judge.name)
        )
    ]


def get_adjudication(session: Session, trace_id: int, version_id: int) -> Adjudication | None:
    return session.scalar(
        select(Adjudication).where(
            Adjudication.trace_id == trace_id, Adjudication.rubric_version_id == version_id
        )
    )


def adjudication_snapshot(adj: Adjudication | None) -> dict[str, Any] | None:
    """The stored verdict as the audit log and a conflict message show it."""
    if adj is None:
        return None
    return {
        "id": adj.id,
        "version": adj.version,
        "lead_id": adj.lead_id,
        "decision": adj.decision,
        "scores": dict(adj.scores or {}),
        "rationale": adj.rationale,
        "corrected_output": adj.corrected_output,
    }


def adjudicate(
    session: Session,
    trace_id: int,
    version_id: int,
    lead_id: int,
    decision: str,
    scores: dict[str, Any],
    rationale: str = "",
    corrected_output: str | None = None,
    corrected_messages: list[dict[str, Any]] | None = None,
    expected_version: int | None = None,
) -> Adjudication:
    """Record (or replace) the gold verdict; leads only, validated like a submission, audited.

    `expected_version` is the version the lead read (0: none yet); if another lead has
    recorded a verdict since, ConflictError and nothing is written."""
    lead = session.get(Judge, lead_id)
    if lead is None or lead.role != "lead":
        raise AdjudicationError("only a lead can adjudicate")
    version = session.get(RubricVersion, version_id)
    if version is None:
        raise NotFound(f"no rubric version {version_id}")
    if session.get(Trace, trace_id) is None:
        raise NotFound(f"no trace {trace_id}")
    if decision not in DECISIONS:
        raise AdjudicationError(f"decision must be one of {', '.join(DECISIONS)}")
    problems = validate_scores(version, decision, scores)
    if problems:
        raise AdjudicationError("the verdict is incomplete: " + "; ".join(problems), problems)
    adj = get_adjudication(session, trace_id, version_id)
    before = adjudication_snapshot(adj)
    read = adj.version if adj is not None else 0
    mine = {
        "lead_id": lead_id,
        "decision": decision,
        "scores": dict(scores),
        "rationale": rationale,
        "corrected_output": corrected_output,
    }
    key = {"trace_id": trace_id, "version_id": version_id}
    if expected_version is not None and read != expected_version:
        raise ConflictError(
            "adjudication", before and before["id"], expected_version, mine, before, key
        )
    if adj is None:
        adj = Adjudication(
            trace_id=trace_id, rubric_version_id=version_id, lead_id=lead_id, decision=decision
        )
        session.add(adj)
    adj.lead_id = lead_id
    adj.decision = decision
    adj.scores = dict(scores)
    adj.rationale = rationale
    adj.corrected_output = corrected_output
    adj.corrected_messages = corrected_messages
    adj_id = adj.id  # read now: a failed flush rolls the session back
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise ConflictError("adjudication", adj_id, read, mine, None, key) from None
    audit.record(
        session,
        "adjudicate" if before is None else "amend",
        "adjudication",
        adj.id,
        lead_id,
        trace_id=trace_id,
        decision=decision,
        scores=dict(scores),
        rationale=rationale,
        version=adj.version,
        replaced_version=read,
        previous=before,
    )
    return adj


def record_adjudication_conflict(
    session: Session, exc: ConflictError, actor_id: int | None
) -> dict[str, Any] | None:
    """Audit a refused verdict with both versions; return the stored one, read afresh."""
    k = exc.key
    theirs = adjudication_snapshot(get_adjudication(session, k["trace_id"], k["version_id"]))
    audit.record(
        session,
        "conflict",
        "adjudication",
        exc.entity_id or (theirs or {}).get("id"),
        actor_id,
        expected_version=exc.expected,
        mine=exc.mine,
        theirs=theirs,
        **k,
    )
    exc.theirs = theirs
    return theirs
