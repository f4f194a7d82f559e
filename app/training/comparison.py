"""Blind A/B comparison rounds over an evaluation's outputs.

Each item (one prompt, the baseline's and the candidate's output) goes to k distinct judges,
least-loaded first, like review rounds. Which model is shown as A is drawn per item and per
judge with the round's seed and stored (`a_side`); the judge's view carries only the prompt and
the two outputs, never a model, run or score. Verdicts are A, B or tie, with an optional choice
per rubric criterion and a rationale.

Results: the candidate's win rate (ties as half) and tie share with intervals over items;
Krippendorff's alpha (nominal) on the model-resolved verdicts from the agreement engine;
position bias (share of A among decided verdicts); Bradley-Terry strengths across rounds when
more than two models were compared; and the reward-hacking watch (graders improved on these
items, judges did not).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.training import evalstats
from app.training.evaluation import get_eval, outputs, summarize
from app.training.rules import pair_hash
from app.training.steps import to_chat
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import (
    ComparisonRound,
    ComparisonVerdict,
    EvalItem,
    Evaluation,
    PreferencePair,
    RegisteredModel,
)

CHOICES = ("A", "B", "tie")


class ComparisonError(ChambersError):
    pass


def create_round(
    session: Session,
    name: str,
    eval_key: str,
    judge_ids: list[int],
    k: int,
    seed: int = 0,
    created_by: int | None = None,
) -> ComparisonRound:
    ev = get_eval(session, eval_key)
    if ev.status != "finished":
        raise ComparisonError(f"evaluation {ev.name!r} is {ev.status}; compare a finished one")
    if not judge_ids or len(set(judge_ids)) != len(judge_ids):
        raise ComparisonError("choose at least one judge, each once")
    if not 1 <= k <= len(judge_ids):
        raise ComparisonError(f"k must be between 1 and the number of judges ({len(judge_ids)})")
    if session.scalar(select(ComparisonRound.id).where(ComparisonRound.name == name)):
        raise ComparisonError(f"a comparison round named {name!r} exists already")
    items = sorted(i for i, o in outputs(session, ev).items() if len(o) == 2)
    if not items:
        raise ComparisonError(f"evaluation {ev.name!r} has no item with both outputs")
    rnd = ComparisonRound(name=name, evaluation_id=ev.id, k=k, seed=seed, created_by=created_by)
    session.add(rnd)
    session.flush()
    rng = random.Random(seed)
    load = dict.fromkeys(judge_ids, 0)
    queues: dict[int, list[tuple[int, str]]] = {j: [] for j in judge_ids}
    for item in items:
        for j in sorted(judge_ids, key=lambda j: (load[j], rng.random()))[:k]:
            load[j] += 1
            queues[j].append((item, rng.choice(("baseline", "candidate"))))
    for j, queue in queues.items():
        rng.shuffle(queue)
        for pos, (item, a_side) in enumerate(queue):
            session.add(
                ComparisonVerdict(
                    round_id=rnd.id, item_id=item, judge_id=j, position=pos, a_side=a_side
                )
            )
    session.flush()
    audit.record(
        session,
        "create",
        "comparison_round",
        rnd.id,
        created_by,
        name=name,
        evaluation=ev.name,
        k=k,
        judges=judge_ids,
        items=len(items),
    )
    return rnd


def get_round(session: Session, name: str) -> ComparisonRound:
    rnd = session.scalar(select(ComparisonRound).where(ComparisonRound.name == name))
    if rnd is None:
        raise NotFound(f"no comparison round named {name!r}")
    return rnd


def queue(session: Session, round_id: int, judge_id: int) -> list[ComparisonVerdict]:
    return list(
        session.scalars(
            select(ComparisonVerdict)
            .where(ComparisonVerdict.round_id == round_id, ComparisonVerdict.judge_id == judge_id)
            .order_by(ComparisonVerdict.position)
        )
    )


def judged_count(session: Session, round_id: int, judge_id: int) -> int:
    """How many of the judge's items in the round have a choice."""
    return session.scalar(
        select(func.count()).where(
            ComparisonVerdict.round_id == round_id,
            ComparisonVerdict.judge_id == judge_id,
            ComparisonVerdict.choice.is_not(None),
        )
    )


