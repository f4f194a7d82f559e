"""Step labels on reviews: a judge marks assistant steps good, wrong or the first error.

Revision ID: 0003_step_labels
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_step_labels"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "reviews",
        sa.Column("step_labels", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("step_labels")
