"""What the Pairs screen shows, as plain values: one light row per pair, and one pair in full.

The screen runs these on the workspace executor's thread and keeps only the rows; the prompt,
chosen and rejected messages of a pair are read when the user selects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training import pairs as pr
from app.training.derive import PairChanges
from app.workspace.errors import NotFound
from app.workspace.models import Judge, PreferencePair
from app.workspace.types import JudgeId, PairId


class PairRow(NamedTuple):
    """A tuple of plain values (the collector stops tracking it): cheap to hold 50,000."""

    pair_id: PairId
    rule: str
    split: str
    margin: float | None
    trace_ids: str
    judges: str


@dataclass
class PairTable:
    rows: list[PairRow]
    stats: dict[str, Any]
    derived: PairChanges | None = None  # what this call's derivation changed


@dataclass
class PairDetail:
    pair_id: PairId
    rule: str
    prompt: list[dict[str, Any]]
    chosen: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    provenance: dict[str, Any]


def judge_ids_named(session: Session, names: list[str]) -> list[JudgeId]:
    """Ids of the named judges; [-1] (matches nothing) when none of the names exists."""
    ids = list(session.scalars(select(Judge.id).where(Judge.name.in_(names))))
    return [JudgeId(i) for i in ids] or [JudgeId(-1)]


def pair_table(
    session: Session,
    flt: pr.PairFilter,
    judge_names: list[str] | None = None,
    derive: bool = True,
) -> PairTable:
    """Derive what the reviews yield (when asked), then the selected pairs as light rows."""
    derived = pr.derive_pairs(session) if derive else None
    if judge_names:
        flt.judge_ids = judge_ids_named(session, judge_names)
    selected = pr.select_pairs(session, flt)
    names = dict(session.execute(select(Judge.id, Judge.name)).all())
    rows = [
        PairRow(
            PairId(p.id),
            p.rule,
            split,
            p.margin,
            ", ".join(map(str, p.provenance.get("trace_ids", []))),
            ", ".join(names.get(j, str(j)) for j in p.provenance.get("judge_ids", [])),
        )
        for p, split in selected
    ]
    return PairTable(rows, pr.stats_of(selected), derived)


def pair_detail(session: Session, pair_id: int) -> PairDetail:
    p = session.get(PreferencePair, pair_id)
    if p is None:
        raise NotFound(f"no preference pair {pair_id}")
    return PairDetail(PairId(p.id), p.rule, p.prompt, p.chosen, p.rejected, dict(p.provenance))


def snapshot_message(
    session: Session, name: str, flt: pr.PairFilter, judge_names: list[str] | None, user_id: int
) -> str:
    """Create the snapshot; the line the screen shows."""
    if judge_names:
        flt.judge_ids = judge_ids_named(session, judge_names)
    snap = pr.create_snapshot(session, name, flt, user_id)
    return f"Snapshot {name!r}: {snap.counts['pairs']} pairs, sha256 {snap.sha256[:16]}…"
