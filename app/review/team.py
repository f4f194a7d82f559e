"""Who may do what: profiles, the lead role, and PostgreSQL database roles.

- The first profile of a workspace is its lead; after that only a lead creates profiles
  (judges or leads) or changes a role. Every change is audited.
- PostgreSQL team mode: each person logs in as their own database role, mapped to their
  profile (`judges.db_role`). Row-level security (migration 0004) then keeps a judge from
  reading other judges' reviews or writing as someone else, even with plain SQL; the
  profile is taken from the login, not chosen. `grant_role` sets a role up (run by the
  workspace owner).
- SQLite is single-user: whoever can open the file can do anything; the roles there are a
  convention of the app, not a protection.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.workspace import audit
from app.workspace.errors import ChambersError, NotAllowed, NotFound
from app.workspace.models import Judge
from app.workspace.types import ROLES

# An unquoted-safe PostgreSQL role name: we still quote it, but refuse anything exotic.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def acting_judge(session: Session) -> Judge | None:
    """PostgreSQL: the profile mapped to the database role of this connection; else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return session.scalar(select(Judge).where(Judge.db_role == func.current_user()))


def has_profiles(session: Session) -> bool:
    return session.scalar(select(func.count(Judge.id))) > 0


def _check_lead(by: Judge | None, what: str) -> None:
    if by is None or by.role != "lead" or not by.active:
        who = f"{by.name} is a {by.role}" if by is not None else "no lead is acting"
        raise NotAllowed(f"only a lead can {what} ({who})")


def create_profile(session: Session, name: str, role: str, by: Judge | None) -> Judge:
    """Create a judge or lead profile. The first profile of a workspace is its lead whatever
    was asked; after that `by` must be a lead."""
    name = name.strip()
    if not name:
        raise ChambersError("a profile needs a name")
    if role not in ROLES:
        raise ChambersError(f"role must be one of {', '.join(ROLES)}")
    if session.scalar(select(Judge).where(Judge.name == name)) is not None:
        raise ChambersError(f"a profile named {name!r} exists already")
    first = not has_profiles(session)
    if first:
        role = "lead"
    else:
        _check_lead(by, "create profiles")
    judge = Judge(name=name, role=role)
    session.add(judge)
    session.flush()
    actor = judge.id if first else by.id  # type: ignore[union-attr]
    audit.record(
        session, "create", "judge", judge.id, actor, name=name, role=role, first_profile=first
    )
    return judge


def set_role(session: Session, name: str, role: str, by: Judge | None) -> Judge:
    """Make a profile a judge or a lead (leads only; a workspace keeps at least one lead)."""
    if role not in ROLES:
        raise ChambersError(f"role must be one of {', '.join(ROLES)}")
    _check_lead(by, "change roles")
    judge = _named(session, name)
    if judge.role == "lead" and role != "lead":
        leads = session.scalar(
            select(func.count(Judge.id)).where(Judge.role == "lead", Judge.active)
        )
        if leads <= 1:
            raise NotAllowed(f"{name} is the only lead; make another lead first")
    before = judge.role
    judge.role = role
    session.flush()
    audit.record(session, "set_role", "judge", judge.id, by.id, role=role, before=before)  # type: ignore[union-attr]
    return judge


def _named(session: Session, name: str) -> Judge:
    judge = session.scalar(select(Judge).where(Judge.name == name))
    if judge is None:
        raise NotFound(f"no profile named {name!r}")
    return judge


def _quote(session: Session, name: str) -> str:
    return session.get_bind().dialect.identifier_preparer.quote_identifier(name)


