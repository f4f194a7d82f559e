"""The promotion gate: a written rule per workspace, checked against a candidate's newest
finished evaluation and the newest comparison round on it. Every condition is reported with
its measured value; no evaluation or no verdicts fails.

The rule (defaults below) is stored in `gate_rules` (newest row in force) and shown with every
result, so a promotion's record says which rule it passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.comparison import results as comparison_results
from app.training.evaluation import sync as sync_eval
from app.training.registry import RegistryError, current, record_promotion
from app.training.runs import verify_manifest
from app.workspace import audit
from app.workspace.errors import ChambersError
from app.workspace.models import (
    ComparisonRound,
    Evaluation,
    GateRule,
    RegisteredModel,
    TrainingRun,
)

DEFAULT_RULE: dict[str, Any] = {
    "min_win_rate_low": 0.5,  # the candidate's win-rate interval lies above this
    "max_grader_regression": 0.05,  # no grader's mean drops by more than this
    "min_alpha": 0.4,  # judges' agreement on the pairwise verdicts
    "manifest_verified": True,  # the run's artifacts and base model hash as recorded
    "no_reward_hacking": True,  # graders up while judges are not: refused
}


class GateFailed(ChambersError):
    pass


def get_rule(session: Session) -> dict[str, Any]:
    row = session.scalar(select(GateRule).order_by(GateRule.id.desc()).limit(1))
    return {**DEFAULT_RULE, **(row.rule if row else {})}


def set_rule(session: Session, changes: dict[str, Any], actor: str) -> dict[str, Any]:
    unknown = set(changes) - set(DEFAULT_RULE)
    if unknown:
        raise ChambersError(
            f"unknown gate settings: {', '.join(sorted(unknown))} (known: {', '.join(DEFAULT_RULE)})"
        )
    rule = {**get_rule(session), **changes}
    session.add(GateRule(rule=rule, actor=actor))
    session.flush()
    audit.record(session, "set", "gate_rule", None, None, actor=actor, rule=rule)
    return rule


def describe(rule: dict[str, Any]) -> str:
    parts = [
        f"win-rate CI lower bound > {rule['min_win_rate_low']}",
        f"no grader regression beyond {rule['max_grader_regression']}",
        f"pairwise agreement alpha >= {rule['min_alpha']}",
    ]
    if rule["manifest_verified"]:
        parts.append("manifest verified")
    if rule["no_reward_hacking"]:
        parts.append("no reward-hacking flag")
    return "; ".join(parts)


def latest_evidence(
    session: Session, model: RegisteredModel
) -> tuple[Evaluation | None, ComparisonRound | None]:
    evs = list(
        session.scalars(
            select(Evaluation)
            .where(Evaluation.candidate_id == model.id)
            .order_by(Evaluation.id.desc())
        )
    )
    for ev in evs:
        sync_eval(session, ev)
    evs = [e for e in evs if e.status == "finished"]
    if not evs:
        return None, None
    for ev in evs:
        rnd = session.scalar(
            select(ComparisonRound)
            .where(ComparisonRound.evaluation_id == ev.id)
            .order_by(ComparisonRound.id.desc())
            .limit(1)
        )
        if rnd is not None:
            return ev, rnd
    return evs[0], None


def check(session: Session, model: RegisteredModel) -> dict[str, Any]:
    rule = get_rule(session)
    out: dict[str, Any] = {"model": model.name, "rule": rule, "rule_text": describe(rule)}
    conds: list[dict[str, Any]] = []

    def cond(name: str, passed: bool, detail: str) -> None:
        conds.append({"name": name, "passed": bool(passed), "detail": detail})

    out["conditions"] = conds
    if model.kind != "candidate":
        cond("candidate", False, "only a candidate (a run's adapter) can be promoted")
        out["passed"] = False
        return out
    ev, rnd = latest_evidence(session, model)
    cond("evaluation", ev is not None, ev.name if ev else "no finished evaluation of this model")
    res = comparison_results(session, rnd) if rnd is not None else None
    has_verdicts = bool(res and res["verdicts"])
    cond(
        "comparison",
        has_verdicts,
        f"round {rnd.name}: {res['verdicts']} verdicts" if rnd else "no comparison round",
    )
    if ev is not None:
        out["evaluation"] = ev.name
        worst = [
            (g, d["difference"]["value"])
            for g, d in ev.summary.get("graders", {}).items()
            if d["difference"]["value"] is not None
        ]
        bad = [(g, x) for g, x in worst if x < -rule["max_grader_regression"]]
        cond(
            "grader_regression",
            not bad and bool(worst),
            ", ".join(f"{g} {x:+.3f}" for g, x in worst) or "no grader results",
        )
    if has_verdicts:
        out["comparison"] = res
        wr = res["win_rate"]
        cond(
            "win_rate",
            wr["low"] is not None and wr["low"] > rule["min_win_rate_low"],
            f"win rate {wr['value']:.3f} [{wr['low']:.3f}, {wr['high']:.3f}]",
        )
        a = res["alpha"]
        cond(
            "agreement",
            a is not None and a["value"] is not None and a["value"] >= rule["min_alpha"],
            (a or {}).get("note") or "alpha undefined (fewer than two judges per item)"
            if not a or a["value"] is None
            else f"alpha {a['value']:.3f}",
        )
        if rule["no_reward_hacking"]:
            rh = res["reward_hacking"]
            cond("reward_hacking", not rh["flagged"], rh["reason"])
    if rule["manifest_verified"]:
        run = session.get(TrainingRun, model.run_id) if model.run_id else None
        if run is None or not (Path(run.run_dir) / "manifest.json").exists():
            cond("manifest", False, "no run manifest")
        else:
            ok, problems = verify_manifest(run.run_dir)
            cond("manifest", ok, "verified" if ok else "; ".join(problems[:3]))
    out["passed"] = all(c["passed"] for c in conds)
    return out


def promote(
    session: Session, model: RegisteredModel, actor: str, reason: str = "", force: bool = False
) -> dict[str, Any]:
    """Promote if the gate passes; --force needs a reason and is audited as forced."""
    result = check(session, model)
    if force and not reason.strip():
        raise GateFailed("--force needs a --reason (it goes in the audit log)")
    if not result["passed"] and not force:
        failed = [c for c in result["conditions"] if not c["passed"]]
        raise GateFailed(
            f"{model.name} fails the promotion gate ({result['rule_text']}): "
            + "; ".join(f"{c['name']}: {c['detail']}" for c in failed)
        )
    cur = current(session)
    if cur is not None and cur.id == model.id:
        raise RegistryError(f"{model.name} is the current model already")
    record_promotion(session, model, actor, reason, force and not result["passed"], result)
    return result
