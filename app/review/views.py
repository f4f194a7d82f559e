"""Saved queue views: a judge's named filters ("failed refunds with book_reservation"),
stored in the workspace so they follow the judge to any machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.queue import STATUSES
from app.traces.queries import TraceFilter
from app.traces.search import FilterError
from app.workspace.models import QueueView


@dataclass(frozen=True)
class SavedView:
    name: str
    filter: TraceFilter
    status: str | None  # "todo", "draft", "done" or None for all

    def as_json(self) -> dict[str, Any]:
        data = self.filter.as_json()
        if self.status:
            data["status"] = self.status
        return data


def _from_row(row: QueueView) -> SavedView:
    status = row.filters.get("status")
    return SavedView(row.name, TraceFilter.from_json(row.filters), status)


def list_views(session: Session, judge_id: int) -> list[SavedView]:
    rows = session.scalars(
        select(QueueView).where(QueueView.judge_id == judge_id).order_by(QueueView.name)
    )
    return [_from_row(r) for r in rows]


def save_view(
    session: Session, judge_id: int, name: str, flt: TraceFilter, status: str | None = None
) -> SavedView:
    """Create the view, or replace the filters of the judge's view of that name."""
    name = name.strip()
    if not name:
        raise FilterError("a saved view needs a name")
    if len(name) > 200:
        raise FilterError("a saved view's name is at most 200 characters")
    if status is not None and status not in STATUSES:
        raise FilterError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    view = SavedView(name, flt, status)
    row = session.scalar(
        select(QueueView).where(QueueView.judge_id == judge_id, QueueView.name == name)
    )
    if row is None:
        row = QueueView(judge_id=judge_id, name=name)
        session.add(row)
    row.filters = view.as_json()
    return view


def delete_view(session: Session, judge_id: int, name: str) -> bool:
    row = session.scalar(
        select(QueueView).where(QueueView.judge_id == judge_id, QueueView.name == name)
    )
    if row is None:
        return False
    session.delete(row)
    return True
