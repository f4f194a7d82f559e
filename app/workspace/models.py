"""The workspace schema (SQLAlchemy 2 declarative).

One schema serves SQLite and PostgreSQL. Structured payloads (messages, criteria levels,
provenance) are JSON columns (JSONB on PostgreSQL); anything that is filtered, joined or
aggregated on is a real column. Alembic migrations in app/migrations create these tables;
`Base.metadata` is only used to autogenerate and to check that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


Timestamp = DateTime(timezone=True)


class ImportBatch(Base):
    """One file read by `chambers import`: what it was, what came of it."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(40))
    importer_version: Mapped[str] = mapped_column(String(20))
    n_records: Mapped[int] = mapped_column(Integer, default=0)
    n_imported: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    # the importing process, so that an import it left unfinished can be told from a running
    # one when the workspace is opened (app.workspace.imports)
    importer_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    importer_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Trace(Base):
    """One agent run in the internal trace model (see app.traces.model)."""

    __tablename__ = "traces"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), nullable=True
    )
    external_id: Mapped[str | None] = mapped_column(String(512), index=True, nullable=True)
    # source and split have a handful of values: an index would cost every import and
    # help no query.
    source: Mapped[str] = mapped_column(String(40))
    task: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Hash of the task/prompt: groups runs of the same task (pair derivation, task splits).
    task_key: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    final_output: Mapped[str | None] = mapped_column(Text, nullable=True)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    outcome: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome_label: Mapped[str | None] = mapped_column(String(80), nullable=True)
    outcome_source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Automated scores (LLM judges, graders): [{name, value, source, comment}]
    scores: Mapped[list[Any]] = mapped_column(default=list)
    n_messages: Mapped[int] = mapped_column(Integer, default=0)
    n_tool_calls: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    split: Mapped[str | None] = mapped_column(String(40), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Judge(Base):
    __tablename__ = "judges"
    __table_args__ = (
        CheckConstraint("role IN ('judge', 'lead')", name="role"),
        Index("ix_judges_db_role", "db_role", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(10), default="judge")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # PostgreSQL team mode: the database role this person logs in as (row-level security
    # maps current_user to this profile). NULL on SQLite and for unmapped profiles.
    db_role: Mapped[str | None] = mapped_column(String(63), nullable=True)


class Rubric(Base):
    __tablename__ = "rubrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    versions: Mapped[list[RubricVersion]] = relationship(
        back_populates="rubric", order_by="RubricVersion.version"
    )


class RubricVersion(Base):
    """An immutable version of a rubric once any review uses it."""

    __tablename__ = "rubric_versions"
    __table_args__ = (UniqueConstraint("rubric_id", "version", name="rubric_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rubric_id: Mapped[int] = mapped_column(ForeignKey("rubrics.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("judges.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    rubric: Mapped[Rubric] = relationship(back_populates="versions")
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="rubric_version", order_by="Criterion.position"
    )


class Criterion(Base):
    """One rubric criterion. `levels` is [{value, label, anchor}] for ordinal/nominal scales."""

    __tablename__ = "criteria"
    __table_args__ = (
        UniqueConstraint("rubric_version_id", "key", name="criterion_key"),
        CheckConstraint("scale IN ('binary', 'ordinal', 'nominal')", name="scale"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rubric_version_id: Mapped[int] = mapped_column(
        ForeignKey("rubric_versions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    scale: Mapped[str] = mapped_column(String(10))
    levels: Mapped[list[Any]] = mapped_column(default=list)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    # Decisions for which a value is required, e.g. ["approve", "reject"].
    required_for: Mapped[list[Any]] = mapped_column(default=list)

    rubric_version: Mapped[RubricVersion] = relationship(back_populates="criteria")


class ReviewRound(Base):
    """A lead's unit of assigned work: which traces, which judges, overlap k."""

    __tablename__ = "review_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_versions.id"))
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    selection: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("judges.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("round_id", "trace_id", "judge_id", name="assignment"),
        Index("ix_assignments_judge_position", "judge_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_rounds.id", ondelete="CASCADE"), nullable=True
    )
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_calibration: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Review(Base):
    """A judge's verdict on a trace under one rubric version.

    status is 'draft' while the judge works (saved continuously) and 'submitted' after
    Submit. One row per (trace, judge, rubric version); amendments update it and are audited.
    `scores` maps criterion key -> value (bool for binary, int for ordinal, str for nominal).
    """

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("trace_id", "judge_id", "rubric_version_id", name="review"),
        CheckConstraint(
            "decision IS NULL OR decision IN ('approve', 'modify', 'reject')", name="decision"
        ),
        CheckConstraint("status IN ('draft', 'submitted')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id"), index=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_versions.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(10), default="draft")
    decision: Mapped[str | None] = mapped_column(String(10), nullable=True)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    # For modify (and reject with a written answer): the corrected trajectory, same shape as
    # Trace.messages, and the corrected final answer.
    corrected_messages: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    corrected_output: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Per-step judgements: [{"step": message index, "label": "good"|"wrong"|"first_error",
    # "reason": str, "comment": str}] (app.review.reviews.step_label_problems checks them).
    step_labels: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    time_on_task_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    # Optimistic concurrency: every UPDATE is `... WHERE version = <the version read>`, so a
    # write based on a stale read fails (ConflictError) instead of silently overwriting.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class Adjudication(Base):
    """A lead's final verdict on a trace: the gold label (also calibration answers)."""

    __tablename__ = "adjudications"
    __table_args__ = (UniqueConstraint("trace_id", "rubric_version_id", name="adjudication"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_versions.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("judges.id"))
    decision: Mapped[str] = mapped_column(String(10))
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    corrected_messages: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    corrected_output: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Optimistic concurrency, as for reviews: two leads recording a verdict cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class PreferencePair(Base):
    """prompt/chosen/rejected in TRL's conversational format, with full provenance."""

    __tablename__ = "preference_pairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(40))
    prompt: Mapped[list[Any]] = mapped_column(default=list)
    chosen: Mapped[list[Any]] = mapped_column(default=list)
    rejected: Mapped[list[Any]] = mapped_column(default=list)
    margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    task_key: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    rubric_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("rubric_versions.id"), nullable=True
    )
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class DatasetSnapshot(Base):
    """A frozen selection of pairs. Immutable: training always reads one."""

    __tablename__ = "dataset_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pair_ids: Mapped[list[Any]] = mapped_column(default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("judges.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'finished', 'failed', 'cancelled')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    algorithm: Mapped[str] = mapped_column(String(10))
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_snapshots.id"), nullable=True
    )
    base_model: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_dir: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class AuditEntry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("judges.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


# ---------------------------------------------------------------------------------------------
# Closing the loop: the model registry, evaluations, blind A/B comparisons (migration 0006)


class RegisteredModel(Base):
    """A base model (a directory) or a candidate (a run's LoRA adapter on its parent)."""

    __tablename__ = "models"
    __table_args__ = (CheckConstraint("kind IN ('base', 'candidate')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), nullable=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"), nullable=True)
    path: Mapped[str] = mapped_column(Text)  # the model directory, or the adapter directory
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Promotion(Base):
    """Append-only history of the current model: promote pushes, rollback pops."""

    __tablename__ = "promotions"
    __table_args__ = (CheckConstraint("action IN ('promote', 'rollback')", name="action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    action: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class GateRule(Base):
    """The workspace's promotion rule; the newest row is in force (older ones stay readable)."""

    __tablename__ = "gate_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Evaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'finished', 'failed', 'cancelled')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"), nullable=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    baseline_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    tasks: Mapped[str] = mapped_column(String(200))
    decoding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    graders: Mapped[list[Any]] = mapped_column(default=list)
    eval_dir: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class EvalItem(Base):
    """One task of an evaluation: the prompt both models continue, and the reference."""

    __tablename__ = "eval_items"
    __table_args__ = (UniqueConstraint("evaluation_id", "position", name="eval_item_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    task_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prompt: Mapped[list[Any]] = mapped_column(default=list)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    reference: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EvalOutput(Base):
    """One model's next assistant turn for one item, parsed (or marked invalid), graded."""

    __tablename__ = "eval_outputs"
    __table_args__ = (
        UniqueConstraint("item_id", "side", name="eval_output_side"),
        CheckConstraint("side IN ('baseline', 'candidate')", name="side"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("eval_items.id", ondelete="CASCADE"), index=True
    )
    side: Mapped[str] = mapped_column(String(10))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    decoding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    n_tokens: Mapped[int] = mapped_column(Integer, default=0)


class ComparisonRound(Base):
    __tablename__ = "comparison_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    k: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("judges.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ComparisonVerdict(Base):
    """One judge's assignment on one item (choice empty until submitted). `a_side` says which
    model's output was shown as A to this judge: the judge never sees it."""

    __tablename__ = "comparison_verdicts"
    __table_args__ = (
        UniqueConstraint("round_id", "item_id", "judge_id", name="comparison_assignment"),
        CheckConstraint("a_side IN ('baseline', 'candidate')", name="a_side"),
        CheckConstraint("choice IS NULL OR choice IN ('A', 'B', 'tie')", name="choice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_rounds.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("eval_items.id", ondelete="CASCADE"))
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    a_side: Mapped[str] = mapped_column(String(10))
    choice: Mapped[str | None] = mapped_column(String(4), nullable=True)
    criteria: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class TraceTool(Base):
    """A tool a trace calls (one row per trace and tool name): the "tool used" filter and the
    list of tools to pick from. Kept in step with `traces` by database triggers (0005_search)."""

    __tablename__ = "trace_tools"
    __table_args__ = (Index("ix_trace_tools_name", "name", "trace_id"),)

    trace_id: Mapped[int] = mapped_column(
        ForeignKey("traces.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)


class TraceScore(Base):
    """A numeric automated score of a trace (from `traces.scores`), for the score filter.
    Kept in step with `traces` by database triggers (0005_search)."""

    __tablename__ = "trace_scores"
    __table_args__ = (Index("ix_trace_scores_name", "name", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)


class QueueView(Base):
    """A judge's named queue filter ("saved view"): search text and filters as JSON."""

    __tablename__ = "queue_views"
    __table_args__ = (UniqueConstraint("judge_id", "name", name="queue_view"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


def include_in_autogenerate(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's include_name hook: the search index (SQLite's FTS5 table `trace_fts` and the
    shadow tables SQLite makes for it; PostgreSQL's generated column `traces.search_document`
    and its GIN index `ix_traces_search`) is made by migration 0005_search, not from the ORM."""
    if type_ == "table":
        return not (name or "").startswith("trace_fts")
    if type_ == "column":
        return name != "search_document"
    return not (type_ == "index" and name == "ix_traces_search")
