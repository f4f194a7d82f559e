"""Training runs: prepared here, executed by the trainer process, watched through files.

A run directory holds everything about one run:

    config.json        the full configuration the trainer reads
    data/train.jsonl   the snapshot's pairs (TRL conversational format), train split
    data/heldout.jsonl …and held-out split (evaluation)
    events.jsonl       JSON lines the trainer appends: start, log, evaluate, checkpoint,
                       finished | failed | cancelled
    stdout.log         the trainer's console output
    checkpoints/       Trainer checkpoints (the last one stays usable after a cancel)
    adapter/           the final LoRA adapter
    manifest.json      lineage: base model hashes, snapshot, rubric and grader versions,
                       config, library versions, metrics history, artifact sha256s

The trainer runs in its own process group (start_new_session), so closing the app never
kills it; the app reattaches by reading events.jsonl. app/ never imports the ML stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.graders import GraderSpec, combined
from app.training.graders import parse as parse_graders
from app.training.pairs import export_bytes, get_snapshot, snapshot_rows, to_chat
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import Adjudication, DatasetSnapshot, Review, Trace, TrainingRun
from app.workspace.paths import write_atomic

FINAL_EVENTS = ("finished", "failed", "cancelled")
MIN_GRADER_KAPPA = 0.4


class RunError(ChambersError):
    pass


def trainer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_DATASETS_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------------------------------
# Defaults


def model_size(model_dir: Path) -> int:
    """Approximate parameter count from config.json (for sane defaults)."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise RunError(
            f"{model_dir}: not a Hugging Face model directory (config.json: {exc})"
        ) from None
    h = cfg.get("hidden_size", 0)
    n = cfg.get("num_hidden_layers", 0)
    v = cfg.get("vocab_size", 0)
    inter = cfg.get("intermediate_size", 4 * h)
    return int(n * (4 * h * h + 3 * h * inter) + v * h)


def default_config(algorithm: str, n_params: int) -> dict[str, Any]:
    """Per model size: tiny models learn fast; large ones need small steps and low rank."""
    if n_params < 50e6:
        lr, r, batch, accum, max_len = 5e-4, 8, 4, 1, 512
    elif n_params < 2e9:
        lr, r, batch, accum, max_len = 2e-5, 16, 2, 8, 2048
    else:
        lr, r, batch, accum, max_len = 5e-6, 16, 1, 16, 4096
    cfg: dict[str, Any] = {
        "learning_rate": lr,
        "num_train_epochs": 1.0,
        "max_steps": -1,
        "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": accum,
        "lora_r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.05,
        "lora_target_modules": "all-linear",
        "gradient_checkpointing": n_params >= 50e6,
        "logging_steps": 1,
        "save_steps": 50,
        "seed": 0,
    }
    if algorithm == "dpo":
        cfg.update({"beta": 0.1, "loss_type": "sigmoid", "max_length": max_len})
    else:
        cfg.update(
            {
                "beta": 0.0,
                "loss_type": "dapo",
                "num_generations": 4,
                "max_completion_length": 64 if n_params < 50e6 else 512,
                "per_device_train_batch_size": max(batch, 4),
            }
        )
    return cfg


# ---------------------------------------------------------------------------------------------
# Grader validation (before GRPO): do the graders agree with the judges?


