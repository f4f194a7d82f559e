"""Deriving preference pairs from judgements, incrementally.

The rules (app.training.rules) say which pairs a judgement yields; this module keeps the
stored pairs in step with the judgements. The audit log's last `derive` entry holds a
watermark, and only the tasks whose reviews or verdicts changed since are derived again; their
pairs are diffed against the stored ones (a pair no longer derived is deleted, or retired when
a snapshot holds it), and the derivation returns what changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.rules import RULES, Candidate, ranked_candidates, trace_candidates
from app.workspace import audit
from app.workspace.models import (
    Adjudication,
    AuditEntry,
    DatasetSnapshot,
    PreferencePair,
    Review,
    RubricVersion,
    Trace,
)

RULES_VERSION = 2  # bump when a rule changes: the next derivation redoes every task
SLACK = timedelta(seconds=5)  # transactions that committed late still get seen
_CHUNK = 500


@dataclass
class PairChanges:
    """What a derivation changed, so a screen refreshes only that."""

    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    updated: int = 0
    scopes: int = 0
    full: bool = False
    added_ids: list[int] = field(default_factory=list)
    removed_ids: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added_ids or self.removed_ids or self.updated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": dict(self.added),
            "removed": dict(self.removed),
            "updated": self.updated,
            "tasks_derived": self.scopes,
            "full": self.full,
        }


# ---------------------------------------------------------------------------------------------
# Scopes: the unit derived again when something in it changed (a task, or a task-less trace)


Scope = tuple[str, Any]  # ("task", task_key) or ("trace", trace_id)


def _scope_of(trace_id: int, task_key: str | None) -> Scope:
    return ("task", task_key) if task_key else ("trace", trace_id)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def last_watermark(session: Session) -> datetime | None:
    entry = session.scalar(
        select(AuditEntry)
        .where(AuditEntry.action == "derive", AuditEntry.entity == "preference_pairs")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if entry is None or entry.details.get("rules_version") != RULES_VERSION:
        return None
    mark = entry.details.get("watermark")
    return datetime.fromisoformat(mark) if mark else None


def _changed_traces(session: Session, since: datetime) -> set[int]:
    tids = set(session.scalars(select(Review.trace_id).where(Review.updated_at >= since)))
    tids |= set(
        session.scalars(select(Adjudication.trace_id).where(Adjudication.created_at >= since))
    )
    for details in session.scalars(
        select(AuditEntry.details).where(
            AuditEntry.at >= since, AuditEntry.entity.in_(("review", "adjudication"))
        )
    ):
        if isinstance(details, dict) and isinstance(details.get("trace_id"), int):
            tids.add(details["trace_id"])
    return tids


def _all_scopes(session: Session) -> set[Scope]:
    judged = set(session.scalars(select(Review.trace_id).where(Review.status == "submitted")))
    judged |= set(session.scalars(select(Adjudication.trace_id)))
    scopes = _scopes_of(session, judged)
    for key, prov in session.execute(select(PreferencePair.task_key, PreferencePair.provenance)):
        scopes |= {_scope_of(t, key) for t in (prov.get("trace_ids") or [0])[:1]}
    return scopes


def _scopes_of(session: Session, trace_ids: set[int]) -> set[Scope]:
    out: set[Scope] = set()
    for chunk in _chunks(sorted(trace_ids)):
        rows = session.execute(select(Trace.id, Trace.task_key).where(Trace.id.in_(chunk)))
        out |= {_scope_of(tid, key) for tid, key in rows}
    return out


# ---------------------------------------------------------------------------------------------
# Deriving a set of scopes


def _load(session: Session, scopes: set[Scope]):
    keys = sorted(k for kind, k in scopes if kind == "task")
    ids = sorted(k for kind, k in scopes if kind == "trace")
    traces: list[Trace] = []
    for chunk in _chunks(keys):
        traces += session.scalars(select(Trace).where(Trace.task_key.in_(chunk)))
    for chunk in _chunks(ids):
        traces += session.scalars(select(Trace).where(Trace.id.in_(chunk)))
    tids = [t.id for t in traces]
    reviews: list[Review] = []
    gold: list[Adjudication] = []
    for chunk in _chunks(tids):
        reviews += session.scalars(
            select(Review)
            .where(Review.trace_id.in_(chunk), Review.status == "submitted")
            .order_by(Review.id)
        )
        gold += session.scalars(select(Adjudication).where(Adjudication.trace_id.in_(chunk)))
    return traces, reviews, gold


def candidates_for(session: Session, scopes: set[Scope]) -> list[Candidate]:
    traces, reviews, golds = _load(session, scopes)
    by_trace = {t.id: t for t in traces}
    rev: dict[tuple[int, int], list[Review]] = defaultdict(list)
    for r in reviews:
        rev[(r.trace_id, r.rubric_version_id)].append(r)
    gold = {(a.trace_id, a.rubric_version_id): a for a in golds}
    out: list[Candidate] = []
    for tid, vid in sorted(set(rev) | set(gold)):
        out += trace_candidates(by_trace[tid], rev.get((tid, vid), []), gold.get((tid, vid)), vid)
    versions = {v.id: v for v in session.scalars(select(RubricVersion))}
    tasks: dict[tuple[str, int], list[Trace]] = defaultdict(list)
    for tid, vid in set(rev) | set(gold):
        if by_trace[tid].task_key:
            tasks[(by_trace[tid].task_key, vid)].append(by_trace[tid])
    for (_, vid), ts in sorted(tasks.items()):
        if len(ts) > 1:
            r = {t.id: rev.get((t.id, vid), []) for t in ts}
            g = {t.id: gold[(t.id, vid)] for t in ts if (t.id, vid) in gold}
            out += ranked_candidates(versions[vid], ts, r, g)
    return out


def _merge(cands: list[Candidate]) -> dict[str, Candidate]:
    """One candidate per content: sources merged; `first_error` names a modify pair the judge
    localised; a verdict's pair stays adjudicated."""
    out: dict[str, Candidate] = {}
    for c in cands:
        h = c.content_hash
        if h not in out:
            out[h] = c
            continue
        m = out[h]
        m.review_ids = sorted(set(m.review_ids) | set(c.review_ids))
        m.judge_ids = sorted(set(m.judge_ids) | set(c.judge_ids))
        m.adjudicated = m.adjudicated or c.adjudicated
        if c.rule == "first_error" and m.rule == "modify":
            m.rule = "first_error"
    return out


