"""Version columns for optimistic concurrency; database roles and row-level security.

- reviews.version, adjudications.version: every UPDATE is conditioned on the version read, so
  two windows (or two leads) cannot silently overwrite each other. Existing rows start at 1.
- judges.db_role: on PostgreSQL each person may log in as their own database role, mapped to
  their judge profile.
- PostgreSQL only: row-level security on reviews, adjudications, judges and audit_log. It binds
  roles that are neither the owner nor a superuser (the owner, who runs migrations and
  `chambers team grant-role`, is not bound), so a single-user workspace behaves as before.

Revision ID: 0004_versions
Revises: 0003_step_labels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_versions"
down_revision = "0003_step_labels"
branch_labels = None
depends_on = None

# SECURITY DEFINER: the policies need the judges table whatever the caller may read.
_FUNCTIONS = [
    "CREATE FUNCTION chambers_judge_of(r name) RETURNS integer LANGUAGE sql STABLE "
    "SECURITY DEFINER SET search_path FROM CURRENT AS "
    "$$ SELECT id FROM judges WHERE db_role = r AND active $$",
    "CREATE FUNCTION chambers_is_lead(r name) RETURNS boolean LANGUAGE sql STABLE "
    "SECURITY DEFINER SET search_path FROM CURRENT AS "
    "$$ SELECT EXISTS (SELECT 1 FROM judges WHERE db_role = r AND role = 'lead' AND active) $$",
]
_LEAD = "chambers_is_lead(current_user)"
_ME = "chambers_judge_of(current_user)"
_POLICIES = {
    "reviews": [
        f"CREATE POLICY lead_all ON reviews FOR ALL USING ({_LEAD}) WITH CHECK ({_LEAD})",
        f"CREATE POLICY own_rows ON reviews FOR ALL USING (judge_id = {_ME}) "
        f"WITH CHECK (judge_id = {_ME})",
    ],
    "adjudications": [
        f"CREATE POLICY lead_all ON adjudications FOR ALL USING ({_LEAD}) WITH CHECK ({_LEAD})",
    ],
    "judges": [
        "CREATE POLICY read_all ON judges FOR SELECT USING (true)",
        f"CREATE POLICY lead_write ON judges FOR ALL USING ({_LEAD}) WITH CHECK ({_LEAD})",
    ],
    "audit_log": [
        f"CREATE POLICY lead_read ON audit_log FOR SELECT USING ({_LEAD})",
        f"CREATE POLICY own_read ON audit_log FOR SELECT USING (actor_id = {_ME})",
        "CREATE POLICY own_write ON audit_log FOR INSERT WITH CHECK "
        f"(actor_id IS NULL OR actor_id = {_ME} OR {_LEAD})",
    ],
}


def upgrade() -> None:
    for table in ("reviews", "adjudications"):
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    # A plain ADD COLUMN and a unique index: a batch (table copy) of judges would fail on
    # SQLite once reviews reference it (foreign keys are on).
    op.add_column("judges", sa.Column("db_role", sa.String(63), nullable=True))
    op.create_index("ix_judges_db_role", "judges", ["db_role"], unique=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    for sql in _FUNCTIONS:
        op.execute(sql)
    for table, policies in _POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        for sql in policies:
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, policies in _POLICIES.items():
            for sql in policies:
                name = sql.split()[2]
                op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION IF EXISTS chambers_is_lead(name)")
        op.execute("DROP FUNCTION IF EXISTS chambers_judge_of(name)")
    op.drop_index("ix_judges_db_role", table_name="judges")
    with op.batch_alter_table("judges") as batch:
        batch.drop_column("db_role")
    for table in ("reviews", "adjudications"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