def _references(session: Session) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
    """Per reviewed trace: a reference and the humans' verdict (1 = acceptable as is).

    Verdict: gold if adjudicated, else the judges' majority decision (approve = 1). Reference:
    the corrected answer written for this trace if any (so the agent's own output is graded
    against what a judge says it should have been); else an approved or corrected answer of
    another trace with the same task (leave-one-out). Approved traces with no other trace of
    their task have no independent reference and are left out."""
    reviews = list(session.scalars(select(Review).where(Review.status == "submitted")))
    gold = {a.trace_id: a for a in session.scalars(select(Adjudication))}
    by_trace: dict[int, list[Review]] = defaultdict(list)
    for r in reviews:
        by_trace[r.trace_id].append(r)
    traces = {t.id: t for t in session.scalars(select(Trace).where(Trace.id.in_(by_trace or [0])))}
    verdict: dict[int, int] = {}
    own_ref: dict[int, str] = {}
    for tid, rs in by_trace.items():
        g = gold.get(tid)
        decision = g.decision if g else Counter(r.decision for r in rs).most_common(1)[0][0]
        verdict[tid] = int(decision == "approve")
        fixes = [x.corrected_output for x in ([g] if g else []) + rs if x and x.corrected_output]
        if fixes:
            own_ref[tid] = fixes[0]
    good_by_task: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for tid, t in traces.items():
        if t.task_key:
            if verdict[tid] == 1 and t.final_output:
                good_by_task[t.task_key].append((tid, t.final_output))
            elif tid in own_ref:
                good_by_task[t.task_key].append((tid, own_ref[tid]))
    refs: dict[int, dict[str, Any]] = {}
    for tid, t in traces.items():
        answer = own_ref.get(tid)
        if answer is None:
            others = [a for o, a in good_by_task.get(t.task_key or "", []) if o != tid]
            answer = others[0] if others else None
        if answer is None:
            continue
        calls = [
            p["name"]
            for m in t.messages
            if m["role"] == "assistant"
            for p in m["parts"]
            if p.get("type") == "tool_call"
        ]
        refs[tid] = {"answer": answer, "tool_calls": calls if verdict[tid] == 1 else []}
    return refs, verdict


def validate_graders(session: Session, graders: list[GraderSpec]) -> dict[str, Any]:
    """Grade the agent's output of every reviewed trace that has a reference; compare with
    the humans (score >= 0.5 counts as acceptable) through the agreement engine."""
    from app.agreement.coefficients import Ratings, compute

    refs, verdict = _references(session)
    traces = {t.id: t for t in session.scalars(select(Trace).where(Trace.id.in_(refs or [0])))}
    scores, rows = [], []
    for tid, ref in refs.items():
        t = traces[tid]
        first = next(
            (i for i, m in enumerate(t.messages) if m["role"] == "assistant"), len(t.messages)
        )
        sample = to_chat(t.messages[first:])
        score, _parts = combined(graders, sample, ref)
        scores.append(score)
        rows += [(tid, "grader", int(score >= 0.5)), (tid, "humans", verdict[tid])]
    out: dict[str, Any] = {"n": len(scores), "graders": [g.as_dict() for g in graders]}
    if not scores:
        out.update(
            {"ok": False, "warnings": ["no reviewed trace has a reference answer to grade against"]}
        )
        return out
    hist = Counter(min(int(s * 10), 9) for s in scores)
    out["histogram"] = [hist.get(i, 0) for i in range(10)]  # bins of 0.1
    out["mean"] = sum(scores) / len(scores)
    warnings = []
    if len({round(s, 6) for s in scores}) == 1:
        warnings.append(f"every trace gets the same score ({scores[0]:.3f}): no learning signal")
    elif all(s in (0.0, 1.0) for s in scores):
        warnings.append("scores are all 0 or 1: a sparse reward; consider partial-credit graders")
    res = compute(Ratings.from_long(rows, "nominal", [0, 1]), n_boot=500, seed=0)
    kappa = res.coefficients["cohen_kappa"]
    out["agreement"] = {
        "cohen_kappa": kappa.as_dict(),
        "percent_agreement": res.coefficients["percent_agreement"].as_dict(),
        "krippendorff_alpha": res.alpha.as_dict(),
    }
    if kappa.value is None or kappa.value < MIN_GRADER_KAPPA:
        shown = "undefined" if kappa.value is None else f"{kappa.value:.2f}"
        warnings.append(
            f"the graders disagree with the judges (Cohen's κ {shown} < "
            f"{MIN_GRADER_KAPPA}); do not train on them"
        )
        out["ok"] = False
    else:
        out["ok"] = True
    out["warnings"] = warnings
    return out


# ---------------------------------------------------------------------------------------------
# Preparing and launching


