"""What a registered model is and how it got here (`models show`, the Models screen), and its
export through the trainer process (the ML stack never loads in the app)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.training import gate
from app.training.comparison import results as comparison_results
from app.training.comparison import strengths
from app.training.evaluation import show as show_eval
from app.training.evaluation import sync as sync_eval
from app.training.registry import RegistryError, current, history, sync_runs
from app.training.runs import trainer_env
from app.workspace.models import AuditEntry, ComparisonRound, Evaluation, RegisteredModel


def registry_stamp(session: Session) -> tuple[Any, ...]:
    """Changes whenever the Models screen would. Runs and evaluations that finished elsewhere
    are synced first (registered, outputs stored); every registration, promotion, rollback
    and comparison verdict is audited, so the newest audit entry covers the rest."""
    sync_runs(session)
    for ev in session.scalars(
        select(Evaluation).where(Evaluation.status.in_(("pending", "running")))
    ):
        sync_eval(session, ev)
    statuses = session.execute(select(Evaluation.id, Evaluation.status).order_by(Evaluation.id))
    return session.scalar(select(func.max(AuditEntry.id))), tuple(map(tuple, statuses))


def reward_hacking_flagged(session: Session, model_id: int) -> bool:
    """The reward-hacking watch alone, for a list of models (no evaluations shown, no sync)."""
    rounds = session.scalars(
        select(ComparisonRound)
        .join(Evaluation, ComparisonRound.evaluation_id == Evaluation.id)
        .where((Evaluation.candidate_id == model_id) | (Evaluation.baseline_id == model_id))
    )
    return any(comparison_results(session, r)["reward_hacking"]["flagged"] for r in rounds)


def show_model(session: Session, model: RegisteredModel) -> dict[str, Any]:
    sync_runs(session)
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    evals, comparisons = [], []
    for ev in session.scalars(
        select(Evaluation)
        .where((Evaluation.candidate_id == model.id) | (Evaluation.baseline_id == model.id))
        .order_by(Evaluation.id)
    ):
        evals.append(show_eval(session, ev))
        for rnd in session.scalars(
            select(ComparisonRound).where(ComparisonRound.evaluation_id == ev.id)
        ):
            comparisons.append({"evaluation": ev.name, **comparison_results(session, rnd)})
    cur = current(session)
    info: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "kind": model.kind,
        "parent": names.get(model.parent_id),
        "path": model.path,
        "current": cur is not None and cur.id == model.id,
        "lineage": model.lineage,
        "evaluations": evals,
        "comparisons": comparisons,
        "reward_hacking": any(c["reward_hacking"]["flagged"] for c in comparisons),
        "bradley_terry": strengths(session) if comparisons else None,
        "promotions": [
            {
                "action": p.action,
                "actor": p.actor,
                "reason": p.reason,
                "forced": p.forced,
                "at": p.at,
                "gate_passed": p.gate.get("passed"),
            }
            for p in history(session)
            if p.model_id == model.id
        ],
    }
    if model.kind == "candidate":
        info["gate"] = gate.check(session, model)
    return info


def export_model(session: Session, model: RegisteredModel, mode: str, out: Path) -> dict[str, Any]:
    """Run `python -m trainer export` on a job file; returns what it reports."""
    if model.kind != "candidate":
        raise RegistryError(f"{model.name} is a base model: its files are at {model.path}")
    if mode not in ("merged", "adapter"):
        raise RegistryError("export mode is merged or adapter")
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RegistryError(f"{out}: exists and is not an empty directory")
    parent = session.get(RegisteredModel, model.parent_id)
    lineage = {
        "name": model.name,
        "parent": {"name": parent.name, "path": parent.path},
        **model.lineage,
        "promotions": [
            {"action": p.action, "actor": p.actor, "reason": p.reason, "at": str(p.at)}
            for p in history(session)
            if p.model_id == model.id
        ],
        "evaluations": [
            {"name": e.name, **{k: e.summary.get(k) for k in ("n_items", "difference")}}
            for e in session.scalars(select(Evaluation).where(Evaluation.candidate_id == model.id))
        ],
    }
    job = {
        "mode": mode,
        "base": parent.path,
        "adapter": model.path,
        "out": str(out),
        "lineage": lineage,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f, default=str)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "trainer", "export", f.name],
            capture_output=True,
            text=True,
            env=trainer_env(),
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RegistryError((proc.stderr.strip().splitlines() or ["export failed"])[-1])
    return {"model": model.name, "mode": mode, "out": str(out)}


def reward_hacking_note(session: Session, run_id: int) -> str | None:
    """The watch's message for a run's candidate, if any comparison flags it (Runs screen)."""
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.run_id == run_id))
    if model is None:
        return None
    for ev in session.scalars(select(Evaluation).where(Evaluation.candidate_id == model.id)):
        for rnd in session.scalars(
            select(ComparisonRound).where(ComparisonRound.evaluation_id == ev.id)
        ):
            rh = comparison_results(session, rnd)["reward_hacking"]
            if rh["flagged"]:
                return f"Reward-hacking watch ({rnd.name}): {rh['reason']}"
    return None
