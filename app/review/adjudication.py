"""Lead adjudication: the gold verdict on a trace, and the reviews a lead reads first.

The adjudication screen shows what `side_by_side` and `majority_verdict` compute here, so the
rules (where judges disagree, what a tie is, what is pre-filled) are tested without Qt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.review.reviews import ReviewInput, check_submission
from app.workspace import audit
from app.workspace.errors import ChambersError, ConflictError, NotFound
from app.workspace.models import (
    Adjudication,
    Judge,
    Review,
    RubricVersion,
    Trace,
)
from app.workspace.types import DECISIONS, Decision


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
    decision: Decision,
    scores: dict[str, Any],
    rationale: str = "",
    corrected_output: str | None = None,
    corrected_messages: list[dict[str, Any]] | None = None,
    expected_version: int | None = None,
) -> Adjudication:
    """Record (or replace) the gold verdict; leads only, audited.

    Validated by the same `check_submission` as a judge's review (a reject needs a rationale
    and a failed criterion), except that a gold "modify" may adopt the decision without the
    lead writing a correction: the judges' corrections are beside it.

    `expected_version` is the version the lead read (0: none yet); if another lead has
    recorded a verdict since, ConflictError and nothing is written."""
    lead = session.get(Judge, lead_id)
    if lead is None or lead.role != "lead":
        raise AdjudicationError("only a lead can adjudicate")
    version = session.get(RubricVersion, version_id)
    if version is None:
        raise NotFound(f"no rubric version {version_id}")
    trace = session.get(Trace, trace_id)
    if trace is None:
        raise NotFound(f"no trace {trace_id}")
    if decision not in DECISIONS:
        raise AdjudicationError(f"decision must be one of {', '.join(DECISIONS)}")
    verdict = ReviewInput(
        decision=decision,
        scores=scores,
        rationale=rationale,
        corrected_messages=corrected_messages,
        corrected_output=corrected_output,
    )
    problems = check_submission(session, trace, version, verdict, require_correction=False)
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


# ---------------------------------------------------------------------------------------
# What the adjudication screen shows: the reviews side by side and the majority pre-fill


@dataclass(frozen=True)
class SideBySide:
    """Rows (decision, each criterion, rationale, correction) x one column per judge."""

    judges: list[str]
    row_keys: list[str]
    cells: list[list[str]]  # cells[row][judge]
    disagree: list[bool]  # per row: judges gave different values (decision and criteria)


def cell_text(scale: str, value: Any) -> str:
    if value is None:
        return ""
    if scale == "binary":
        return "pass" if value in (1, True) else "fail"
    return str(value)


def side_by_side(version: RubricVersion, reviews: Sequence[tuple[Review, str]]) -> SideBySide:
    """The judges' reviews as the lead reads them, with the rows where they differ marked
    (two judges who left a criterion empty do not disagree with each other)."""
    criteria = list(version.criteria)
    keys = ["decision", *(c.key for c in criteria), "rationale", "correction"]
    cells: list[list[str]] = [[] for _ in keys]
    for r, _name in reviews:
        column = [
            r.decision or "",
            *(cell_text(c.scale, r.scores.get(c.key)) for c in criteria),
            r.rationale,
            "yes" if r.corrected_output or r.corrected_messages else "",
        ]
        for i, text in enumerate(column):
            cells[i].append(text)
    rated = len(keys) - 2  # rationale and correction are free text: never "disagreement"
    disagree = [i < rated and len({t for t in row if t}) > 1 for i, row in enumerate(cells)]
    return SideBySide([name for _, name in reviews], keys, cells, disagree)


@dataclass(frozen=True)
class MajorityVerdict:
    """What the verdict form starts from. `decision` is None on a tie (1-1-1, 2-2): the lead
    chooses. Scores are consistent with the decision: per criterion the strict plurality of
    the reviews that chose it (where they split evenly, of all reviews); on a tie, only the
    values every judge who scored the criterion gave. Anything else stays empty."""

    decision: Decision | None
    scores: dict[str, Any]
    counts: dict[str, int]

    @property
    def tied(self) -> bool:
        return self.decision is None and sum(self.counts.values()) > 0


def _plurality(values: list[Any]) -> Any | None:
    """The most common value if it is strictly the most common, else None."""
    ranked = Counter(values).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def majority_verdict(version: RubricVersion, reviews: Sequence[Review]) -> MajorityVerdict:
    counts = Counter(r.decision for r in reviews if r.decision)
    decision = _plurality([r.decision for r in reviews if r.decision])
    basis = [r for r in reviews if r.decision == decision] if decision else list(reviews)
    scores: dict[str, Any] = {}
    for c in version.criteria:
        values = [r.scores[c.key] for r in basis if r.scores.get(c.key) is not None]
        everyone = [r.scores[c.key] for r in reviews if r.scores.get(c.key) is not None]
        if decision is None:
            value = values[0] if values and len(set(values)) == 1 else None
        else:  # the deciding judges split on it: the plurality of all judges, if there is one
            value = _plurality(values)
            value = _plurality(everyone) if value is None else value
        if value is not None:
            scores[c.key] = value
    return MajorityVerdict(decision, scores, dict(counts))


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
