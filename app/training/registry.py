"""The model registry: base models, candidates (a run's adapter on its base) and the current
promoted model, with lineage. Promotions are an append-only stack: `promote` pushes, `rollback`
pops back to the model that was current before; both are audited.

A finished run registers its candidate under the run's name (`sync_runs`, called by every
reader of the registry, so a run finished while the app was closed shows up too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.runs import sync as sync_run
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import DatasetSnapshot, Promotion, RegisteredModel, TrainingRun


class RegistryError(ChambersError):
    pass


def get_model(session: Session, name: str) -> RegisteredModel:
    m = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if m is None:  # a run that finished since the registry was last read
        sync_runs(session)
        m = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if m is None:
        raise NotFound(f"no registered model named {name!r}")
    return m


def ensure_base(session: Session, path: str | Path) -> RegisteredModel:
    """The base model at `path` (registered on first use, named after its directory)."""
    path = str(Path(path).resolve())
    m = session.scalar(
        select(RegisteredModel).where(RegisteredModel.kind == "base", RegisteredModel.path == path)
    )
    if m is not None:
        return m
    name, n = Path(path).name, 1
    while session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name)):
        n += 1
        name = f"{Path(path).name}-{n}"
    m = RegisteredModel(name=name, kind="base", path=path, lineage={"path": path})
    session.add(m)
    session.flush()
    audit.record(session, "register", "model", m.id, None, name=name, kind="base")
    return m


def _run_lineage(session: Session, run: TrainingRun, base: RegisteredModel) -> dict[str, Any]:
    snap = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
    cfg = run.config or {}
    manifest_path = Path(run.run_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return {
        "parent": base.name,
        "run": {"id": run.id, "name": run.name, "algorithm": run.algorithm},
        "snapshot": {"name": snap.name, "sha256": snap.sha256} if snap else None,
        "rubric_version_ids": cfg.get("rubric_version_ids", []),
        "graders": cfg.get("graders", []),
        "run_config": cfg.get("training", {}),
        "manifest": str(manifest_path) if manifest else None,
        "base_model_sha256": manifest.get("base_model", {}).get("sha256"),
    }


def register_run(session: Session, run: TrainingRun) -> RegisteredModel:
    """The run's candidate (idempotent). Only a finished run with an adapter has one."""
    existing = session.scalar(select(RegisteredModel).where(RegisteredModel.run_id == run.id))
    if existing is not None:
        return existing
    if run.status != "finished":
        raise RegistryError(f"run {run.name!r} is {run.status}; only a finished run has a model")
    adapter = Path(run.run_dir) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise RegistryError(f"run {run.name!r}: no adapter at {adapter}")
    if session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == run.name)):
        raise RegistryError(f"a model named {run.name!r} is registered already")
    base = ensure_base(session, run.base_model)
    m = RegisteredModel(
        name=run.name,
        kind="candidate",
        parent_id=base.id,
        run_id=run.id,
        path=str(adapter.resolve()),
        lineage=_run_lineage(session, run, base),
    )
    session.add(m)
    session.flush()
    audit.record(session, "register", "model", m.id, None, name=m.name, kind="candidate")
    return m


def sync_runs(session: Session) -> list[RegisteredModel]:
    """Register the candidate of every finished run that has none yet."""
    have = set(
        session.scalars(select(RegisteredModel.run_id).where(RegisteredModel.run_id.isnot(None)))
    )
    new = []
    for run in session.scalars(select(TrainingRun).order_by(TrainingRun.id)):
        if run.id in have:
            continue
        if run.status in ("pending", "running"):
            sync_run(session, run)
        adapter = Path(run.run_dir) / "adapter" / "adapter_config.json"
        if run.status == "finished" and adapter.exists():
            try:
                new.append(register_run(session, run))
            except RegistryError:
                continue  # a name clash: the user registers it by hand
    return new


# ---------------------------------------------------------------------------------------------
# Promotion history


def history(session: Session) -> list[Promotion]:
    return list(session.scalars(select(Promotion).order_by(Promotion.id)))


def promoted_stack(session: Session) -> list[int]:
    """Model ids, oldest first; the last is current. Rollback pops one."""
    stack: list[int] = []
    for p in history(session):
        if p.action == "promote":
            stack.append(p.model_id)
        elif stack:
            stack.pop()
    return stack


def current(session: Session) -> RegisteredModel | None:
    stack = promoted_stack(session)
    return session.get(RegisteredModel, stack[-1]) if stack else None


def record_promotion(
    session: Session,
    model: RegisteredModel,
    actor: str,
    reason: str,
    forced: bool,
    gate: dict[str, Any],
) -> Promotion:
    p = Promotion(
        model_id=model.id, action="promote", actor=actor, reason=reason, forced=forced, gate=gate
    )
    session.add(p)
    session.flush()
    audit.record(
        session,
        "force_promote" if forced else "promote",
        "model",
        model.id,
        None,
        name=model.name,
        actor=actor,
        reason=reason,
        gate_passed=gate.get("passed"),
        failed=[c["name"] for c in gate.get("conditions", []) if not c["passed"]],
    )
    return p


def rollback(
    session: Session, actor: str, reason: str = ""
) -> tuple[RegisteredModel, RegisteredModel]:
    """Make the previously promoted model current again; returns (left, now current)."""
    stack = promoted_stack(session)
    if len(stack) < 2:
        raise RegistryError(
            "nothing to roll back to: "
            + ("no model has been promoted" if not stack else "only one model was ever promoted")
        )
    left, back = session.get(RegisteredModel, stack[-1]), session.get(RegisteredModel, stack[-2])
    session.add(Promotion(model_id=back.id, action="rollback", actor=actor, reason=reason))
    session.flush()
    audit.record(
        session,
        "rollback",
        "model",
        back.id,
        None,
        left=left.name,
        now=back.name,
        actor=actor,
        reason=reason,
    )
    return left, back


def list_models(session: Session) -> list[dict[str, Any]]:
    sync_runs(session)
    cur = current(session)
    promoted = set(promoted_stack(session)) | {
        p.model_id for p in history(session) if p.action == "promote"
    }
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    out = []
    for m in session.scalars(select(RegisteredModel).order_by(RegisteredModel.id)):
        out.append(
            {
                "id": m.id,
                "name": m.name,
                "kind": m.kind,
                "parent": names.get(m.parent_id),
                "run_id": m.run_id,
                "path": m.path,
                "current": cur is not None and cur.id == m.id,
                "ever_promoted": m.id in promoted,
                "created_at": m.created_at,
            }
        )
    return out


def tree(session: Session) -> list[tuple[int, dict[str, Any]]]:
    """The lineage as (depth, row) in depth-first order: each base, then its candidates."""
    rows = list_models(session)
    children: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r)
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(name: str | None, depth: int) -> None:
        for r in children.get(name, []):
            out.append((depth, r))
            walk(r["name"], depth + 1)

    walk(None, 0)
    return out
