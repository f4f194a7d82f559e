"""Which preference pairs a judgement yields (README "Preference pairs").

Every pair is one step: `chosen` and `rejected` are each a single assistant message (text and
structured tool calls), `prompt` is everything before it, and the trace's tool schemas travel
with it.
- `modify`: each assistant step a correction changed; prompt = the corrected history before it.
- `first_error`: the `modify` pair at the step the judge marked as the first error.
- `reject_with_answer`: a rejection with a written answer, at the agent's last step.
- `ranked`: two runs of one task with different consensus scores, at the first step where
  their actions differ (ids copied from tool output normalised away); largest margins first.
A lead's verdict wins: on an adjudicated trace the judges' step pairs yield to it (kept only
where the verdict is a reject without an answer of its own, which they agree with).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
from app.workspace.models import Adjudication, Review, RubricVersion, Trace

RULES = ("modify", "first_error", "reject_with_answer", "ranked")
RANKED_LIMIT = 50  # ranked pairs stored per task and rubric version (largest margins)


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
