"""Preference pairs: filters, the train/held-out split, snapshots and exports.

How pairs are derived (one assistant step each, tools attached, incrementally) is in
app.training.derive; the file formats in app.training.exports. Messages are in TRL's
conversational format, tool calls structured:
    {"role": "assistant", "content": "...", "tool_calls": [{"type": "function", "id": "...",
      "function": {"name": "...", "arguments": {...}}}]}
    {"role": "tool", "tool_call_id": "...", "content": "..."}
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.derive import PairChanges, derive_pairs  # noqa: F401 - the pairs API
from app.training.exports import (  # noqa: F401
    FORMATS,
    RECORD_VERSION,
    export_bytes,
    openai_record,
    trl_record,
)
from app.training.rules import RULES, weighted_score  # noqa: F401
from app.training.steps import to_chat  # noqa: F401
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import (
    Adjudication,
    DatasetSnapshot,
    Judge,
    PreferencePair,
    Review,
)
from app.workspace.paths import write_atomic

DEFAULT_MAX_PER_TASK = 10


class PairError(ChambersError):
    pass


# ---------------------------------------------------------------------------------------------
# Filters, splits


@dataclass
class PairFilter:
    rubric_version_id: int | None = None
    rules: list[str] | None = None
    adjudicated_only: bool = False
    judge_ids: list[int] | None = None
    since: str | None = None  # ISO date: pair's reviews submitted on or after
    until: str | None = None
    min_margin: float | None = None
    min_agreement: float | None = None  # share of a trace's judges agreeing on the decision
    max_per_task: int | None = DEFAULT_MAX_PER_TASK  # ranked pairs per task (largest margins)
    heldout: float = 0.1  # share of pairs held out (whole tasks)
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """What was set (the split's heldout share and seed always: they define it)."""
        return {k: v for k, v in asdict(self).items() if not (v is None or v is False or v == [])}


def group_of(p: PreferencePair) -> str:
    """What must not straddle the split: the task, or the trace for a task-less one."""
    if p.task_key:
        return p.task_key
    ids = p.provenance.get("trace_ids") or []
    return f"trace:{ids[0]}" if ids else p.content_hash


def _rank(key: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16)


def assign_splits(pairs: list[PreferencePair], heldout: float, seed: int) -> dict[str, str]:
    """Whole tasks to one side, balanced on the number of *pairs* (see `balanced_split`)."""
    return balanced_split(Counter(group_of(p) for p in pairs), heldout, seed)


def balanced_split(sizes: Counter[str], heldout: float, seed: int) -> dict[str, str]:
    """Whole groups (tasks) to the held-out side, in a seeded random order, while that brings
    its share of *records* closer to `heldout`: one task with hundreds of records cannot swing
    it, and no task is on both sides."""
    target = heldout * sum(sizes.values())
    held: set[str] = set()
    n = 0
    for g in sorted(sizes, key=lambda g: _rank(g, seed)):
        if n + sizes[g] / 2 < target:
            held.add(g)
            n += sizes[g]
    if not held and heldout > 0 and len(sizes) > 1:
        held.add(min(sizes, key=lambda g: (sizes[g], _rank(g, seed))))
    return {g: "heldout" if g in held else "train" for g in sizes}


def _rules_of(p: PreferencePair) -> set[str]:
    return {p.rule, *(["modify"] if p.rule == "first_error" else [])}


def _cap_per_task(pairs: list[PreferencePair], cap: int | None) -> list[PreferencePair]:
    """At most `cap` ranked pairs per task and version, the largest margins kept."""
    if not cap:
        return pairs
    ranked: dict[tuple[Any, Any], list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        if p.rule == "ranked":
            ranked[(group_of(p), p.rubric_version_id)].append(p)
    drop: set[int] = set()
    for group in ranked.values():
        group.sort(key=lambda p: (-(p.margin or 0), p.id))
        drop |= {p.id for p in group[cap:]}
    return [p for p in pairs if p.id not in drop]


def select_pairs(session: Session, flt: PairFilter) -> list[tuple[PreferencePair, str]]:
    q = select(PreferencePair).order_by(PreferencePair.id)
    if flt.rubric_version_id is not None:
        q = q.where(PreferencePair.rubric_version_id == flt.rubric_version_id)
    pairs = [p for p in session.scalars(q) if not p.provenance.get("retired_at")]
    if flt.rules:
        pairs = [p for p in pairs if _rules_of(p) & set(flt.rules)]
    keep = _keeper(session, flt)
    pairs = _cap_per_task([p for p in pairs if keep(p)], flt.max_per_task)
    sides = assign_splits(pairs, flt.heldout, flt.seed)
    return [(p, sides[group_of(p)]) for p in pairs]


def _keeper(session: Session, flt: PairFilter):
    """The per-pair filters as one predicate (reviews and gold loaded once)."""
    need_reviews = flt.judge_ids or flt.since or flt.until or flt.min_agreement is not None
    review_info: dict[int, Review] = {}
    decisions: dict[tuple[int, int], list[str]] = defaultdict(list)
    if need_reviews:
        for r in session.scalars(select(Review).where(Review.status == "submitted")):
            review_info[r.id] = r
            decisions[(r.trace_id, r.rubric_version_id)].append(r.decision or "")
    gold = _gold_keys(session) if flt.adjudicated_only else set()

    def keep(p: PreferencePair) -> bool:
        prov = p.provenance
        if flt.adjudicated_only and not _is_gold(p, gold):
            return False
        if flt.min_margin is not None and (p.margin is None or p.margin < flt.min_margin):
            return False
        if flt.judge_ids and not set(prov.get("judge_ids", [])) & set(flt.judge_ids):
            return False
        if (flt.since or flt.until) and not _in_dates(p, review_info, flt):
            return False
        return flt.min_agreement is None or _agreed(p, decisions, flt.min_agreement)

    return keep


def _gold_keys(session: Session) -> set[tuple[int, int]]:
    rows = session.execute(select(Adjudication.trace_id, Adjudication.rubric_version_id))
    return {(t, v) for t, v in rows}


def _in_dates(p: PreferencePair, review_info: dict[int, Review], flt: PairFilter) -> bool:
    dates = [
        review_info[i].submitted_at
        for i in p.provenance.get("review_ids", [])
        if i in review_info and review_info[i].submitted_at
    ]
    day = max(dates).date().isoformat() if dates else p.created_at.date().isoformat()
    return not ((flt.since and day < flt.since) or (flt.until and day > flt.until))


def _agreed(p: PreferencePair, decisions, min_agreement: float) -> bool:
    for tid in p.provenance.get("trace_ids", []):
        ds = decisions.get((tid, p.rubric_version_id), [])
        if len(ds) >= 2:
            if max(ds.count(d) for d in set(ds)) / len(ds) < min_agreement:
                return False
        elif not p.provenance.get("adjudicated"):
            return False  # one judge: no agreement to speak of
    return True


def stats(session: Session, flt: PairFilter | None = None) -> dict[str, Any]:
    rows = select_pairs(session, flt or PairFilter())
    gold = _gold_keys(session)
    out = stats_of(rows)
    out["adjudicated"] = sum(1 for p, _ in rows if _is_gold(p, gold))
    return out


def _is_gold(p: PreferencePair, gold: set[tuple[int, int]]) -> bool:
    """From a lead's verdict, or on traces that all have one under the pair's version."""
    return bool(p.provenance.get("adjudicated")) or all(
        (t, p.rubric_version_id) in gold for t in p.provenance.get("trace_ids", [])
    )


# ---------------------------------------------------------------------------------------------
# Snapshots


def create_snapshot(
    session: Session, name: str, flt: PairFilter, created_by: int | None = None
) -> DatasetSnapshot:
    """Freeze the selection: pair ids, counts per split and rule, sha256 of the canonical
    TRL export. Immutable: a name is used once."""
    if session.scalar(select(DatasetSnapshot.id).where(DatasetSnapshot.name == name)):
        raise PairError(f"a snapshot named {name!r} exists already (snapshots are immutable)")
    rows = select_pairs(session, flt)
    if not rows:
        raise PairError("the filters select no pairs; nothing to snapshot")
    data = export_bytes(rows, "trl")
    sha = hashlib.sha256(data).hexdigest()
    counts = stats_of(rows)
    snap = DatasetSnapshot(
        name=name,
        filters=flt.as_dict(),
        pair_ids=[p.id for p, _ in rows],
        counts=counts,
        sha256=sha,
        created_by=created_by,
        manifest={
            "name": name,
            "filters": flt.as_dict(),
            "pair_ids": [p.id for p, _ in rows],
            "splits": {str(p.id): s for p, s in rows},
            "counts": counts,
            "sha256_trl_jsonl": sha,
            "record_version": RECORD_VERSION,
            "rubric_version_ids": sorted(
                {p.rubric_version_id for p, _ in rows if p.rubric_version_id}
            ),
            "review_ids": sorted({i for p, _ in rows for i in p.provenance.get("review_ids", [])}),
            "created_at": datetime.now(UTC).isoformat(),
        },
    )
    session.add(snap)
    session.flush()
    audit.record(
        session,
        "create",
        "dataset_snapshot",
        snap.id,
        created_by,
        name=name,
        pairs=len(rows),
        sha256=sha,
    )
    return snap


def stats_of(rows: list[tuple[PreferencePair, str]]) -> dict[str, Any]:
    by_split: dict[str, int] = defaultdict(int)
    by_rule: dict[str, int] = defaultdict(int)
    tasks: dict[str, set[str]] = defaultdict(set)
    for p, s in rows:
        by_split[s] += 1
        by_rule[p.rule] += 1
        tasks[s].add(group_of(p))
    return {
        "pairs": len(rows),
        "by_split": dict(by_split),
        "by_rule": dict(by_rule),
        "tasks": {k: len(v) for k, v in tasks.items()},
    }


def get_snapshot(session: Session, name: str) -> DatasetSnapshot:
    snap = session.scalar(select(DatasetSnapshot).where(DatasetSnapshot.name == name))
    if snap is None:
        raise NotFound(f"no snapshot named {name!r}")
    return snap


def snapshot_rows(session: Session, snap: DatasetSnapshot) -> list[tuple[PreferencePair, str]]:
    """The snapshot's pairs in its order, each with its frozen split; checks the hash."""
    pairs = {
        p.id: p
        for p in session.scalars(
            select(PreferencePair).where(PreferencePair.id.in_(snap.pair_ids or [0]))
        )
    }
    missing = [i for i in snap.pair_ids if i not in pairs]
    if missing:
        raise PairError(f"snapshot {snap.name!r}: pairs {missing[:5]} are gone from the workspace")
    splits = snap.manifest.get("splits", {})
    rows = [(pairs[i], splits.get(str(i), "train")) for i in snap.pair_ids]
    version = snap.manifest.get("record_version", 1)
    if hashlib.sha256(export_bytes(rows, "trl", version)).hexdigest() != snap.sha256:
        raise PairError(f"snapshot {snap.name!r}: its pairs no longer hash to {snap.sha256[:12]}")
    return rows


def heldout_path(out: Path) -> Path:
    """Where the held-out file of a split export goes: `dpo.jsonl` -> `dpo.heldout.jsonl`."""
    return out.with_name(f"{out.stem}.heldout{out.suffix or '.jsonl'}")


def export_snapshot(session: Session, name: str, fmt: str, out: Path) -> dict[str, Any]:
    """Write a snapshot's pairs. OpenAI takes a training and a validation file: the
    training pairs go to `out`, the held-out ones beside it (`heldout_path`)."""
    snap = get_snapshot(session, name)
    rows = snapshot_rows(session, snap)
    if fmt != "openai":  # TRL as the snapshot hashed it (its record version)
        version = snap.manifest.get("record_version", 1)
        sha = write_atomic(out, export_bytes(rows, fmt, version))
        files = [{"split": "all", "path": str(out), "pairs": len(rows), "sha256": sha}]
    else:
        files = []
        for split, path in (("train", out), ("heldout", heldout_path(out))):
            part = [(p, s) for p, s in rows if s == split]
            if part or split == "train":
                sha = write_atomic(path, export_bytes(part, fmt))
                files.append({"split": split, "path": str(path), "pairs": len(part), "sha256": sha})
    return {
        "snapshot": name,
        "format": fmt,
        "path": str(out),
        "pairs": len(rows),
        "sha256": files[0]["sha256"],
        "files": files,
    }


def list_pairs(
    session: Session, flt: PairFilter | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    rows = select_pairs(session, flt or PairFilter())
    judges = dict(session.execute(select(Judge.id, Judge.name)).all())
    out = []
    for p, split in rows[:limit] if limit else rows:
        out.append(
            {
                "id": p.id,
                "rule": p.rule,
                "split": split,
                "margin": p.margin,
                "rubric_version_id": p.rubric_version_id,
                "trace_ids": p.provenance.get("trace_ids"),
                "judges": [judges.get(j, str(j)) for j in p.provenance.get("judge_ids", [])],
                "adjudicated": p.provenance.get("adjudicated", False),
                "step": p.provenance.get("step"),
                "tools": len(p.provenance.get("tools") or []),
                "prompt_turns": len(p.prompt),
                "chosen_turns": len(p.chosen),
                "rejected_turns": len(p.rejected),
            }
        )
    return out