def _existing(session: Session, scopes: set[Scope], full: bool) -> dict[str, PreferencePair]:
    """The stored pairs these scopes' reviews made (pairs from other sources, such as blind
    comparison rounds, are never touched by a derivation)."""
    derived = select(PreferencePair).where(PreferencePair.rule.in_(RULES))
    if full:
        return {p.content_hash: p for p in session.scalars(derived)}
    keys = sorted(k for kind, k in scopes if kind == "task")
    ids = {k for kind, k in scopes if kind == "trace"}
    out: dict[str, PreferencePair] = {}
    for chunk in _chunks(keys):
        for p in session.scalars(derived.where(PreferencePair.task_key.in_(chunk))):
            out[p.content_hash] = p
    if ids:
        for p in session.scalars(derived.where(PreferencePair.task_key.is_(None))):
            if set(p.provenance.get("trace_ids") or []) & ids:
                out[p.content_hash] = p
    return out


def _provenance(c: Candidate, traces: dict[int, str], created: str) -> dict[str, Any]:
    return {
        "rule": c.rule,
        "review_ids": sorted(set(c.review_ids)),
        "judge_ids": sorted(set(c.judge_ids)),
        "rubric_version_id": c.version_id,
        "trace_ids": c.trace_ids,
        "trace_hashes": [traces[t] for t in c.trace_ids],
        "adjudicated": c.adjudicated,
        "step": c.step,
        "tools": c.tools,
        "created_at": created,
    }