def rounds_for(session: Session, judge_id: int) -> list[ComparisonRound]:
    ids = set(
        session.scalars(
            select(ComparisonVerdict.round_id).where(ComparisonVerdict.judge_id == judge_id)
        )
    )
    return list(
        session.scalars(
            select(ComparisonRound)
            .where(ComparisonRound.id.in_(ids or {0}))
            .order_by(ComparisonRound.id)
        )
    )


def blind_item(session: Session, verdict: ComparisonVerdict) -> dict[str, Any]:
    """What the judge sees: the prompt and outputs A and B (internal messages). Nothing else."""
    item = session.get(EvalItem, verdict.item_id)
    outs = {
        o.side: o
        for o in outputs(session, session.get(Evaluation, item.evaluation_id))[item.id].values()
    }
    b_side = "candidate" if verdict.a_side == "baseline" else "baseline"
    return {
        "prompt": item.prompt,
        "tools": item.tools,
        "A": outs[verdict.a_side].message,
        "B": outs[b_side].message,
        "A_text": outs[verdict.a_side].text,
        "B_text": outs[b_side].text,
    }


def submit(
    session: Session,
    verdict: ComparisonVerdict,
    choice: str,
    criteria: dict[str, str] | None = None,
    rationale: str = "",
) -> ComparisonVerdict:
    if choice not in CHOICES:
        raise ComparisonError(f"a verdict is one of {', '.join(CHOICES)}, not {choice!r}")
    bad = {c: v for c, v in (criteria or {}).items() if v not in CHOICES}
    if bad:
        raise ComparisonError(f"criterion verdicts must be A, B or tie: {bad}")
    verdict.choice = choice
    verdict.criteria = dict(criteria or {})
    verdict.rationale = rationale
    verdict.submitted_at = datetime.now(UTC)
    session.flush()
    return verdict


def winner(v: ComparisonVerdict) -> str:
    """The model-resolved verdict: 'candidate', 'baseline' or 'tie'."""
    if v.choice == "tie":
        return "tie"
    b_side = "candidate" if v.a_side == "baseline" else "baseline"
    return v.a_side if v.choice == "A" else b_side


def submitted(session: Session, round_id: int) -> list[ComparisonVerdict]:
    return list(
        session.scalars(
            select(ComparisonVerdict)
            .where(ComparisonVerdict.round_id == round_id, ComparisonVerdict.choice.isnot(None))
            .order_by(ComparisonVerdict.id)
        )
    )


def results(session: Session, rnd: ComparisonRound) -> dict[str, Any]:
    from app.agreement.coefficients import Ratings, compute

    verdicts = submitted(session, rnd.id)
    total = len(
        list(
            session.scalars(
                select(ComparisonVerdict.id).where(ComparisonVerdict.round_id == rnd.id)
            )
        )
    )
    per: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for v in verdicts:
        w, d = winner(v), per[v.item_id]
        d["n"] += 1
        d["win"] += {"candidate": 1.0, "tie": 0.5}.get(w, 0.0)
        d["tie"] += w == "tie"
        d["decided"] += w != "tie"
        d["A"] += v.choice == "A"
    items = sorted(per)
    col = lambda k: [per[i][k] for i in items]  # noqa: E731
    seed = rnd.seed
    out: dict[str, Any] = {
        "round": rnd.name,
        "verdicts": len(verdicts),
        "assigned": total,
        "items": len(items),
        "win_rate": evalstats.ratio_ci(col("win"), col("n"), seed=seed).as_dict(),
        "tie_share": evalstats.ratio_ci(col("tie"), col("n"), seed=seed).as_dict(),
        "position_bias_A": evalstats.ratio_ci(col("A"), col("decided"), seed=seed).as_dict(),
    }
    rows = [(v.item_id, v.judge_id, winner(v)) for v in verdicts]
    alpha = None
    if rows and len({r[1] for r in rows}) > 1:
        res = compute(
            Ratings.from_long(rows, "nominal", ["baseline", "candidate", "tie"]),
            n_boot=500,
            seed=seed,
            pairs=False,
        )
        alpha = res.alpha.as_dict()
    out["alpha"] = alpha
    out["reward_hacking"] = reward_hacking(session, rnd, out["win_rate"], set(items))
    return out


