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

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training import grader_check
from app.training.config import METHOD_DATA, METHODS, TrainConfig, model_size
from app.training.examples import is_verdict_snapshot, verdict_records
from app.training.graders import GraderSpec
from app.training.graders import parse as parse_graders
from app.training.manifest import (  # noqa: F401 - file_sha256, verify_manifest re-exported
    file_sha256,
    last_checkpoint,
    verify_manifest,
)
from app.training.pairs import export_bytes, get_snapshot, snapshot_rows
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import DatasetSnapshot, TrainingRun
from app.workspace.paths import write_atomic

FINAL_EVENTS = ("finished", "failed", "cancelled")


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
    root = str(Path(__file__).resolve().parents[2])  # the repository (app/training/runs.py)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------------------------------
# Grader validation (before GRPO): do the graders agree with the judges?


def validate_graders(
    session: Session, graders: list[GraderSpec], part: str = "heldout"
) -> dict[str, Any]:
    """Do the graders agree with the judges? Each held-out reviewed trace is graded against a
    reference from another trace of its task (never its own review); per grader and combined,
    Cohen's κ and the within-task AUC with task-bootstrap CIs; `ok` reads the lower bounds
    (app.training.grader_check says how and why)."""
    return grader_check.check(session, graders, part)


# ---------------------------------------------------------------------------------------------
# Preparing and launching


def _data_for(
    session: Session, method: str, snap: DatasetSnapshot
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The snapshot's records for this method (each with its split) and where they came from:
    pairs for DPO and GRPO, verdicts' step examples for SFT (desirable ones) and KTO."""
    if is_verdict_snapshot(snap):
        if method not in ("sft", "kto"):
            raise RunError(
                f"snapshot {snap.name!r} holds verdicts (step examples): train SFT or "
                f"KTO on it, or {method.upper()} on a snapshot of pairs"
            )
        records = verdict_records(snap)
        if method == "sft":
            records = [r for r in records if r["label"]]
        source = {
            "source": "verdicts",
            "judgements": sorted({k for r in records for k in r["kinds"]}),
            "desirable": sum(r["label"] for r in records),
            "undesirable": sum(not r["label"] for r in records),
        }
        return records, source
    if method in ("sft", "kto"):
        raise RunError(
            f"snapshot {snap.name!r} holds preference pairs: {method.upper()} trains "
            "on verdicts; create one with `chambers snapshot create NAME --from "
            'verdicts` (or the run dialog\'s "Snapshot the verdicts")'
        )
    rows = snapshot_rows(session, snap)
    records = [json.loads(line) for line in export_bytes(rows, "trl").splitlines()]
    return records, {"source": "pairs", "judgements": sorted({p.rule for p, _ in rows})}


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in records
    )