def derive_pairs(session: Session, full: bool = False) -> PairChanges:
    """Bring the stored pairs up to date with the judgements; returns what changed."""
    started = datetime.now(UTC)
    mark = None if full else last_watermark(session)
    changes = PairChanges(full=mark is None)
    if mark is None:
        scopes = _all_scopes(session)
    else:
        scopes = _scopes_of(session, _changed_traces(session, mark - SLACK))
    if not scopes:
        return changes
    changes.scopes = len(scopes)
    fresh = _merge(candidates_for(session, scopes))
    _apply(session, fresh, _existing(session, scopes, mark is None), changes)
    session.flush()
    audit.record(
        session,
        "derive",
        "preference_pairs",
        None,
        None,
        watermark=started.isoformat(),
        rules_version=RULES_VERSION,
        **changes.as_dict(),
    )
    return changes


def _apply(session, fresh: dict[str, Candidate], old: dict[str, PreferencePair], changes) -> None:
    now = datetime.now(UTC).isoformat()
    missing = [h for h in fresh if h not in old]
    for chunk in _chunks(missing):  # known elsewhere (e.g. retired): revive, never duplicate
        for p in session.scalars(
            select(PreferencePair).where(PreferencePair.content_hash.in_(chunk))
        ):
            old[p.content_hash] = p
    held = _snapshot_pair_ids(session) if set(old) - set(fresh) else set()
    ids = {t for c in fresh.values() for t in c.trace_ids}
    hashes = dict(
        session.execute(select(Trace.id, Trace.content_hash).where(Trace.id.in_(ids or {0}))).all()
    )
    for h, p in old.items():
        if h not in fresh and not p.provenance.get("retired_at"):
            _remove(session, p, p.id in held, now, changes)
    for h, c in fresh.items():
        p = old.get(h)
        if p is None:
            _add(session, c, _provenance(c, hashes, now), changes)
        else:
            _refresh(p, c, _provenance(c, hashes, p.provenance.get("created_at") or now), changes)
    session.flush()


def _snapshot_pair_ids(session: Session) -> set[int]:
    return {i for ids in session.scalars(select(DatasetSnapshot.pair_ids)) for i in ids or []}


def _remove(session, p: PreferencePair, held: bool, now: str, changes: PairChanges) -> None:
    changes.removed[p.rule] = changes.removed.get(p.rule, 0) + 1
    changes.removed_ids.append(p.id)
    if held:  # a snapshot holds it: keep it for the snapshot, out of every selection
        p.provenance = {**p.provenance, "retired_at": now}
    else:
        session.delete(p)


def _add(session, c: Candidate, prov: dict[str, Any], changes: PairChanges) -> None:
    p = PreferencePair(
        rule=c.rule,
        prompt=c.prompt,
        chosen=[c.chosen],
        rejected=[c.rejected],
        margin=c.margin,
        task_key=c.task_key,
        rubric_version_id=c.version_id,
        content_hash=c.content_hash,
        provenance=prov,
    )
    session.add(p)
    session.flush()
    changes.added[c.rule] = changes.added.get(c.rule, 0) + 1
    changes.added_ids.append(p.id)


def _refresh(p: PreferencePair, c: Candidate, prov: dict[str, Any], changes: PairChanges) -> None:
    revived = bool(p.provenance.get("retired_at"))
    keep = {k: v for k, v in p.provenance.items() if k not in ("retired_at", "created_at")}
    new = {k: v for k, v in prov.items() if k != "created_at"}
    if revived:
        changes.added[c.rule] = changes.added.get(c.rule, 0) + 1
        changes.added_ids.append(p.id)
    elif keep == new and p.rule == c.rule and p.margin == c.margin:
        return
    else:
        changes.updated += 1
    p.provenance = prov
    p.rule, p.margin, p.rubric_version_id = c.rule, c.margin, c.version_id
