"""The grader check before GRPO: do the graders agree with the judges on traces whose
reference nobody wrote for them?

Why not simply grade each trace against its own correction: the correction was written by the
judge who rejected the trace, so a trace with one is known to be wrong *and* is graded
against the answer that makes it look wrong. That check is circular and flatters any grader.
Here every reviewed trace is graded against a reference taken from **another trace of the
same task**, in this order of trust:

1. a lead's verdict on another trace (adjudication): approved, that trace's trajectory; with
   a correction, the corrected trajectory;
2. another trace the judges approved (majority), its trajectory;
3. a judge's correction of another trace (the first submitted), the corrected trajectory;

ties broken by the lower trace id. A correction with only a final answer keeps the trace's
calls when it modifies the trace and drops them when it rejects it (a rejected trajectory's
calls are no reference). Traces with no such reference are left out and counted, and so are
those a built-in grader cannot judge (`graders.unjudgeable`).

Held out: the tasks with a reference are split in two halves, whole tasks to one side, by the
seeded split the preference pairs use (`pairs.balanced_split`, share `HELDOUT_SHARE`, seed
`SPLIT_SEED`), each task counting once (the bootstrap resamples tasks).
The gate reads the held-out half; the other half ("dev") is there to look at while writing a
grader, so a grader tuned on what it sees is still measured on tasks it has not seen.

Statistics, per grader and for the weighted combination (the reward GRPO trains on):
- Cohen's κ (1960) of the grader's pass (score >= 0.5) against the judges' pass/fail (a lead's
  verdict where there is one, else the judges' majority: approve = pass);
- within-task rank agreement as an AUC: over every pair of held-out traces *of the same task*
  whose judges' rubric scores differ, the share the grader orders the same way, ties in the
  grader counting half. 0.5 is chance, 1 perfect. It equals (1 + Somers' D) / 2 of grader
  given judges' score, and with pass/fail scores in one task the ROC AUC. Chosen over
  Kendall's τ because tasks hold two to a few traces, where a per-task τ is mostly undefined
  or ±1, and because it stays interpretable with graders that tie a lot (0/1 rewards).
- each with a 95% percentile bootstrap CI resampling *tasks* (traces of one task share a
  reference and are not independent), `N_BOOT` replicates, seeded; replicates where the
  statistic is undefined (one class only, no pairs) are dropped.

The gate (`ok`): for each grader and for the combination, the κ CI's lower bound is at least
`MIN_KAPPA_LOW` (0.2, the lower edge of "fair" agreement in Landis & Koch 1977: the data rule
out a grader that merely guesses) and the rank CI's lower bound is above `MIN_RANK_LOW` (0.5:
better than chance at ordering a task's traces). A grader that gives every checked trace the
same score (a format guard on well-formed traces) is `constant`: the judged traces cannot test
it, so it does not gate; the combination always does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.graders import GraderSpec, grade_one, reference_from, unjudgeable
from app.training.pairs import balanced_split
from app.training.rules import weighted_score
from app.training.steps import to_chat
from app.workspace.models import Adjudication, Review, RubricVersion, Trace

MIN_KAPPA_LOW = 0.2
MIN_RANK_LOW = 0.5
HELDOUT_SHARE = 0.5
SPLIT_SEED = 0
N_BOOT = 1000
BOOT_SEED = 0
PARTS = ("heldout", "dev")
SOURCES = ("lead_verdict", "approved", "corrected")  # order of trust
CHUNK = 10_000  # ids per IN (...) query


@dataclass
class Human:
    """What the humans said of one trace: pass/fail and the rubric score in [0, 1]."""

    passed: int
    score: float | None
    adjudicated: bool


@dataclass
class Reference:
    trace_id: int  # the trace the reference was taken from (never the graded one)
    source: str  # one of SOURCES
    reference: dict[str, Any]


@dataclass
class Item:
    """One trace to grade, against a reference from another trace of its task."""

    trace_id: int
    task_key: str
    human: Human
    sample: list[dict[str, Any]]
    ref: Reference


# ---------------------------------------------------------------------------------------------
# The humans' side and the references


def _trajectory(trace: Trace, src: Review | Adjudication) -> dict[str, Any] | None:
    """The reference a verdict or review gives for its trace (None when it gives none)."""
    if src.decision == "approve":
        return reference_from(to_chat(trace.messages))
    if src.corrected_messages:
        return reference_from(to_chat(src.corrected_messages))
    if src.corrected_output:
        calls = reference_from(to_chat(trace.messages))["tool_calls"]
        return {
            "answer": src.corrected_output,
            "tool_calls": calls if src.decision == "modify" else [],
        }
    return None


def _humans(
    session: Session,
) -> tuple[dict[int, Human], dict[int, list[Review]], dict[int, Adjudication], int]:
    """Per reviewed trace the humans' verdict; also the reviews, the latest lead's verdict per
    trace, and how many traces were left out because their judges split evenly."""
    reviews: dict[int, list[Review]] = defaultdict(list)
    for r in session.scalars(
        select(Review).where(Review.status == "submitted").order_by(Review.id)
    ):
        reviews[r.trace_id].append(r)
    gold = {a.trace_id: a for a in session.scalars(select(Adjudication).order_by(Adjudication.id))}
    versions = {v.id: v for v in session.scalars(select(RubricVersion))}

    def score(src: Review | Adjudication) -> float | None:
        v = versions.get(src.rubric_version_id)
        return weighted_score(v, src.scores or {}) if v else None

    humans: dict[int, Human] = {}
    split_evenly = 0
    for tid in set(reviews) | set(gold):
        if tid in gold:
            g = gold[tid]
            humans[tid] = Human(int(g.decision == "approve"), score(g), True)
            continue
        rs = reviews[tid]
        passes = sum(r.decision == "approve" for r in rs)
        if 2 * passes == len(rs):
            split_evenly += 1
            continue
        scores = [x for x in map(score, rs) if x is not None]
        mean = sum(scores) / len(scores) if scores else None
        humans[tid] = Human(int(2 * passes > len(rs)), mean, False)
    return humans, reviews, gold, split_evenly


def _candidates(
    trace: Trace, human: Human | None, reviews: list[Review], gold: Adjudication | None
) -> list[tuple[int, Reference]]:
    """What one trace can be a reference for *other* traces of its task, with its trust rank."""
    out: list[tuple[int, Reference]] = []
    if gold is not None and (ref := _trajectory(trace, gold)):
        out.append((0, Reference(trace.id, "lead_verdict", ref)))
    if human is not None and not human.adjudicated and human.passed:
        out.append((1, Reference(trace.id, "approved", reference_from(to_chat(trace.messages)))))
    for r in reviews:
        if r.decision != "approve" and (ref := _trajectory(trace, r)):
            out.append((2, Reference(trace.id, "corrected", ref)))
            break
    return out


def _shared_task_traces(session: Session, judged: list[int]) -> dict[int, Trace | None]:
    """The judged traces, loaded only where their task has another judged trace (only they
    can have a reference from another trace); None for the others."""
    keys: dict[int, str | None] = {}
    for n in range(0, len(judged), CHUNK):
        part = judged[n : n + CHUNK]
        keys.update(
            session.execute(select(Trace.id, Trace.task_key).where(Trace.id.in_(part))).all()
        )
    per_task = Counter(k for k in keys.values() if k)
    load = [t for t, k in keys.items() if k and per_task[k] > 1]
    traces: dict[int, Trace | None] = dict.fromkeys(keys)
    for n in range(0, len(load), CHUNK):
        for t in session.scalars(select(Trace).where(Trace.id.in_(load[n : n + CHUNK]))):
            traces[t.id] = t
    return traces


def items(session: Session) -> tuple[list[Item], dict[str, int]]:
    """Every judged trace with an independent reference, and what was left out (counted)."""
    humans, reviews, gold, split_evenly = _humans(session)
    traces = _shared_task_traces(session, sorted(set(reviews) | set(gold)))
    best: dict[str, list[tuple[int, int, Reference]]] = defaultdict(list)
    for tid, t in traces.items():
        if t is not None:
            for rank, ref in _candidates(t, humans.get(tid), reviews.get(tid, []), gold.get(tid)):
                best[t.task_key].append((rank, tid, ref))
    left_out: Counter[str] = Counter()
    if split_evenly:
        left_out["the judges split evenly"] = split_evenly
    out = []
    for tid in sorted(humans):
        t = traces[tid]
        others = sorted(
            (x for x in best[t.task_key] if x[1] != tid) if t else (), key=lambda x: x[:2]
        )
        if not others:
            left_out["no other trace of the task gives a reference"] += 1
            continue
        first = next((i for i, m in enumerate(t.messages) if m["role"] == "assistant"), None)
        if first is None:
            left_out["the trace has no assistant step"] += 1
            continue
        sample = to_chat(t.messages[first:])
        out.append(Item(tid, t.task_key, humans[tid], sample, others[0][2]))
    return out, dict(left_out)


def split_items(found: list[Item], part: str) -> list[Item]:
    """The items of one half of the tasks: whole tasks, seeded, half the *tasks* (not half
    the traces: the bootstrap resamples tasks, so tasks are what the CI is made of)."""
    sides = balanced_split(Counter({i.task_key: 1 for i in found}), HELDOUT_SHARE, SPLIT_SEED)
    want = "heldout" if part == "heldout" else "train"
    return [i for i in found if sides[i.task_key] == want]


# ---------------------------------------------------------------------------------------------
# Statistics: per-task sufficient counts, so one matrix product gives every bootstrap replicate


def task_counts(
    tasks: list[str], passed: np.ndarray, human_score: np.ndarray, grader: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Per task: [a, b, c, d, concordant + ties/2, pairs]: the 2x2 table of grader pass
    (rows) by human pass (columns; a = both pass, d = both fail), and the within-task pairs
    whose human scores differ."""
    keys = sorted(set(tasks))
    index = {k: n for n, k in enumerate(keys)}
    counts = np.zeros((len(keys), 6))
    g_pass = grader >= 0.5
    for n, k in enumerate(tasks):
        counts[index[k], :4] += [
            g_pass[n] and passed[n],
            g_pass[n] and not passed[n],
            not g_pass[n] and passed[n],
            not g_pass[n] and not passed[n],
        ]
    for k, rows in _rows_by(tasks).items():
        h, s = human_score[rows], grader[rows]
        ok = ~np.isnan(h)
        h, s = h[ok], s[ok]
        dh = np.sign(h[:, None] - h[None, :])
        ds = np.sign(s[:, None] - s[None, :])
        upper = np.triu(dh != 0, 1)
        counts[index[k], 4] = ((dh * ds)[upper] > 0).sum() + 0.5 * (ds[upper] == 0).sum()
        counts[index[k], 5] = upper.sum()
    return keys, counts


