"""Lead adjudication: the gold verdict on a trace, and the reviews a lead reads first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.rubrics import validate_scores
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
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
) -> Adjudication:
    """Record (or replace) the gold verdict; leads only, validated like a submission, audited."""
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
    before = None
    if adj is None:
        adj = Adjudication(
            trace_id=trace_id, rubric_version_id=version_id, lead_id=lead_id, decision=decision
        )
        session.add(adj)
    else:
        before = {
            "decision": adj.decision,
            "scores": adj.scores,
            "rationale": adj.rationale,
            "lead_id": adj.lead_id,
        }
    adj.lead_id = lead_id
    adj.decision = decision
    adj.scores = dict(scores)
    adj.rationale = rationale
    adj.corrected_output = corrected_output
    adj.corrected_messages = corrected_messages
    session.flush()
    audit.record(
        session,
        "adjudicate" if before is None else "amend",
        "adjudication",
        adj.id,
        lead_id,
        trace_id=trace_id,
        decision=decision,
        scores=dict(scores),
        previous=before,
    )
    return adj
