"""The append-only audit log (triggers in migration 0002 refuse UPDATE and DELETE)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.workspace.models import AuditEntry


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: int | None = None,
    actor_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    entry = AuditEntry(
        action=action, entity=entity, entity_id=entity_id, actor_id=actor_id, details=details
    )
    session.add(entry)
    return entry


def entries(
    session: Session, entity: str | None = None, entity_id: int | None = None
) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.id)
    if entity is not None:
        q = q.where(AuditEntry.entity == entity)
    if entity_id is not None:
        q = q.where(AuditEntry.entity_id == entity_id)
    return list(session.scalars(q))