def _rows_by(tasks: list[str]) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = defaultdict(list)
    for n, k in enumerate(tasks):
        rows[k].append(n)
    return {k: np.array(v) for k, v in rows.items()}


def kappa_of(table: np.ndarray) -> np.ndarray:
    """Cohen's κ from 2x2 tables [..., (a, b, c, d)]; NaN where chance agreement is 1."""
    a, b, c, d = np.moveaxis(table, -1, 0)
    n = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        po = (a + d) / n
        pe = ((a + b) * (a + c) + (c + d) * (b + d)) / n**2
        return np.where(pe < 1 - 1e-12, (po - pe) / (1 - pe), np.nan)


def rank_of(conc_pairs: np.ndarray) -> np.ndarray:
    """Within-task AUC from [..., (concordant + ties/2, pairs)]; NaN with no pairs."""
    conc, pairs = conc_pairs[..., 0], conc_pairs[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, conc / np.maximum(pairs, 1), np.nan)


def _interval(value: float, reps: np.ndarray) -> dict[str, Any]:
    reps = reps[~np.isnan(reps)]
    if np.isnan(value) or not len(reps):
        return {"value": None, "ci_low": None, "ci_high": None}
    low, high = np.percentile(reps, [2.5, 97.5])
    return {"value": float(value), "ci_low": float(low), "ci_high": float(high)}


