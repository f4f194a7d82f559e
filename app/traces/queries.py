"""Queries over traces: listing with filters, one trace in full, workspace statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from app.traces.search import meta_condition, search_condition
from app.workspace.errors import NotFound
from app.workspace.models import (
    Adjudication,
    DatasetSnapshot,
    ImportBatch,
    Judge,
    PreferencePair,
    Review,
    Rubric,
    RubricVersion,
    Trace,
    TraceScore,
    TraceTool,
    TrainingRun,
)

SUMMARY_COLUMNS = (
    Trace.id,
    Trace.external_id,
    Trace.source,
    Trace.task,
    Trace.n_messages,
    Trace.n_tool_calls,
    Trace.outcome,
    Trace.outcome_label,
    Trace.split,
)


@dataclass
class TraceFilter:
    """What a queue or `traces list` shows. Empty fields do not filter. The fields a judge can
    set are plain JSON values (as_json/from_json), so a filter can be saved as a named view."""

    source: str | None = None
    search: str | None = None
    min_outcome: float | None = None
    max_outcome: float | None = None
    has_outcome: bool | None = None
    split: str | None = None
    min_tool_calls: int | None = None
    ids: list[int] | None = None
    tools: list[str] = field(default_factory=list)  # calls every one of them
    min_steps: int | None = None
    max_steps: int | None = None
    score_name: str | None = None  # an automated score (traces.scores) ...
    min_score: float | None = None  # ... at least / at most these
    max_score: float | None = None
    meta: list[tuple[str, str]] = field(default_factory=list)  # metadata key (a.b) = value

    def apply(self, q: Select) -> Select:
        for condition in self.conditions():
            q = q.where(condition)
        return q

    def conditions(self) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        if self.source:
            c.append(Trace.source == self.source)
        found = search_condition(self.search or "")
        if found is not None:
            c.append(found)
        c += _range(Trace.outcome, self.min_outcome, self.max_outcome)
        if self.has_outcome is not None:
            c.append(Trace.outcome.is_not(None) if self.has_outcome else Trace.outcome.is_(None))
        if self.split:
            c.append(Trace.split == self.split)
        c += _range(Trace.n_tool_calls, self.min_tool_calls, None)
        c += _range(Trace.n_messages, self.min_steps, self.max_steps)
        if self.ids is not None:
            c.append(Trace.id.in_(self.ids))
        c += [
            Trace.id.in_(select(TraceTool.trace_id).where(TraceTool.name == t)) for t in self.tools
        ]
        if self.score_name:
            score = select(TraceScore.trace_id).where(TraceScore.name == self.score_name)
            score = score.where(*_range(TraceScore.value, self.min_score, self.max_score))
            c.append(Trace.id.in_(score))
        c += [meta_condition(k, v) for k, v in self.meta]
        return c

    def as_json(self) -> dict[str, Any]:
        """The non-empty fields a judge sets (not `ids`), as JSON values."""
        out = {k: v for k, v in asdict(self).items() if k != "ids" and v not in (None, [], "")}
        if self.meta:
            out["meta"] = [[k, v] for k, v in self.meta]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceFilter:
        known = {f.name for f in fields(cls)} - {"ids"}
        values = {k: v for k, v in data.items() if k in known}
        values["tools"] = [str(t) for t in values.get("tools") or []]
        values["meta"] = [(str(k), str(v)) for k, v in values.get("meta") or []]
        return cls(**values)


def _range(column: Any, low: float | None, high: float | None) -> list[ColumnElement[bool]]:
    out = []
    if low is not None:
        out.append(column >= low)
    if high is not None:
        out.append(column <= high)
    return out


def summary_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "external_id": row.external_id,
        "source": row.source,
        "task": (row.task or "")[:200],
        "n_messages": row.n_messages,
        "n_tool_calls": row.n_tool_calls,
        "outcome": row.outcome,
        "outcome_label": row.outcome_label,
        "split": row.split,
    }


def list_traces(
    session: Session, flt: TraceFilter | None = None, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    q = (flt or TraceFilter()).apply(select(*SUMMARY_COLUMNS)).order_by(Trace.id)
    if limit is not None:
        q = q.limit(limit)
    if offset:
        q = q.offset(offset)
    return [summary_dict(r) for r in session.execute(q)]


def count_traces(session: Session, flt: TraceFilter | None = None) -> int:
    q = (flt or TraceFilter()).apply(select(func.count(Trace.id)))
    return int(session.scalar(q) or 0)


def get_trace(session: Session, trace_id: int | str) -> Trace:
    """By numeric id, or by external id when that is unique."""
    trace = None
    if isinstance(trace_id, int) or str(trace_id).isdigit():
        trace = session.get(Trace, int(trace_id))
    if trace is None:
        found = list(
            session.scalars(select(Trace).where(Trace.external_id == str(trace_id)).limit(2))
        )
        if len(found) > 1:
            raise NotFound(f"external id {trace_id!r} names several traces; use the numeric id")
        trace = found[0] if found else None
    if trace is None:
        raise NotFound(f"no trace {trace_id!r} in this workspace")
    return trace


def trace_dict(trace: Trace) -> dict[str, Any]:
    return {
        "id": trace.id,
        "external_id": trace.external_id,
        "source": trace.source,
        "task": trace.task,
        "messages": trace.messages,
        "final_output": trace.final_output,
        "tools": trace.tools,
        "metadata": trace.meta,
        "outcome": trace.outcome,
        "outcome_label": trace.outcome_label,
        "outcome_source": trace.outcome_source,
        "scores": trace.scores,
        "n_messages": trace.n_messages,
        "n_tool_calls": trace.n_tool_calls,
        "content_hash": trace.content_hash,
        "split": trace.split,
        "batch_id": trace.batch_id,
        "imported_at": trace.imported_at.isoformat() if trace.imported_at else None,
    }


def stats(session: Session) -> dict[str, Any]:
    def count(model) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    by_source = dict(
        session.execute(
            select(Trace.source, func.count()).group_by(Trace.source).order_by(Trace.source)
        ).all()
    )
    by_decision = dict(
        session.execute(
            select(Review.decision, func.count())
            .where(Review.status == "submitted")
            .group_by(Review.decision)
            .order_by(Review.decision)
        ).all()
    )
    outcome = session.execute(
        select(func.count(Trace.outcome), func.avg(Trace.outcome), func.sum(Trace.n_tool_calls))
    ).one()
    return {
        "traces": count(Trace),
        "traces_by_source": by_source,
        "traces_with_outcome": int(outcome[0] or 0),
        "mean_outcome": float(outcome[1]) if outcome[1] is not None else None,
        "tool_calls": int(outcome[2] or 0),
        "import_batches": count(ImportBatch),
        "judges": count(Judge),
        "rubrics": count(Rubric),
        "rubric_versions": count(RubricVersion),
        "reviews_submitted": sum(by_decision.values()),
        "reviews_by_decision": by_decision,
        "drafts": int(
            session.scalar(select(func.count()).select_from(Review).where(Review.status == "draft"))
            or 0
        ),
        "adjudications": count(Adjudication),
        "preference_pairs": count(PreferencePair),
        "snapshots": count(DatasetSnapshot),
        "training_runs": count(TrainingRun),
    }


def facets(session: Session) -> dict[str, list[str]]:
    """The values a filter can pick from: sources, tools called, automated score names.
    Read from small indexed tables, not from the traces' JSON (fast at 100,000 traces)."""
    return {
        "sources": list(session.scalars(select(Trace.source).distinct().order_by(Trace.source))),
        "tools": list(session.scalars(select(TraceTool.name).distinct().order_by(TraceTool.name))),
        "scores": list(
            session.scalars(select(TraceScore.name).distinct().order_by(TraceScore.name))
        ),
    }
