"""Step examples from verdicts, for SFT and KTO, frozen in snapshots.

A verdict on a trace says something about its assistant steps. Each becomes an unpaired
example: the prompt is everything before the step (system, task, earlier turns and tool
results), the completion the single assistant message, and a label:
- `approve`: every assistant step of the trajectory is desirable;
- `modify`: each step the correction changed is desirable in its corrected form (with the
  corrected history before it), and the first original step it replaced is undesirable (with
  the original history). The corrected history ends at its last changed step: later steps were
  produced by another history;
- `reject`: the steps a judge labelled wrong or first error are undesirable; without step
  labels, the final assistant step (the answer that failed);
- `reject_with_answer`: the answer the judge wrote is desirable in place of the final step;
- `step_label`: steps labelled good are desirable.
A lead's verdict on a trace replaces the judges' (gold wins). The same step judged both
desirable and undesirable is a conflict: neither is kept, the count is reported.

SFT trains on the desirable examples, KTO on all of them. A snapshot of kind `verdicts`
holds the examples themselves (immutable, like pair snapshots: the sha256 of their canonical
JSON lines is checked before every run).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.traces.model import canonical_json, sha256_hex
from app.training.pairs import PairError, balanced_split, to_chat
from app.training.steps import assistant_steps
from app.workspace import audit
from app.workspace.models import Adjudication, DatasetSnapshot, Review, Trace

KINDS = ("approve", "modify", "reject", "reject_with_answer", "step_label")
SNAPSHOT_KIND = "verdicts"


@dataclass
class ExampleFilter:
    rubric_version_id: int | None = None
    kinds: list[str] | None = None
    adjudicated_only: bool = False
    heldout: float = 0.1
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not (v is None or v is False or v == [])}


@dataclass
class _Example:
    prompt: list[dict[str, Any]]
    completion: list[dict[str, Any]]
    label: bool
    kinds: list[str]
    tools: list[dict[str, Any]]
    trace_id: int
    step: int
    task_key: str | None
    rubric_version_id: int
    adjudicated: bool
    review_ids: list[int] = field(default_factory=list)
    judge_ids: list[int] = field(default_factory=list)

    def key(self) -> str:
        return sha256_hex(canonical_json([self.prompt, self.completion]))


def tool_schemas(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A trace's tools as chat-template JSON schemas ({"type": "function", "function": ...})."""
    out = []
    for t in tools or []:
        if t.get("type") == "function" and "function" in t:
            out.append(t)
        elif "name" in t:
            out.append({"type": "function", "function": t})
    return out


def _step_examples(trace: Trace, src: Any, adjudicated: bool) -> list[_Example]:
    original = trace.messages
    tools = tool_schemas(trace.tools)
    ids = [] if adjudicated else [src.id]
    judges = [src.lead_id] if adjudicated else [src.judge_id]

    def ex(history, i, message, label, kind) -> _Example:
        return _Example(
            to_chat(history[:i]),
            to_chat([message]),
            label,
            [kind],
            tools,
            trace.id,
            i,
            trace.task_key,
            src.rubric_version_id,
            adjudicated,
            list(ids),
            list(judges),
        )

    out: list[_Example] = []
    covered: set[int] = set()
    if src.decision == "approve":
        out += [ex(original, i, original[i], True, "approve") for i in assistant_steps(original)]
        covered = set(assistant_steps(original))
    elif src.decision == "modify" and src.corrected_messages:
        fixed = src.corrected_messages
        k = next(
            (i for i in range(min(len(fixed), len(original))) if fixed[i] != original[i]),
            min(len(fixed), len(original)),
        )
        changed = [
            i
            for i in assistant_steps(fixed)
            if i >= k and (i >= len(original) or fixed[i] != original[i])
        ]
        out += [ex(fixed, i, fixed[i], True, "modify") for i in changed]
        if k < len(original) and original[k].get("role") == "assistant" and changed:
            out.append(ex(original, k, original[k], False, "modify"))
            covered.add(k)
    elif src.decision == "reject":
        steps = assistant_steps(original)
        labelled = [
            s
            for s in (getattr(src, "step_labels", None) or [])
            if s.get("label") in ("wrong", "first_error")
        ]
        bad = sorted({s["step"] for s in labelled if s["step"] in steps}) or steps[-1:]
        out += [ex(original, i, original[i], False, "reject") for i in bad]
        covered |= set(bad)
        if src.corrected_output and steps:
            answer = {
                "role": "assistant",
                "parts": [{"type": "text", "text": src.corrected_output}],
            }
            out.append(ex(original, steps[-1], answer, True, "reject_with_answer"))
    for s in getattr(src, "step_labels", None) or []:
        i = s.get("step")
        if s.get("label") == "good" and i not in covered and i in assistant_steps(original):
            out.append(ex(original, i, original[i], True, "step_label"))
    return out