def agreement(
    tasks: list[str],
    passed: list[int],
    human_score: list[float | None],
    grader: list[float],
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """κ and within-task AUC with task-resampling bootstrap CIs, for one grader's scores."""
    hs = np.array([np.nan if x is None else x for x in human_score], dtype=float)
    keys, counts = task_counts(tasks, np.array(passed, bool), hs, np.array(grader, float))
    total = counts.sum(axis=0)
    weights = np.random.default_rng(seed).multinomial(
        len(keys), np.full(len(keys), 1 / len(keys)), size=n_boot
    )
    reps = weights @ counts
    return {
        "n": len(tasks),
        "n_tasks": len(keys),
        "kappa": _interval(kappa_of(total[:4]), kappa_of(reps[:, :4])),
        "rank": {
            "kind": "auc",
            **_interval(rank_of(total[4:]), rank_of(reps[:, 4:])),
            "n_tasks": int((counts[:, 5] > 0).sum()),
            "pairs": int(total[5]),
        },
    }


def verdict_of(row: dict[str, Any]) -> str | None:
    """Why a row fails the gate, naming the bound (None when it passes)."""
    k, r = row["kappa"], row["rank"]
    if k["ci_low"] is None:
        return f"{row['name']}: Cohen's κ is undefined (every grade or every verdict is the same)"
    if k["ci_low"] < MIN_KAPPA_LOW:
        return (
            f"{row['name']}: Cohen's κ {k['value']:.2f}, 95% CI lower bound "
            f"{k['ci_low']:.2f} < {MIN_KAPPA_LOW}"
        )
    if r["ci_low"] is None:
        return (
            f"{row['name']}: within-task AUC undefined (no task has two checked traces "
            "the judges scored differently)"
        )
    if r["ci_low"] <= MIN_RANK_LOW:
        return (
            f"{row['name']}: within-task AUC {r['value']:.2f}, 95% CI lower bound "
            f"{r['ci_low']:.2f} <= {MIN_RANK_LOW}"
        )
    return None


# ---------------------------------------------------------------------------------------------
# The check


def _row(
    name: str,
    found: list[Item],
    scores: list[float],
    n_boot: int,
    combining: list[str] | None = None,
) -> dict[str, Any]:
    """One line of the table. A grader that gives every checked trace the same score is
    `constant`: the judged traces cannot test it (a format guard), so it neither passes nor
    blocks; the combination (`combining` names its graders) must pass, constant or not."""
    stats = agreement(
        [i.task_key for i in found],
        [i.human.passed for i in found],
        [i.human.score for i in found],
        scores,
        n_boot,
    )
    row: dict[str, Any] = {
        "name": name,
        **stats,
        "mean": float(np.mean(scores)) if scores else None,
    }
    label = f"{name} ({', '.join(combining)})" if combining else name
    constant = len({round(x, 9) for x in scores}) == 1
    if not found:
        row["status"], row["failure"] = "fail", f"{label}: no trace to check it on"
    elif constant and combining is None:
        row["status"], row["failure"] = "constant", None
    elif constant:
        row["status"] = "fail"
        row["failure"] = f"{label}: every checked trace scores {scores[0]:.2f}: no signal"
    else:
        row["failure"] = verdict_of({**row, "name": label})
        row["status"] = "fail" if row["failure"] else "pass"
    return row


def _warnings(per_grader: list[dict[str, Any]], mixed: list[float]) -> list[str]:
    out = [
        f"{r['name']} gives every checked trace {r['mean']:.2f}: the judged traces cannot "
        "test it, so it does not gate"
        for r in per_grader
        if r["status"] == "constant"
    ]
    if mixed and len({round(x, 9) for x in mixed}) > 1 and all(x in (0.0, 1.0) for x in mixed):
        out.append("rewards are all 0 or 1: a sparse reward; consider partial-credit graders")
    return out


def _judged(graders: list[GraderSpec], checked: list[Item], left_out: Counter[str]):
    """Each grader's scores on the items it can judge (the others counted by reason)."""
    scores: dict[str, dict[int, float]] = {}
    for g in graders:
        mine: dict[int, float] = {}
        for i in checked:
            reason = unjudgeable(g.name, i.ref.reference) if g.path is None else None
            if reason:
                left_out[f"{g.name}: {reason}"] += 1
            else:
                mine[i.trace_id] = grade_one(g.name, g.path, i.sample, i.ref.reference)
        scores[g.name] = mine
    return scores


def check(
    session: Session, graders: list[GraderSpec], part: str = "heldout", n_boot: int = N_BOOT
) -> dict[str, Any]:
    """Per grader and combined: κ and within-task AUC with CIs on one half of the tasks
    (`part`: "heldout", which gates, or "dev", to look at while writing a grader)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, not {part!r}")
    found, skipped = items(session)
    checked = split_items(found, part)
    left_out = Counter(skipped)
    scores = _judged(graders, checked, left_out)
    per_grader = [
        _row(
            g.name,
            [i for i in checked if i.trace_id in scores[g.name]],
            list(scores[g.name].values()),
            n_boot,
        )
        for g in graders
    ]
    both = [i for i in checked if all(i.trace_id in scores[g.name] for g in graders)]
    total = sum(g.weight for g in graders)
    mixed = [sum(g.weight * scores[g.name][i.trace_id] for g in graders) / total for i in both]
    comb = _row("combined", both, mixed, n_boot, [g.name for g in graders])
    rows = [*per_grader, comb]
    return {
        "part": part,
        "n": len(both),
        "n_tasks": len({i.task_key for i in both}),
        "graders": [g.as_dict() for g in graders],
        "per_grader": per_grader,
        "combined": comb,
        "ok": all(r["status"] != "fail" for r in rows),
        "failures": [r["failure"] for r in rows if r["failure"]],
        "warnings": _warnings(per_grader, mixed),
        "left_out": dict(left_out),
        "references": {
            str(i.trace_id): {"from_trace": i.ref.trace_id, "source": i.ref.source} for i in checked
        },
        "sources": dict(Counter(i.ref.source for i in checked)),
        "split": {
            "heldout_share": HELDOUT_SHARE,
            "seed": SPLIT_SEED,
            "tasks_with_reference": len({i.task_key for i in found}),
            "tasks_checked": len({i.task_key for i in checked}),
        },
        "thresholds": {"kappa_ci_low_min": MIN_KAPPA_LOW, "rank_ci_low_above": MIN_RANK_LOW},
        "bootstrap": {"replicates": n_boot, "seed": BOOT_SEED, "resample": "tasks", "level": 0.95},
    }