def grant_role(
    session: Session,
    db_role: str,
    name: str,
    by: Judge | None,
    create: bool = False,
    password: str | None = None,
) -> Judge:
    """PostgreSQL: let the database role `db_role` work as profile `name`.

    Grants the role what the app needs on this workspace (tables, sequences, and those that
    later migrations create), never the right to change the schema, and maps it to the
    profile. Row-level security does the rest. Run by the workspace owner, as a lead."""
    if session.get_bind().dialect.name != "postgresql":
        raise ChambersError(
            "database roles need a PostgreSQL workspace; SQLite is single-user "
            "(anyone who can open the file can do anything)"
        )
    if not _ROLE_NAME.match(db_role):
        raise ChambersError(
            f"{db_role!r}: a role name is lower-case letters, digits and _ (at most 63)"
        )
    _check_lead(by, "map database roles")
    judge = _named(session, name)
    taken = session.scalar(select(Judge).where(Judge.db_role == db_role, Judge.id != judge.id))
    if taken is not None:
        raise ChambersError(f"role {db_role} is already mapped to {taken.name}")
    q = _quote(session, db_role)
    exists = session.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": db_role})
    if not exists:
        if not create:
            raise NotFound(f"no database role {db_role}; pass --create to create it")
        session.execute(text(f"CREATE ROLE {q} LOGIN"))
    if password is not None:
        # Passwords cannot be bound parameters in DDL; quote as a literal.
        literal = "'" + password.replace("'", "''") + "'"
        session.execute(text(f"ALTER ROLE {q} PASSWORD {literal}"))
    for sql in _grants(session, q):
        session.execute(text(sql))
    before = judge.db_role
    judge.db_role = db_role
    session.flush()
    audit.record(
        session,
        "grant_role",
        "judge",
        judge.id,
        by.id,
        db_role=db_role,
        before=before,  # type: ignore[union-attr]
    )
    return judge


def _grants(session: Session, q: str) -> list[str]:
    db = _quote(session, session.scalar(text("SELECT current_database()")))
    schema = _quote(session, session.scalar(text("SELECT current_schema()")))
    return [
        f"GRANT CONNECT ON DATABASE {db} TO {q}",
        f"GRANT USAGE ON SCHEMA {schema} TO {q}",
        f"GRANT {_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema} TO {q}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {q}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {q}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {_TABLE_PRIVILEGES} ON TABLES TO {q}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {q}",
    ]


def team(session: Session) -> list[dict[str, object]]:
    """Every profile with its role and database role, for `chambers team list`."""
    return [
        {"name": j.name, "role": j.role, "active": j.active, "db_role": j.db_role}
        for j in session.scalars(select(Judge).order_by(Judge.id))
    ]


def default_judge(session: Session) -> Judge:
    """Who the bench opens as without a picker (`--screenshot`): the login's profile in
    PostgreSQL team mode, else the first judge, else the first profile, else a new lead (the
    first profile of a workspace is its lead)."""
    mapped = acting_judge(session)
    if mapped is not None:
        return mapped
    j = session.scalar(select(Judge).where(Judge.role == "judge").order_by(Judge.id))
    j = j or session.scalar(select(Judge).order_by(Judge.id))
    return j or create_profile(session, "Judge", "lead", None)


def named_judge(session: Session, name: str) -> Judge:
    """`chambers app --judge NAME`: an existing profile (the login's in PostgreSQL team
    mode); only in an empty workspace is it created, as the lead."""
    mapped = acting_judge(session)
    if mapped is not None:
        if mapped.name != name:
            raise ChambersError(f"you are logged in as {mapped.name}; --judge {name} refused")
        return mapped
    j = session.scalar(select(Judge).where(Judge.name == name))
    if j is not None:
        return j
    if has_profiles(session):
        raise NotFound(
            f"no profile named {name!r}; a lead creates it (`chambers team add {name} "
            "--as LEAD`, or Switch judge in a lead's window)"
        )
    return create_profile(session, name, "lead", None)


def open_profile(session: Session, name: str, role: str, by: Judge | None) -> Judge:
    """The profile named `name`, created (by a lead, or as the first profile) if new."""
    existing = session.scalar(select(Judge).where(Judge.name == name))
    return existing or create_profile(session, name, role, by)
