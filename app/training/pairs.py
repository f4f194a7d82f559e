"""Preference pairs from reviews, with provenance; filters, task-level splits, snapshots and
exports.

Derivation rules (README "Preference pairs"):
- `modify`: the judge corrected the trajectory. prompt = the conversation up to the first
  assistant step that changed; chosen = the corrected continuation; rejected = the original.
- `reject_with_answer`: the judge rejected and wrote the answer the agent should have given.
  prompt = the conversation up to the agent's final answer; chosen = the written answer;
  rejected = the agent's final answer.
- `ranked`: several traces of the same task (same first user message) whose consensus
  weighted rubric scores differ: the better one is chosen, the worse rejected, prompt = the
  task, and the score difference is kept as the margin.
Gold (a lead's adjudication) wins over the judges where there is one.

Messages are in TRL's conversational format, tool calls structured:
    {"role": "assistant", "content": "...", "tool_calls": [{"type": "function", "id": "...",
      "function": {"name": "...", "arguments": {...}}}]}
    {"role": "tool", "tool_call_id": "...", "content": "..."}
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.traces.model import canonical_json, sha256_hex
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import (
    Adjudication,
    DatasetSnapshot,
    Judge,
    PreferencePair,
    Review,
    RubricVersion,
    Trace,
)
from app.workspace.paths import write_atomic

RULES = ("modify", "reject_with_answer", "ranked")
FORMATS = ("trl", "openai", "parquet")


class PairError(ChambersError):
    pass


# ---------------------------------------------------------------------------------------------
# Message conversion


def to_chat(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Internal trace messages -> TRL conversational messages (tool calls stay structured)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        parts = m.get("parts", [])
        text = "\n\n".join(p["text"] for p in parts if p.get("type") == "text")
        if role == "tool":
            results = [p for p in parts if p.get("type") == "tool_result"]
            for r in results:
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": r.get("call_id") or "",
                        "content": r.get("content") or "",
                    }
                )
            if not results:
                out.append({"role": "tool", "tool_call_id": "", "content": text})
            continue
        msg: dict[str, Any] = {"role": role, "content": text}
        calls = [p for p in parts if p.get("type") == "tool_call"]
        if calls and role == "assistant":
            msg["tool_calls"] = [
                {
                    "type": "function",
                    "id": c.get("id") or f"call_{i}",
                    "function": {"name": c["name"], "arguments": c.get("arguments")},
                }
                for i, c in enumerate(calls)
            ]
        out.append(msg)
    return out


def _first_changed_assistant(original: list[dict[str, Any]], corrected: list[dict[str, Any]]):
    for i, m in enumerate(corrected):
        if i >= len(original) or original[i] != m:
            # the pair starts at the first assistant step that differs
            j = i
            while j > 0 and corrected[j]["role"] != "assistant":
                j -= 1
            return j if corrected[j]["role"] == "assistant" else i
    if len(original) > len(corrected):
        return len(corrected)
    return None


# ---------------------------------------------------------------------------------------------
# Derivation


@dataclass
class Verdict:
    """One trace's verdict: from gold if adjudicated, else from one submitted review."""

    trace: Trace
    decision: str
    scores: dict[str, Any]
    corrected_messages: list[dict[str, Any]] | None
    corrected_output: str | None
    review_ids: list[int]
    judge_ids: list[int]
    adjudicated: bool
    version_id: int
    submitted_at: datetime | None


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


def _pair_hash(prompt, chosen, rejected) -> str:
    return sha256_hex(canonical_json([prompt, chosen, rejected]))