def derive_examples(
    session: Session, flt: ExampleFilter | None = None
) -> tuple[list[_Example], dict[str, int]]:
    """Every step example the verdicts yield (deduplicated), and what was left out."""
    flt = flt or ExampleFilter()
    q = select(Review).where(Review.status == "submitted")
    gq = select(Adjudication)
    if flt.rubric_version_id is not None:
        q = q.where(Review.rubric_version_id == flt.rubric_version_id)
        gq = gq.where(Adjudication.rubric_version_id == flt.rubric_version_id)
    gold = {(a.trace_id, a.rubric_version_id): a for a in session.scalars(gq)}
    sources: list[tuple[Any, bool]] = [(a, True) for a in gold.values()]
    if not flt.adjudicated_only:
        sources += [
            (r, False)
            for r in session.scalars(q.order_by(Review.id))
            if (r.trace_id, r.rubric_version_id) not in gold
        ]
    trace_ids = {s.trace_id for s, _ in sources}
    traces = {t.id: t for t in session.scalars(select(Trace).where(Trace.id.in_(trace_ids or {0})))}
    merged: dict[tuple[str, bool], _Example] = {}
    for src, is_gold in sorted(sources, key=lambda x: (x[0].trace_id, not x[1], x[0].id)):
        for e in _step_examples(traces[src.trace_id], src, is_gold):
            if flt.kinds and not set(e.kinds) & set(flt.kinds):
                continue
            known = merged.get((e.key(), e.label))
            if known is None:
                merged[(e.key(), e.label)] = e
            else:
                known.review_ids = sorted(set(known.review_ids) | set(e.review_ids))
                known.judge_ids = sorted(set(known.judge_ids) | set(e.judge_ids))
                known.kinds = sorted(set(known.kinds) | set(e.kinds))
    both = {k for k, label in merged if label} & {k for k, label in merged if not label}
    out = [e for (k, _), e in merged.items() if k not in both]
    return out, {"conflicts": len(both)}


def record(e: _Example, split: str) -> dict[str, Any]:
    """One example as a TRL line (KTO's unpaired format) with its provenance."""
    return {
        "prompt": e.prompt,
        "completion": e.completion,
        "label": e.label,
        "tools": e.tools,
        "split": split,
        "kinds": e.kinds,
        "provenance": {
            "trace_id": e.trace_id,
            "step": e.step,
            "review_ids": e.review_ids,
            "judge_ids": e.judge_ids,
            "rubric_version_id": e.rubric_version_id,
            "adjudicated": e.adjudicated,
        },
    }


def records_bytes(records: list[dict[str, Any]]) -> bytes:
    return b"".join(canonical_json(r) + b"\n" for r in records)


def create_verdict_snapshot(
    session: Session, name: str, flt: ExampleFilter, created_by: int | None = None
) -> DatasetSnapshot:
    """Freeze the verdicts' step examples (the records themselves: immutable, hashed)."""
    if session.scalar(select(DatasetSnapshot.id).where(DatasetSnapshot.name == name)):
        raise PairError(f"a snapshot named {name!r} exists already (snapshots are immutable)")
    examples, left_out = derive_examples(session, flt)
    if not examples:
        raise PairError("no verdict yields a step example under these filters; nothing to snapshot")
    sides = balanced_split(Counter(e.task_key or e.key() for e in examples), flt.heldout, flt.seed)
    records = [record(e, sides[e.task_key or e.key()]) for e in examples]
    sha = hashlib.sha256(records_bytes(records)).hexdigest()
    counts = {
        "examples": len(records),
        "desirable": sum(r["label"] for r in records),
        "undesirable": sum(not r["label"] for r in records),
        "by_split": dict(Counter(r["split"] for r in records)),
        "by_kind": dict(Counter(k for r in records for k in r["kinds"])),
        **left_out,
    }
    snap = DatasetSnapshot(
        name=name,
        filters={"from": SNAPSHOT_KIND, **flt.as_dict()},
        pair_ids=[],
        counts=counts,
        sha256=sha,
        created_by=created_by,
        manifest={
            "kind": SNAPSHOT_KIND,
            "name": name,
            "filters": flt.as_dict(),
            "counts": counts,
            "sha256_jsonl": sha,
            "examples": records,
            "rubric_version_ids": sorted({r["provenance"]["rubric_version_id"] for r in records}),
            "review_ids": sorted({i for r in records for i in r["provenance"]["review_ids"]}),
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
        examples=len(records),
        sha256=sha,
    )
    return snap


def is_verdict_snapshot(snap: DatasetSnapshot) -> bool:
    return (snap.manifest or {}).get("kind") == SNAPSHOT_KIND


def verdict_records(snap: DatasetSnapshot) -> list[dict[str, Any]]:
    """The snapshot's examples, checked against its hash."""
    records = (snap.manifest or {}).get("examples") or []
    if hashlib.sha256(records_bytes(records)).hexdigest() != snap.sha256:
        raise PairError(
            f"snapshot {snap.name!r}: its examples no longer hash to {snap.sha256[:12]}"
        )
    return records