def prepare_run(
    session: Session,
    algorithm: str,
    snapshot: str,
    model_dir: Path,
    run_dir: Path,
    overrides: dict[str, Any] | None = None,
    graders: list[GraderSpec] | None = None,
    name: str | None = None,
    force: bool = False,
) -> TrainingRun:
    if algorithm not in ("dpo", "grpo"):
        raise RunError("algorithm must be dpo or grpo")
    model_dir = model_dir.resolve()
    n_params = model_size(model_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunError(f"{run_dir}: the run directory exists and is not empty")
    name = name or run_dir.name
    if session.scalar(select(TrainingRun.id).where(TrainingRun.name == name)):
        raise RunError(f"a run named {name!r} exists already")
    snap = get_snapshot(session, snapshot)
    rows = snapshot_rows(session, snap)
    cfg = default_config(algorithm, n_params)
    unknown = set(overrides or {}) - set(cfg) - {"max_steps"}
    if unknown:
        raise RunError(f"unknown options: {', '.join(sorted(unknown))}")
    cfg.update(overrides or {})
    validation = None
    if algorithm == "grpo":
        graders = graders or parse_graders(["match:1.0"])
        validation = validate_graders(session, graders)
        if not validation["ok"] and not force:
            raise RunError(
                "grader check failed: "
                + "; ".join(validation["warnings"])
                + " (--force to train anyway)"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "data"
    train = [(p, s) for p, s in rows if s == "train"]
    held = [(p, s) for p, s in rows if s == "heldout"]
    if not train:
        raise RunError(f"snapshot {snapshot!r} has no training pairs")
    sha_train = write_atomic(data / "train.jsonl", export_bytes(train, "trl"))
    sha_held = write_atomic(data / "heldout.jsonl", export_bytes(held, "trl"))
    config = {
        "algorithm": algorithm,
        "name": name,
        "base_model": str(model_dir),
        "run_dir": str(run_dir.resolve()),
        "train_file": str((data / "train.jsonl").resolve()),
        "eval_file": str((data / "heldout.jsonl").resolve()) if held else None,
        "snapshot": {
            "id": snap.id,
            "name": snap.name,
            "sha256": snap.sha256,
            "pairs": len(rows),
            "train_sha256": sha_train,
            "heldout_sha256": sha_held,
        },
        "rubric_version_ids": snap.manifest.get("rubric_version_ids", []),
        "review_ids": snap.manifest.get("review_ids", []),
        "graders": [g.as_dict() for g in graders or []],
        "grader_check": validation,
        "training": cfg,
    }
    write_atomic(run_dir / "config.json", json.dumps(config, indent=2).encode())
    run = TrainingRun(
        name=name,
        algorithm=algorithm,
        snapshot_id=snap.id,
        base_model=str(model_dir),
        config=config,
        run_dir=str(run_dir.resolve()),
        status="pending",
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        "create",
        "training_run",
        run.id,
        None,
        name=name,
        algorithm=algorithm,
        snapshot=snap.name,
    )
    return run


def trainer_command(run: TrainingRun) -> list[str]:
    return [sys.executable, "-m", "trainer", "run", str(Path(run.run_dir) / "config.json")]


def launch(session: Session, run: TrainingRun) -> int:
    """Start the trainer detached (own session and process group); returns its pid."""
    if run.status not in ("pending",):
        raise RunError(f"run {run.name!r} is {run.status}; only a pending run can start")
    log = open(Path(run.run_dir) / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            trainer_command(run),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=trainer_env(),
            start_new_session=True,
            cwd=run.run_dir,
        )
    finally:
        log.close()
    run.pid = proc.pid
    run.status = "running"
    run.started_at = datetime.now(UTC)
    session.flush()
    return proc.pid


def run_foreground(ws, run_id: int, echo: bool = True) -> int:
    """The command line's run: start the trainer, stream its events, wait, record the end.
    Ctrl+C cancels the run (SIGTERM to its group) and waits for it to stop cleanly."""
    with ws.session() as s:
        run = s.get(TrainingRun, run_id)
        cmd = trainer_command(run)
        run_dir = Path(run.run_dir)
    with open(run_dir / "stdout.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=trainer_env(),
            start_new_session=True,
            cwd=run_dir,
        )
        with ws.session() as s:
            run = s.get(TrainingRun, run_id)
            run.pid, run.status, run.started_at = proc.pid, "running", datetime.now(UTC)
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                log.write(line)
                if echo and line.startswith(b"{"):
                    sys.stdout.write(format_event(line))
                    sys.stdout.flush()
            code = proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait()
    with ws.session() as s:
        sync(s, s.get(TrainingRun, run_id))
    return code


def format_event(raw: bytes) -> str:
    """One event line as a short human line (non-JSON lines: empty)."""
    try:
        e = json.loads(raw)
    except ValueError:
        return ""
    kind = e.get("event")
    if kind == "log":
        metrics = ", ".join(
            f"{k}={v:.4g}" for k, v in e.get("metrics", {}).items() if isinstance(v, int | float)
        )
        return f"step {e.get('step')}/{e.get('max_steps')}: {metrics}\n"
    if kind in FINAL_EVENTS:
        return f"{kind}: {e.get('error') or e.get('adapter_dir') or ''}\n"
    return f"{kind}: {json.dumps({k: v for k, v in e.items() if k not in ('event', 'config')})[:200]}\n"


# ---------------------------------------------------------------------------------------------
# Watching


def read_events(run_dir: str | Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events appended since byte offset `start` (whole lines only) and the new offset."""
    path = Path(run_dir) / "events.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, start + end


def process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own exited child) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def sync(session: Session, run: TrainingRun) -> TrainingRun:
    """Bring the registry in line with the run directory (reattach after a restart)."""
    events, _ = read_events(run.run_dir)
    final = next((e for e in reversed(events) if e.get("event") in FINAL_EVENTS), None)
    if final is not None:
        run.status = final["event"]
        run.error = final.get("error")
        run.finished_at = run.finished_at or datetime.now(UTC)
        manifest = Path(run.run_dir) / "manifest.json"
        if manifest.exists():
            run.summary = {
                "manifest": str(manifest),
                "adapter_dir": final.get("adapter_dir"),
                "last_metrics": final.get("metrics", {}),
            }
    elif run.status == "running" and not process_alive(run.pid):
        run.status = "failed"
        run.error = "the trainer process ended without a final event (killed or out of memory)"
        run.finished_at = datetime.now(UTC)
    session.flush()
    return run


def get_run(session: Session, key: int | str) -> TrainingRun:
    run = None
    if isinstance(key, int) or str(key).isdigit():
        run = session.get(TrainingRun, int(key))
    if run is None:
        run = session.scalar(select(TrainingRun).where(TrainingRun.name == str(key)))
    if run is None:
        raise NotFound(f"no training run {key!r}")
    return run


def cancel_run(session: Session, key: int | str) -> str:
    run = sync(session, get_run(session, key))
    if run.status != "running" or not process_alive(run.pid):
        return f"run {run.name} is {run.status}; nothing to cancel"
    os.killpg(run.pid, signal.SIGTERM)
    return f"cancelling run {run.name} (pid {run.pid}): it saves a checkpoint and stops"


def list_runs(session: Session) -> list[dict[str, Any]]:
    out = []
    snaps = dict(session.execute(select(DatasetSnapshot.id, DatasetSnapshot.name)).all())
    for r in session.scalars(select(TrainingRun).order_by(TrainingRun.id)):
        if r.status in ("running", "pending"):
            sync(session, r)
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "algorithm": r.algorithm,
                "status": r.status,
                "pid": r.pid,
                "snapshot": snaps.get(r.snapshot_id),
                "base_model": r.base_model,
                "run_dir": r.run_dir,
                "error": r.error,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
        )
    return out


def verify_manifest(run_dir: str | Path) -> tuple[bool, list[str]]:
    """Recompute every artifact's sha256 and the base model's hashes."""
    run_dir = Path(run_dir)
    m = json.loads((run_dir / "manifest.json").read_text())
    problems = []
    for rel, sha in m["artifacts"]["sha256"].items():
        p = run_dir / rel
        if not p.exists():
            problems.append(f"{rel}: missing")
        elif file_sha256(p) != sha:
            problems.append(f"{rel}: sha256 differs")
    for rel, sha in m["base_model"]["sha256"].items():
        p = Path(m["base_model"]["path"]) / rel
        if not p.exists() or file_sha256(p) != sha:
            problems.append(f"base model {rel}: changed or missing")
    return not problems, problems


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def show_run(session: Session, key: int | str) -> dict[str, Any]:
    run = sync(session, get_run(session, key))
    snap = session.get(DatasetSnapshot, run.snapshot_id) if run.snapshot_id else None
    info: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "algorithm": run.algorithm,
        "status": run.status,
        "error": run.error,
        "snapshot": snap.name if snap else None,
        "base_model": run.base_model,
        "run_dir": run.run_dir,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "config": run.config,
    }
    mpath = Path(run.run_dir) / "manifest.json"
    if mpath.exists():
        info["manifest"] = json.loads(mpath.read_text())
        ok, problems = verify_manifest(run.run_dir)
        info["verified"] = ok if ok else problems
    return info
