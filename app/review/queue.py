"""A judge's work queue: the traces assigned to them (every trace for a lead), each with its
status for this judge under a rubric version: to do, draft, or done."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Select, case, func, literal, select, tuple_
from sqlalchemy.orm import Session

from app.traces.queries import SUMMARY_COLUMNS, TraceFilter
from app.workspace.models import Assignment, Judge, Review, ReviewRound, RubricVersion, Trace

STATUSES = ("todo", "draft", "done")


class QueueRow(NamedTuple):
    """A tuple of plain values: the garbage collector stops tracking such tuples, so holding
    100,000 rows costs no collector pauses while the judge scrolls."""

    trace_id: int
    external_id: str | None
    source: str
    task: str
    n_messages: int
    n_tool_calls: int
    outcome: float | None
    outcome_label: str | None
    status: str
    n_reviews: int  # submitted reviews by anyone (shown to leads only)
    sort_key: tuple[int, int]  # (queue position, trace id): where the next page starts

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def _base(
    judge: Judge,
    version_id: int,
    flt: TraceFilter | None,
    status: str | None,
    after: tuple[int, int] | None = None,
) -> Select:
    """The queue query; `after` continues from a row's sort key (keyset paging: a page deep
    in a 100,000-row queue costs what the first page costs, unlike OFFSET)."""
    mine = (
        select(Review.trace_id, Review.status)
        .where(Review.judge_id == judge.id, Review.rubric_version_id == version_id)
        .subquery("mine")
    )
    others = (
        select(Review.trace_id, func.count(Review.id).label("n"))
        .where(Review.rubric_version_id == version_id, Review.status == "submitted")
        .group_by(Review.trace_id)
        .subquery("others")
    )
    status_expr = case(
        (mine.c.status == "submitted", "done"), (mine.c.status == "draft", "draft"), else_="todo"
    ).label("status")
    q = (
        select(
            *SUMMARY_COLUMNS,
            status_expr,
            func.coalesce(others.c.n, 0).label("n_reviews"),
        )
        .outerjoin(mine, mine.c.trace_id == Trace.id)
        .outerjoin(others, others.c.trace_id == Trace.id)
    )
    if judge.role != "lead":
        assigned = (
            select(Assignment.trace_id, func.min(Assignment.position).label("pos"))
            .where(
                Assignment.judge_id == judge.id,
                Assignment.round_id.is_(None)
                | Assignment.round_id.in_(
                    select(ReviewRound.id).where(ReviewRound.rubric_version_id == version_id)
                ),
            )
            .group_by(Assignment.trace_id)
            .subquery("assigned")
        )
        q = q.join(assigned, assigned.c.trace_id == Trace.id).add_columns(
            assigned.c.pos.label("pos")
        )
        q = q.order_by(assigned.c.pos, Trace.id)
        if after is not None:
            q = q.where(
                tuple_(assigned.c.pos, Trace.id) > tuple_(literal(after[0]), literal(after[1]))
            )
    else:
        q = q.add_columns(literal(0).label("pos")).order_by(Trace.id)
        if after is not None:
            q = q.where(Trace.id > after[1])
    q = (flt or TraceFilter()).apply(q)
    if status is not None:
        q = q.where(status_expr == status)
    return q


def queue_rows(
    session: Session,
    judge: Judge,
    version_id: int,
    flt: TraceFilter | None = None,
    status: str | None = None,
    limit: int = 200,
    after: tuple[int, int] | None = None,
) -> list[QueueRow]:
    q = _base(judge, version_id, flt, status, after).limit(limit)
    return [
        QueueRow(
            r.id,
            r.external_id,
            r.source,
            (r.task or "").replace("\n", " ")[:300],
            r.n_messages,
            r.n_tool_calls,
            r.outcome,
            r.outcome_label,
            r.status,
            r.n_reviews,
            (int(r.pos or 0), r.id),
        )
        for r in session.execute(q)
    ]


def queue_count(
    session: Session,
    judge: Judge,
    version_id: int,
    flt: TraceFilter | None = None,
    status: str | None = None,
) -> int:
    sub = _base(judge, version_id, flt, status).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def queue_progress(session: Session, judge: Judge, version_id: int) -> dict[str, int]:
    sub = _base(judge, version_id, None, None).order_by(None).subquery()
    counts = dict(session.execute(select(sub.c.status, func.count()).group_by(sub.c.status)).all())
    return {s: int(counts.get(s, 0)) for s in STATUSES}


def default_version_id(session: Session, judge: Judge) -> int | None:
    """The rubric version a judge starts on: that of their most recent round with work still
    to do, else of their most recent round, else (leads, or no rounds) the newest version."""
    if judge.role != "lead":
        rounds = session.execute(  # one row per round: its version and the judge's open work
            select(ReviewRound.rubric_version_id, func.count(Assignment.id) - func.count(Review.id))
            .join(Assignment, Assignment.round_id == ReviewRound.id)
            .outerjoin(
                Review,
                (Review.trace_id == Assignment.trace_id)
                & (Review.judge_id == judge.id)
                & (Review.rubric_version_id == ReviewRound.rubric_version_id)
                & (Review.status == "submitted"),
            )
            .where(Assignment.judge_id == judge.id)
            .group_by(ReviewRound.id, ReviewRound.rubric_version_id, ReviewRound.created_at)
            .order_by(ReviewRound.created_at.desc(), ReviewRound.id.desc())
        ).all()
        for version_id, open_work in rounds:
            if open_work:
                return version_id
        if rounds:
            return rounds[0][0]
    return session.scalar(
        select(RubricVersion.id).order_by(RubricVersion.created_at.desc(), RubricVersion.id.desc())
    )
