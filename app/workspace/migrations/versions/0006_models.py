"""Closing the loop: model registry, promotions and the gate rule, evaluations (items and outputs), blind A/B comparison rounds and verdicts. New tables only: no existing row changes.

Revision ID: 0006_models
Revises: 0005_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_models"
down_revision = "0005_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "rule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_rules")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column(
            "lineage",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('base', 'candidate')", name=op.f("ck_models_kind")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["models.id"], name=op.f("fk_models_parent_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_runs.id"], name=op.f("fk_models_run_id_training_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("baseline_id", sa.Integer(), nullable=False),
        sa.Column("tasks", sa.String(length=200), nullable=False),
        sa.Column(
            "decoding",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column(
            "graders",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("eval_dir", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'finished', 'failed', 'cancelled')",
            name=op.f("ck_evaluations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["baseline_id"], ["models.id"], name=op.f("fk_evaluations_baseline_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["models.id"], name=op.f("fk_evaluations_candidate_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["training_runs.id"], name=op.f("fk_evaluations_run_id_training_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint("name", name=op.f("uq_evaluations_name")),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column(
            "gate",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('promote', 'rollback')", name=op.f("ck_promotions_action")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_promotions_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotions_model_id"), ["model_id"], unique=False)

    op.create_table(
        "comparison_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["judges.id"], name=op.f("fk_comparison_rounds_created_by_judges")
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_comparison_rounds_evaluation_id_evaluations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_rounds")),
        sa.UniqueConstraint("name", name=op.f("uq_comparison_rounds_name")),
    )
    op.create_table(
        "eval_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=True),
        sa.Column(
            "prompt",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "tools",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "reference",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_eval_items_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_items")),
        sa.UniqueConstraint("evaluation_id", "position", name="eval_item_position"),
    )
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eval_items_evaluation_id"), ["evaluation_id"], unique=False
        )

    op.create_table(
        "comparison_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("judge_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("a_side", sa.String(length=10), nullable=False),
        sa.Column("choice", sa.String(length=4), nullable=True),
        sa.Column(
            "criteria",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "a_side IN ('baseline', 'candidate')", name=op.f("ck_comparison_verdicts_a_side")
        ),
        sa.CheckConstraint(
            "choice IS NULL OR choice IN ('A', 'B', 'tie')",
            name=op.f("ck_comparison_verdicts_choice"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["eval_items.id"],
            name=op.f("fk_comparison_verdicts_item_id_eval_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["judge_id"], ["judges.id"], name=op.f("fk_comparison_verdicts_judge_id_judges")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["comparison_rounds.id"],
            name=op.f("fk_comparison_verdicts_round_id_comparison_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparison_verdicts")),
        sa.UniqueConstraint("round_id", "item_id", "judge_id", name="comparison_assignment"),
    )
    with op.batch_alter_table("comparison_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_comparison_verdicts_judge_id"), ["judge_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_comparison_verdicts_round_id"), ["round_id"], unique=False
        )

    op.create_table(
        "eval_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "message",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column(
            "decoding",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.CheckConstraint("side IN ('baseline', 'candidate')", name=op.f("ck_eval_outputs_side")),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["eval_items.id"],
            name=op.f("fk_eval_outputs_item_id_eval_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_eval_outputs_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_outputs")),
        sa.UniqueConstraint("item_id", "side", name="eval_output_side"),
    )
    with op.batch_alter_table("eval_outputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_outputs_item_id"), ["item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_outputs_item_id"))

    op.drop_table("eval_outputs")
    with op.batch_alter_table("comparison_verdicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comparison_verdicts_round_id"))
        batch_op.drop_index(batch_op.f("ix_comparison_verdicts_judge_id"))

    op.drop_table("comparison_verdicts")
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_items_evaluation_id"))

    op.drop_table("eval_items")
    op.drop_table("comparison_rounds")
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promotions_model_id"))

    op.drop_table("promotions")
    op.drop_table("evaluations")
    op.drop_table("models")
    op.drop_table("gate_rules")
