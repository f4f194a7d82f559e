"""Deriving preference pairs from judgements, incrementally.

Every pair is one step: `chosen` and `rejected` are each a single assistant message (text and
structured tool calls), `prompt` is everything before it, and the trace's tool schemas travel
with it. Rules (README "Preference pairs"):
- `modify`: each assistant step a correction changed; prompt = the corrected history before it.
- `first_error`: the `modify` pair at the step the judge marked as the first error.
- `reject_with_answer`: a rejection with a written answer, at the agent's last step.
- `ranked`: two runs of one task with different consensus scores, at the first step where
  their actions differ (ids copied from tool output normalised away); largest margins first.
A lead's verdict wins: on an adjudicated trace the judges' step pairs yield to it (kept only
where the verdict is a reject without an answer of its own, which they agree with).

Derivation is incremental: the audit log's last `derive` entry holds a watermark, and only the
tasks whose reviews or verdicts changed since are derived again; their pairs are diffed
against the stored ones (a pair no longer derived is deleted, or retired when a snapshot
holds it).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.traces.model import canonical_json, sha256_hex
from app.training.steps import (
    TokenMap,
    carry_ids,
    changed_steps,
    first_divergence,
    normalised,
    same_step,
    step_message,
    to_chat,
    tool_schemas,
)
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

RULES = ("modify", "first_error", "reject_with_answer", "ranked")
RULES_VERSION = 2  # bump when a rule changes: the next derivation redoes every task
RANKED_LIMIT = 50  # ranked pairs stored per task and rubric version (largest margins)
SLACK = timedelta(seconds=5)  # transactions that committed late still get seen
_CHUNK = 500


@dataclass
class Candidate:
    rule: str
    prompt: list[dict[str, Any]]
    chosen: dict[str, Any]
    rejected: dict[str, Any]
    tools: list[dict[str, Any]]
    trace_ids: list[int]
    review_ids: list[int]
    judge_ids: list[int]
    version_id: int
    adjudicated: bool
    task_key: str | None
    margin: float | None = None
    step: int | None = None

    @property
    def content_hash(self) -> str:
        return pair_hash(self.prompt, [self.chosen], [self.rejected], self.tools)


def pair_hash(prompt, chosen, rejected, tools) -> str:
    return sha256_hex(canonical_json([prompt, chosen, rejected, tools]))


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
# Step pairs of one judgement


def _last_step(messages: list[dict[str, Any]]) -> int | None:
    return max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)


def _first_error(src: Any) -> int | None:
    for lab in getattr(src, "step_labels", None) or []:
        if lab.get("label") == "first_error":
            return lab.get("step")
    return None


def step_pairs(src: Any, trace: Trace) -> list[tuple[str, int, list, dict, dict]]:
    """(rule, original step index, prompt, chosen, rejected) of one review or verdict."""
    original = trace.messages
    marked = _first_error(src)
    out = []
    if src.decision == "modify" and src.corrected_messages:
        corrected = src.corrected_messages
        for ci, oj in changed_steps(original, corrected):
            rule = "first_error" if oj == marked else "modify"
            out.append(
                (
                    rule,
                    oj,
                    to_chat(corrected[:ci]),
                    step_message(corrected[ci]),
                    step_message(original[oj]),
                )
            )
    if not out and src.decision in ("modify", "reject") and src.corrected_output:
        # only the final answer was given: it replaces the agent's last step
        last = _last_step(original)
        if last is not None:
            rule = "reject_with_answer" if src.decision == "reject" else "modify"
            rule = "first_error" if last == marked and rule == "modify" else rule
            chosen = {"role": "assistant", "content": src.corrected_output}
            out.append((rule, last, to_chat(original[:last]), chosen, step_message(original[last])))
    return [x for x in out if _says_something(x[3]) and not same_step(x[3], x[4], x[2])]


def _says_something(step: dict[str, Any]) -> bool:
    """An emptied step is no answer to prefer."""
    return bool((step.get("content") or "").strip() or step.get("tool_calls"))


def _judges_count(gold: Adjudication | None) -> bool:
    """Judges' pairs stand beside a verdict only when it rejects without an answer of its own
    (the judges' corrections agree that the original is wrong)."""
    if gold is None:
        return True
    has_own = bool(gold.corrected_messages) or bool(gold.corrected_output)
    return gold.decision == "reject" and not has_own


def trace_candidates(
    trace: Trace, reviews: list[Review], gold: Adjudication | None, version_id: int
) -> list[Candidate]:
    sources: list[tuple[Any, list[int], list[int], bool]] = []
    if gold is not None:
        sources.append((gold, [], [gold.lead_id], True))
    if _judges_count(gold):
        sources += [(r, [r.id], [r.judge_id], False) for r in reviews]
    tools = tool_schemas(trace.tools)
    out = []
    for src, review_ids, judge_ids, is_gold in sources:
        for rule, step, prompt, chosen, rejected in step_pairs(src, trace):
            out.append(
                Candidate(
                    rule,
                    prompt,
                    chosen,
                    rejected,
                    tools,
                    [trace.id],
                    review_ids,
                    judge_ids,
                    version_id,
                    is_gold or gold is not None,
                    trace.task_key,
                    step=step,
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# Ranked pairs of one task


def weighted_score(version: RubricVersion, scores: dict[str, Any]) -> float | None:
    """The rubric's weighted score in [0, 1]: binary pass = 1, ordinal v -> (v-1)/(k-1);
    nominal criteria are not ordered and do not count."""
    total = weight = 0.0
    for c in version.criteria:
        v = scores.get(c.key)
        if v is None or c.weight <= 0:
            continue
        if c.scale == "binary":
            x = 1.0 if v in (1, True) else 0.0
        elif c.scale == "ordinal":
            k = len(c.levels)
            x = (v - 1) / (k - 1) if k > 1 else 0.0
        else:
            continue
        total += c.weight * x
        weight += c.weight
    return total / weight if weight else None


@dataclass
class _Run:
    """Runs of a task that act the same (after normalisation), with their consensus score."""

    trace: Trace
    chat: list[dict[str, Any]]
    scores: list[float] = field(default_factory=list)
    review_ids: list[int] = field(default_factory=list)
    judge_ids: list[int] = field(default_factory=list)
    gold: bool = False

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)


def _behaviour(chat: list[dict[str, Any]]) -> bytes:
    tokens = TokenMap()
    out = []
    for m in chat:
        tokens.feed(m)
        out.append(normalised(m, tokens))
    return canonical_json(out)


def _trace_score(version, reviews, gold) -> tuple[float | None, list[int], list[int]]:
    if gold is not None:
        return weighted_score(version, gold.scores), [r.id for r in reviews], [gold.lead_id]
    vals = [v for v in (weighted_score(version, r.scores) for r in reviews) if v is not None]
    score = sum(vals) / len(vals) if vals else None
    return score, [r.id for r in reviews], [r.judge_id for r in reviews]


def ranked_candidates(
    version: RubricVersion,
    traces: list[Trace],
    reviews: dict[int, list[Review]],
    gold: dict[int, Adjudication],
    limit: int = RANKED_LIMIT,
) -> list[Candidate]:
    """Pairs of runs of one task, largest score margins first, at most `limit`; runs that act
    the same are merged first, so the work is linear in the pairs emitted."""
    runs: dict[bytes, _Run] = {}
    for t in sorted(traces, key=lambda t: t.id):
        score, rids, jids = _trace_score(version, reviews.get(t.id, []), gold.get(t.id))
        if score is None:
            continue
        chat = to_chat(t.messages)
        run = runs.setdefault(_behaviour(chat), _Run(t, chat))
        run.scores.append(score)
        run.review_ids += rids
        run.judge_ids += jids
        run.gold = run.gold or t.id in gold
    ordered = sorted(runs.values(), key=lambda r: (-r.score, r.trace.id))
    out: list[Candidate] = []
    for hi, lo in _by_margin(ordered, limit * 4):
        cand = _ranked_pair(version.id, ordered[hi], ordered[lo])
        if cand is not None:
            out.append(cand)
            if len(out) >= limit:
                break
    return out


def _by_margin(runs: list[_Run], attempts: int) -> Iterable[tuple[int, int]]:
    """Index pairs (i < j) in order of decreasing score margin, lazily (a heap)."""
    n = len(runs)
    if n < 2:
        return
    heap = [(-(runs[0].score - runs[n - 1].score), 0, n - 1)]
    seen = {(0, n - 1)}
    while heap and attempts > 0:
        neg, i, j = heapq.heappop(heap)
        if -neg <= 0:
            return
        attempts -= 1
        yield i, j
        for a, b in ((i + 1, j), (i, j - 1)):
            if a < b and (a, b) not in seen:
                seen.add((a, b))
                heapq.heappush(heap, (-(runs[a].score - runs[b].score), a, b))


def _ranked_pair(version_id: int, hi: _Run, lo: _Run) -> Candidate | None:
    at = first_divergence(hi.chat, lo.chat)
    if at is None:
        return None
    i, j = at
    prompt = hi.chat[:i]
    rejected = carry_ids(lo.chat[j], lo.chat[:j], prompt)
    if same_step(hi.chat[i], rejected, prompt):
        return None
    return Candidate(
        "ranked",
        prompt,
        hi.chat[i],
        rejected,
        tool_schemas(hi.trace.tools),
        [hi.trace.id, lo.trace.id],
        hi.review_ids + lo.review_ids,
        hi.judge_ids + lo.judge_ids,
        version_id,
        hi.gold or lo.gold,
        hi.trace.task_key,
        margin=round(hi.score - lo.score, 6),
        step=i,
    )


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