def derive_pairs(session: Session, version_id: int | None = None) -> dict[str, int]:
    """Create the pairs the workspace's reviews yield (idempotent: known pairs are skipped).
    Returns counts per rule of new pairs."""
    q = select(Review).where(Review.status == "submitted")
    if version_id is not None:
        q = q.where(Review.rubric_version_id == version_id)
    reviews = list(session.scalars(q.order_by(Review.id)))
    gold = {(a.trace_id, a.rubric_version_id): a for a in session.scalars(select(Adjudication))}
    traces = {
        t.id: t
        for t in session.scalars(
            select(Trace).where(Trace.id.in_({r.trace_id for r in reviews} or {0}))
        )
    }
    versions = {v.id: v for v in session.scalars(select(RubricVersion))}
    known = set(session.scalars(select(PreferencePair.content_hash)))
    created: dict[str, int] = dict.fromkeys(RULES, 0)
    now = datetime.now(UTC)

    def add(
        rule,
        prompt,
        chosen,
        rejected,
        margin,
        trace_ids,
        review_ids,
        judge_ids,
        vid,
        adjudicated,
        task_key,
    ):
        h = _pair_hash(prompt, chosen, rejected)
        if h in known:
            return
        known.add(h)
        session.add(
            PreferencePair(
                rule=rule,
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                margin=margin,
                task_key=task_key,
                rubric_version_id=vid,
                content_hash=h,
                provenance={
                    "rule": rule,
                    "review_ids": sorted(review_ids),
                    "judge_ids": sorted(set(judge_ids)),
                    "rubric_version_id": vid,
                    "trace_ids": trace_ids,
                    "trace_hashes": [traces[t].content_hash for t in trace_ids],
                    "adjudicated": adjudicated,
                    "created_at": now.isoformat(),
                },
            )
        )
        created[rule] += 1

    # Per review: modify and reject-with-answer. Gold corrections are used too.
    sources: list[tuple[Any, list[int], list[int], bool]] = [
        (r, [r.id], [r.judge_id], False) for r in reviews
    ]
    sources += [
        (a, [], [a.lead_id], True)
        for a in gold.values()
        if version_id is None or a.rubric_version_id == version_id
    ]
    for src, review_ids, judge_ids, is_gold in sources:
        trace = traces.get(src.trace_id) or session.get(Trace, src.trace_id)
        traces[trace.id] = trace
        original = trace.messages
        if src.decision == "modify" and src.corrected_messages:
            k = _first_changed_assistant(original, src.corrected_messages)
            if k is None:
                continue
            prompt = to_chat(original[:k])
            chosen = to_chat(src.corrected_messages[k:])
            rejected = to_chat(original[k:])
            if chosen and rejected and chosen != rejected:
                add(
                    "modify",
                    prompt,
                    chosen,
                    rejected,
                    None,
                    [trace.id],
                    review_ids,
                    judge_ids,
                    src.rubric_version_id,
                    is_gold,
                    trace.task_key,
                )
        elif src.decision == "reject" and src.corrected_output:
            last = max(
                (i for i, m in enumerate(original) if m["role"] == "assistant"), default=None
            )
            if last is None:
                continue
            prompt = to_chat(original[:last])
            chosen = [{"role": "assistant", "content": src.corrected_output}]
            rejected = to_chat(original[last:])
            if [m.get("content") for m in rejected if m["role"] == "assistant"] == [
                src.corrected_output
            ]:
                continue  # the "correction" is what the agent said: no preference to learn
            add(
                "reject_with_answer",
                prompt,
                chosen,
                rejected,
                None,
                [trace.id],
                review_ids,
                judge_ids,
                src.rubric_version_id,
                is_gold,
                trace.task_key,
            )

    # Ranked: traces of the same task with different consensus scores.
    by_task: dict[tuple[str, int], dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for r in reviews:
        t = traces[r.trace_id]
        if t.task_key:
            by_task[(t.task_key, r.rubric_version_id)][t.id].append(r)
    for (task_key, vid), per_trace in by_task.items():
        if len(per_trace) < 2:
            continue
        version = versions[vid]
        scored = []
        for tid, rs in per_trace.items():
            g = gold.get((tid, vid))
            if g is not None:
                s = weighted_score(version, g.scores)
                ids, judges = [r.id for r in rs], [g.lead_id]
            else:
                vals = [weighted_score(version, r.scores) for r in rs]
                vals = [v for v in vals if v is not None]
                s = sum(vals) / len(vals) if vals else None
                ids, judges = [r.id for r in rs], [r.judge_id for r in rs]
            if s is not None:
                scored.append((s, tid, ids, judges, g is not None))
        scored.sort(key=lambda x: (-x[0], x[1]))
        for i, hi in enumerate(scored):
            for lo in scored[i + 1 :]:
                margin = hi[0] - lo[0]
                if margin <= 0:
                    continue
                th, tl = traces[hi[1]], traces[lo[1]]
                k = next(
                    (n for n, m in enumerate(th.messages) if m["role"] == "assistant"),
                    len(th.messages),
                )
                prompt = to_chat(th.messages[:k])
                k2 = next(
                    (n for n, m in enumerate(tl.messages) if m["role"] == "assistant"),
                    len(tl.messages),
                )
                add(
                    "ranked",
                    prompt,
                    to_chat(th.messages[k:]),
                    to_chat(tl.messages[k2:]),
                    round(margin, 6),
                    [hi[1], lo[1]],
                    hi[2] + lo[2],
                    hi[3] + lo[3],
                    vid,
                    hi[4] or lo[4],
                    task_key,
                )
    session.flush()
    if any(created.values()):
        audit.record(session, "derive", "preference_pairs", None, None, **created)
    return created


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
    heldout: float = 0.1  # share of tasks held out
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """What was set (the split's heldout share and seed always: they define it)."""
        return {k: v for k, v in asdict(self).items() if not (v is None or v is False or v == [])}


def split_of(task_key: str | None, pair_hash: str, heldout: float, seed: int) -> str:
    """By task: every pair of one task lands on the same side (no task on both)."""
    key = task_key or pair_hash
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if h < heldout else "train"


def select_pairs(session: Session, flt: PairFilter) -> list[tuple[PreferencePair, str]]:
    q = select(PreferencePair).order_by(PreferencePair.id)
    if flt.rubric_version_id is not None:
        q = q.where(PreferencePair.rubric_version_id == flt.rubric_version_id)
    if flt.rules:
        q = q.where(PreferencePair.rule.in_(flt.rules))
    pairs = list(session.scalars(q))
    need_reviews = flt.judge_ids or flt.since or flt.until or flt.min_agreement is not None
    review_info: dict[int, Review] = {}
    decisions: dict[tuple[int, int], list[str]] = defaultdict(list)
    if need_reviews:
        for r in session.scalars(select(Review).where(Review.status == "submitted")):
            review_info[r.id] = r
            decisions[(r.trace_id, r.rubric_version_id)].append(r.decision or "")
    gold: set[tuple[int, int]] = set()
    if flt.adjudicated_only:
        gold = {
            tuple(r)
            for r in session.execute(
                select(Adjudication.trace_id, Adjudication.rubric_version_id)
            ).all()
        }
    out = []
    for p in pairs:
        prov = p.provenance
        if flt.adjudicated_only and not _is_gold(p, gold):
            continue
        if flt.min_margin is not None and (p.margin is None or p.margin < flt.min_margin):
            continue
        if flt.judge_ids and not set(prov.get("judge_ids", [])) & set(flt.judge_ids):
            continue
        if flt.since or flt.until:
            dates = [
                review_info[i].submitted_at
                for i in prov.get("review_ids", [])
                if i in review_info and review_info[i].submitted_at
            ]
            day = max(dates).date().isoformat() if dates else p.created_at.date().isoformat()
            if (flt.since and day < flt.since) or (flt.until and day > flt.until):
                continue
        if flt.min_agreement is not None:
            ok = True
            for tid in prov.get("trace_ids", []):
                ds = decisions.get((tid, p.rubric_version_id), [])
                if len(ds) >= 2:
                    top = max(ds.count(d) for d in set(ds))
                    ok = ok and top / len(ds) >= flt.min_agreement
                elif not prov.get("adjudicated"):
                    ok = False  # one judge: no agreement to speak of
            if not ok:
                continue
        out.append((p, split_of(p.task_key, p.content_hash, flt.heldout, flt.seed)))
    return out


def stats(session: Session, flt: PairFilter | None = None) -> dict[str, Any]:
    rows = select_pairs(session, flt or PairFilter())
    gold = {
        tuple(r)
        for r in session.execute(
            select(Adjudication.trace_id, Adjudication.rubric_version_id)
        ).all()
    }
    by_rule: dict[str, int] = defaultdict(int)
    by_split: dict[str, int] = defaultdict(int)
    tasks: dict[str, set] = defaultdict(set)
    for p, split in rows:
        by_rule[p.rule] += 1
        by_split[split] += 1
        tasks[split].add(p.task_key or p.content_hash)
    return {
        "pairs": len(rows),
        "by_rule": dict(by_rule),
        "by_split": dict(by_split),
        "tasks": {k: len(v) for k, v in tasks.items()},
        "adjudicated": sum(1 for p, _ in rows if _is_gold(p, gold)),
    }


def _is_gold(p: PreferencePair, gold: set[tuple[int, int]]) -> bool:
    """From a lead's verdict, or on traces that all have one under the pair's version."""
    return bool(p.provenance.get("adjudicated")) or all(
        (t, p.rubric_version_id) in gold for t in p.provenance.get("trace_ids", [])
    )


# ---------------------------------------------------------------------------------------------
# Export and snapshots


def trl_record(p: PreferencePair, split: str) -> dict[str, Any]:
    return {
        "prompt": p.prompt,
        "chosen": p.chosen,
        "rejected": p.rejected,
        "split": split,
        "pair_id": p.id,
        "rule": p.rule,
        "margin": p.margin,
    }


def openai_record(p: PreferencePair) -> dict[str, Any]:
    """OpenAI's preference fine-tuning (DPO) JSONL line."""
    return {
        "input": {"messages": p.prompt},
        "preferred_output": p.chosen,
        "non_preferred_output": p.rejected,
    }


def export_bytes(rows: list[tuple[PreferencePair, str]], fmt: str) -> bytes:
    if fmt == "trl":
        return b"".join(canonical_json(trl_record(p, s)) + b"\n" for p, s in rows)
    if fmt == "openai":
        return b"".join(canonical_json(openai_record(p)) + b"\n" for p, _ in rows)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Messages are nested and heterogeneous (tool call arguments): JSON strings in columns.
        table = pa.table(
            {
                "pair_id": [p.id for p, _ in rows],
                "split": [s for _, s in rows],
                "rule": [p.rule for p, _ in rows],
                "margin": [p.margin for p, _ in rows],
                "prompt": [json.dumps(p.prompt, ensure_ascii=False) for p, _ in rows],
                "chosen": [json.dumps(p.chosen, ensure_ascii=False) for p, _ in rows],
                "rejected": [json.dumps(p.rejected, ensure_ascii=False) for p, _ in rows],
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    raise PairError(f"format must be one of {', '.join(FORMATS)}")


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
    for p, s in rows:
        by_split[s] += 1
        by_rule[p.rule] += 1
    return {"pairs": len(rows), "by_split": dict(by_split), "by_rule": dict(by_rule)}


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
    if hashlib.sha256(export_bytes(rows, "trl")).hexdigest() != snap.sha256:
        raise PairError(f"snapshot {snap.name!r}: its pairs no longer hash to {snap.sha256[:12]}")
    return rows


def export_snapshot(session: Session, name: str, fmt: str, out: Path) -> dict[str, Any]:
    snap = get_snapshot(session, name)
    rows = snapshot_rows(session, snap)
    sha = write_atomic(out, export_bytes(rows, fmt))
    return {"snapshot": name, "format": fmt, "path": str(out), "pairs": len(rows), "sha256": sha}


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
                "prompt_turns": len(p.prompt),
                "chosen_turns": len(p.chosen),
                "rejected_turns": len(p.rejected),
            }
        )
    return out
