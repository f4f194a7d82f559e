"""Typed ids and the closed vocabularies that cross modules (decisions, statuses, roles).

Ids are NewTypes over int so a trace id is not passed where a review id is expected; the
Literals match the CHECK constraints in the schema (app.workspace.models).
"""

from __future__ import annotations

from typing import Literal, NewType, get_args

TraceId = NewType("TraceId", int)
JudgeId = NewType("JudgeId", int)
ReviewId = NewType("ReviewId", int)
RubricVersionId = NewType("RubricVersionId", int)
RoundId = NewType("RoundId", int)
PairId = NewType("PairId", int)
SnapshotId = NewType("SnapshotId", int)
RunId = NewType("RunId", int)

Decision = Literal["approve", "modify", "reject"]
ReviewStatus = Literal["draft", "submitted"]
QueueStatus = Literal["todo", "draft", "done"]  # a trace in one judge's queue
Role = Literal["judge", "lead"]
Scale = Literal["binary", "ordinal", "nominal"]
StepLabel = Literal["good", "wrong", "first_error"]

DECISIONS: tuple[Decision, ...] = get_args(Decision)
REVIEW_STATUSES: tuple[ReviewStatus, ...] = get_args(ReviewStatus)
ROLES: tuple[Role, ...] = get_args(Role)
SCALES: tuple[Scale, ...] = get_args(Scale)
STEP_LABELS: tuple[StepLabel, ...] = get_args(StepLabel)