def prepare_run(
    session: Session,
    algorithm: str,
    snapshot: str,
    model_dir: Path,
    run_dir: Path,
    overrides: dict[str, Any] | TrainConfig | None = None,
    graders: list[GraderSpec] | None = None,
    name: str | None = None,
    force: bool = False,
    environment: str | None = None,
) -> TrainingRun:
    """Write the run directory (config.json, the data) and register a pending run. `overrides`
    is a TrainConfig, or the fields to change in the model-size defaults. `environment` (GRPO):
    an environment file's path or "replay"; the data are then agent tasks (agent_tasks)."""
    if algorithm not in METHODS:
        raise RunError(f"method must be one of {', '.join(METHODS)}, not {algorithm!r}")
    if environment is not None and algorithm != "grpo":
        raise RunError(f"--environment is for GRPO, not {algorithm.upper()}")
    model_dir = Path(model_dir).resolve()
    n_params = model_size(model_dir)
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunError(f"{run_dir}: the run directory exists and is not empty")
    name = name or run_dir.name
    if session.scalar(select(TrainingRun.id).where(TrainingRun.name == name)):
        raise RunError(f"a run named {name!r} exists already")
    snap = get_snapshot(session, snapshot)
    if algorithm == "grpo":
        graders = graders or parse_graders(["match:1.0"])
    agent = None
    if environment is not None:
        from app.training.agent_tasks import prepare_agent

        agent = prepare_agent(session, snap, graders, environment)
        records, source = agent.tasks, agent.source
    else:
        records, source = _data_for(session, algorithm, snap)
    if isinstance(overrides, TrainConfig):
        cfg = overrides
    else:
        cfg = TrainConfig.for_model(algorithm, n_params).update(overrides or {})
    validation = None
    if algorithm == "grpo":
        validation = validate_graders(session, graders)
        if not validation["ok"] and not force:
            raise RunError(
                "grader check failed: "
                + "; ".join(validation["failures"])
                + " (--force to train anyway)"
            )
    train = [r for r in records if r.get("split", "train") == "train"]
    held = [r for r in records if r.get("split") == "heldout"]
    if not train:
        refused = "; ".join(f"{n} {why}" for why, n in source.get("refused", {}).items())
        raise RunError(
            f"snapshot {snapshot!r} has no training examples for {algorithm.upper()}"
            + (f" (refused: {refused})" if refused else "")
        )
    created = not run_dir.exists()
    data = run_dir / "data"
    try:
        sha_train = write_atomic(data / "train.jsonl", _jsonl(train))
        sha_held = write_atomic(data / "heldout.jsonl", _jsonl(held))
        env_config = agent.write(run_dir) if agent else None
        config = {
            "algorithm": algorithm,
            "name": name,
            "base_model": str(model_dir),
            "n_params": n_params,
            "run_dir": str(run_dir.resolve()),
            "train_file": str((data / "train.jsonl").resolve()),
            "eval_file": str((data / "heldout.jsonl").resolve()) if held else None,
            "snapshot": {
                "id": snap.id,
                "name": snap.name,
                "sha256": snap.sha256,
                "examples": len(records),
                "train_sha256": sha_train,
                "heldout_sha256": sha_held,
            },
            "data": {
                "method": METHOD_DATA[algorithm],
                **source,
                "train": len(train),
                "heldout": len(held),
            },
            "rubric_version_ids": snap.manifest.get("rubric_version_ids", []),
            "review_ids": snap.manifest.get("review_ids", []),
            "graders": [g.as_dict() for g in graders or []],
            "grader_check": validation,
            "training": cfg.resolved().to_dict(),
        }
        if env_config is not None:
            config["environment"] = env_config
        write_atomic(run_dir / "config.json", json.dumps(config, indent=2).encode())
    except OSError as exc:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise RunError(disk_message(exc, run_dir)) from None
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