def reward_hacking(
    session: Session, rnd: ComparisonRound, win_rate: dict[str, Any], items: set[int]
) -> dict[str, Any]:
    """Graders say the candidate improved (paired difference CI above 0 on the judged items)
    while the judges do not prefer it (win rate <= 0.5 on the same items): flagged."""
    ev = session.get(Evaluation, rnd.evaluation_id)
    if not items or win_rate.get("value") is None:
        return {"flagged": False, "reason": "no verdicts yet"}
    diff = summarize(session, ev, items)["difference"]
    graders_up = diff["low"] is not None and diff["low"] > 0
    judges_up = win_rate["value"] > 0.5
    flagged = graders_up and not judges_up
    reason = (
        f"graders: candidate - baseline {diff['value']:+.3f} (CI low {diff['low']:.3f}); "
        f"judges' win rate {win_rate['value']:.3f} on the same {len(items)} items"
    )
    return {"flagged": flagged, "reason": reason, "grader_difference": diff}


def strengths(session: Session) -> dict[str, Any] | None:
    """Bradley-Terry strengths over every comparison round, when more than two models met."""
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    evs = {e.id: e for e in session.scalars(select(Evaluation))}
    rows = []
    for rnd in session.scalars(select(ComparisonRound)):
        ev = evs[rnd.evaluation_id]
        cand, base = names[ev.candidate_id], names[ev.baseline_id]
        for v in submitted(session, rnd.id):
            s = {"candidate": 1.0, "tie": 0.5}.get(winner(v), 0.0)
            rows.append((v.item_id, cand, base, s))
    if len({r[1] for r in rows} | {r[2] for r in rows}) <= 2:
        return None
    return {m: e.as_dict() for m, e in evalstats.bradley_terry(rows).items()}


def to_pairs(session: Session, rnd: ComparisonRound) -> int:
    """Each item's majority verdict (ties abstain; a split vote makes no pair) -> a preference
    pair (chosen = the preferred output) with provenance naming the round, the verdicts and
    their judges; idempotent through the pairs' content hash."""
    ev = session.get(Evaluation, rnd.evaluation_id)
    outs = outputs(session, ev)
    votes: dict[int, dict[str, list[ComparisonVerdict]]] = defaultdict(lambda: defaultdict(list))
    for v in submitted(session, rnd.id):
        if winner(v) != "tie":
            votes[v.item_id][winner(v)].append(v)
    known = set(session.scalars(select(PreferencePair.content_hash)))
    n = 0
    for item_id, by in sorted(votes.items()):
        ranked = sorted(by.items(), key=lambda kv: -len(kv[1]))
        if len(ranked) > 1 and len(ranked[0][1]) == len(ranked[1][1]):
            continue
        w, vs = ranked[0]
        item = session.get(EvalItem, item_id)
        loser = "baseline" if w == "candidate" else "candidate"
        chosen = to_chat([outs[item_id][w].message])
        rejected = to_chat([outs[item_id][loser].message])
        tools = list(item.tools or [])
        h = pair_hash(item.prompt, chosen, rejected, tools)
        if h in known:
            continue
        known.add(h)
        session.add(
            PreferencePair(
                rule="comparison",
                prompt=item.prompt,
                chosen=chosen,
                rejected=rejected,
                task_key=item.task_key,
                provenance={
                    "rule": "comparison",
                    "comparison_round": rnd.name,
                    "evaluation": ev.name,
                    "item_id": item_id,
                    "verdict_ids": [v.id for v in vs],
                    "judge_ids": [v.judge_id for v in vs],
                    "votes": {k: len(x) for k, x in by.items()},
                    "trace_ids": item.source.get("trace_ids", []),
                    "tools": tools,
                    "rationales": [v.rationale for v in vs if v.rationale],
                    "created_at": datetime.now(UTC).isoformat(),
                },
                content_hash=h,
            )
        )
        n += 1
    session.flush()
    return n


def rubric_versions_of(session: Session, round_id: int) -> list[int]:
    """The rubric versions behind the candidate's training data (for per-criterion choices)."""
    rnd = session.get(ComparisonRound, round_id)
    ev = session.get(Evaluation, rnd.evaluation_id)
    model = session.get(RegisteredModel, ev.candidate_id)
    return list(model.lineage.get("rubric_version_ids") or [])