def disk_message(exc: OSError, where: Path) -> str:
    """An OSError as a sentence; a full disk says so, with the space left."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = _free_mb(where)
        return (
            f"the disk is full: no space left to write {exc.filename or where}"
            + (f" ({free} MB free)" if free is not None else "")
            + "; free some space and start the run again"
        )
    return f"{exc.filename or where}: {exc.strerror or exc}"


def _free_mb(where: Path) -> int | None:
    for p in (Path(where), *Path(where).parents):
        try:
            return shutil.disk_usage(p).free // 2**20
        except OSError:
            continue
    return None


def trainer_command(run: TrainingRun) -> list[str]:
    return [sys.executable, "-m", "trainer", "run", str(Path(run.run_dir) / "config.json")]


def start_trainer(run_dir: Path, cmd: list[str]) -> subprocess.Popen:
    """The trainer in its own session (a closed terminal or a killed launcher never reaches
    it), its output to stdout.log (no pipe whose reader could die)."""
    log = open(run_dir / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=trainer_env(),
            start_new_session=True,
            cwd=run_dir,
        )
    finally:
        log.close()


def launch(session: Session, run: TrainingRun) -> int:
    """Start the trainer detached (own session and process group); returns its pid."""
    if run.status not in ("pending",):
        raise RunError(f"run {run.name!r} is {run.status}; only a pending run can start")
    proc = start_trainer(Path(run.run_dir), trainer_command(run))
    run.pid = proc.pid
    run.status = "running"
    run.started_at = datetime.now(UTC)
    session.flush()
    return proc.pid


def prepare_resume(session: Session, key: int | str) -> TrainingRun:
    """Make a cancelled or failed run pending again, to continue from its last checkpoint."""
    run = sync(session, get_run(session, key))
    if run.status not in ("cancelled", "failed"):
        raise RunError(f"run {run.name!r} is {run.status}; only a cancelled or failed run resumes")
    ckpt = last_checkpoint(run.run_dir)
    if ckpt is None:
        raise RunError(
            f"run {run.name!r} has no checkpoint to resume from (it stopped before its first save)"
        )
    path = Path(run.run_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["resume_from"] = str(ckpt)
    try:
        write_atomic(path, json.dumps(config, indent=2).encode())
    except OSError as exc:
        raise RunError(disk_message(exc, path)) from None
    _append_event(Path(run.run_dir), "resume", checkpoint=str(ckpt), previous=run.status)
    run.config = config
    run.status, run.error, run.finished_at = "pending", None, None
    session.flush()
    audit.record(
        session, "resume", "training_run", run.id, None, name=run.name, checkpoint=ckpt.name
    )
    return run


def _append_event(run_dir: Path, event: str, **data: Any) -> None:
    """The app's own line in events.jsonl (the trainer is not running when it writes)."""
    line = json.dumps({"event": event, "time": datetime.now(UTC).isoformat(), **data})
    try:
        with open(run_dir / "events.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as exc:
        raise RunError(disk_message(exc, run_dir / "events.jsonl")) from None


def run_foreground(ws, run_id: int, echo: bool = True, poll_s: float = 0.25) -> int:
    """The command line's run: start the trainer detached, follow events.jsonl, record the end.
    Ctrl+C cancels the run (SIGTERM to its group) and waits for it to stop cleanly; closing
    the terminal (or killing this process) leaves the trainer running, and `chambers runs
    show` / the Runs screen pick it up."""
    with ws.session() as s:
        run = s.get(TrainingRun, run_id)
        run_dir = Path(run.run_dir)
        _, offset = read_events(run_dir)  # a resumed run: only what it appends now
        launch(s, run)
        pid = run.pid
    code = None
    try:
        while code is None:
            new, offset = read_events(run_dir, offset)
            for e in new:
                if echo:
                    sys.stdout.write(format_event(json.dumps(e).encode()))
                    sys.stdout.flush()
            if any(e.get("event") in FINAL_EVENTS for e in new):
                code = 1 if new[-1].get("event") == "failed" else 0
            elif not process_alive(pid):
                new, offset = read_events(run_dir, offset)
                final = [e for e in new if e.get("event") in FINAL_EVENTS]
                code = 1 if not final or final[-1]["event"] == "failed" else 0
            else:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        os.killpg(pid, signal.SIGTERM)
        while process_alive(pid):
            time.sleep(poll_s)
        code = 130
    _reap(pid)
    with ws.session() as s:
        run = sync(s, s.get(TrainingRun, run_id))
        if code == 130:
            code = 0 if run.status == "cancelled" else 1
    return code


def _reap(pid: int) -> None:
    """Collect our own exited child (no zombie); a trainer we did not start is left alone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


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
    if kind == "watch":  # the reward-hacking watch (issue 13)
        shown = [
            ("reward", "reward_mean"),
            ("KL", "kl"),
            ("length", "completion_length"),
            ("copy share", "copy_share"),
            ("held-out obs CE", "obs_ce"),
        ]
        values = ", ".join(
            f"{label} {e[key]:.4g}" for label, key in shown if isinstance(e.get(key), int | float)
        )
        return f"watch at step {e.get('step')} ({e.get('n')} held-out completions): {values}\n"
    if kind == "alert":
        return f"ALERT at step {e.get('step')}: {e.get('message') or e.get('kind')}\n"
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
    starts = [i for i, e in enumerate(events) if e.get("event") in ("start", "resume")]
    current = events[starts[-1] :] if starts else events  # a resumed run: its latest attempt
    final = next((e for e in reversed(current) if e.get("event") in FINAL_EVENTS), None)
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
        free = _free_mb(Path(run.run_dir))
        run.error = (
            f"the trainer process ended without a final event: the disk is full ({free} MB "
            f"free where {run.run_dir} is)"
            if free is not None and free < 64
            else "the trainer process ended without a final event (killed or out of memory)"
        )
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
