"""Evaluations: a candidate and a baseline continue the same held-out prompts; the trainer
process generates, the graders score, the workspace stores every output.

An evaluation directory holds

    config.json     models, decoding settings, seed, graders (what the trainer reads)
    tasks.jsonl     one task per line: position, prompt (chat messages), tools, reference
    events.jsonl    start, progress, finished | failed | cancelled (JSON lines, like training)
    outputs.jsonl   one line per (task, model): raw text, parsed message, valid, grader scores
    stdout.log      the trainer's console

The default task set is the run's snapshot held-out split, frozen when the snapshot was made;
any task the run trained on is removed from every task set (counted in the config).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.traces.model import canonical_json
from app.training import evalstats
from app.training.graders import GraderSpec, reference_from
from app.training.pairs import get_snapshot, snapshot_rows, to_chat
from app.training.registry import ensure_base, get_model, register_run
from app.training.runs import (
    FINAL_EVENTS,
    get_run,
    process_alive,
    read_events,
    start_trainer,
    trainer_env,
)
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import (
    Adjudication,
    Assignment,
    EvalItem,
    EvalOutput,
    Evaluation,
    RegisteredModel,
    Review,
    ReviewRound,
    Trace,
    TrainingRun,
)
from app.workspace.paths import write_atomic

SIDES = ("baseline", "candidate")
DEFAULT_DECODING = {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0}


class EvalError(ChambersError):
    pass


# ---------------------------------------------------------------------------------------------
# Task sets


def _tools_of(session: Session, trace_ids: list[int]) -> list[Any]:
    if not trace_ids:
        return []
    t = session.get(Trace, trace_ids[0])
    return list(t.tools or []) if t else []


def _pair_tasks(session: Session, rows, split: str) -> list[dict[str, Any]]:
    """One task per distinct prompt of the split; reference = the chosen continuation."""
    seen: set[str] = set()
    tasks = []
    for p, s in rows:
        if s != split:
            continue
        key = hashlib.sha256(canonical_json(p.prompt)).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        tids = p.provenance.get("trace_ids", [])
        tasks.append(
            {
                "task_key": p.task_key,
                "prompt": p.prompt,
                "tools": _tools_of(session, tids),
                "reference": reference_from(p.chosen),
                "source": {"pair_id": p.id, "trace_ids": tids},
            }
        )
    return tasks


def _round_tasks(session: Session, name: str) -> list[dict[str, Any]]:
    """A review round's traces: the prompt is the conversation up to the first assistant
    turn; the reference is the gold or a judge's corrected answer, else the approved output."""
    rnd = session.scalar(select(ReviewRound).where(ReviewRound.name == name))
    if rnd is None:
        raise NotFound(f"no review round named {name!r}")
    tids = sorted(
        set(session.scalars(select(Assignment.trace_id).where(Assignment.round_id == rnd.id)))
    )
    tasks = []
    for t in session.scalars(select(Trace).where(Trace.id.in_(tids or [0])).order_by(Trace.id)):
        first = next((i for i, m in enumerate(t.messages) if m["role"] == "assistant"), None)
        if not first:
            continue
        gold = session.scalar(select(Adjudication).where(Adjudication.trace_id == t.id))
        fixes = [
            r.corrected_output
            for r in session.scalars(
                select(Review).where(Review.trace_id == t.id, Review.status == "submitted")
            )
            if r.corrected_output
        ]
        answer = (gold.corrected_output if gold and gold.corrected_output else None) or (
            fixes[0] if fixes else t.final_output or ""
        )
        rest = to_chat(t.messages[first:])
        tasks.append(
            {
                "task_key": t.task_key,
                "prompt": to_chat(t.messages[:first]),
                "tools": list(t.tools or []),
                "reference": {**reference_from(rest), "answer": answer},
                "source": {"trace_ids": [t.id], "round": name},
            }
        )
    return tasks


def build_tasks(
    session: Session, run: TrainingRun | None, spec: str, n: int | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The task set named by `spec`, minus any task the run trained on."""
    trained: set[str] = set()
    run_rows = None
    if run is not None and run.snapshot_id:
        from app.workspace.models import DatasetSnapshot

        run_rows = snapshot_rows(session, session.get(DatasetSnapshot, run.snapshot_id))
        trained = {p.task_key for p, s in run_rows if s == "train" and p.task_key}
    if spec == "heldout":
        if run_rows is None:
            raise EvalError("--tasks heldout needs a run with a snapshot; name a task set")
        tasks = _pair_tasks(session, run_rows, "heldout")
    elif spec.startswith("snapshot:"):
        tasks = _pair_tasks(
            session, snapshot_rows(session, get_snapshot(session, spec[9:])), "heldout"
        )
    elif spec.startswith("round:"):
        tasks = _round_tasks(session, spec[6:])
    else:
        raise EvalError(f"--tasks {spec!r}: use heldout, round:NAME or snapshot:NAME")
    kept = [t for t in tasks if not t["task_key"] or t["task_key"] not in trained]
    info = {"spec": spec, "available": len(tasks), "excluded_trained": len(tasks) - len(kept)}
    if n is not None:
        kept = kept[:n]
    if not kept:
        raise EvalError(f"the task set {spec!r} holds no task the run did not train on")
    info["n"] = len(kept)
    return kept, info


# ---------------------------------------------------------------------------------------------
# Preparing and running


def _model_spec(m: RegisteredModel, session: Session) -> dict[str, Any]:
    if m.kind == "base":
        return {"name": m.name, "base": m.path, "adapter": None}
    parent = session.get(RegisteredModel, m.parent_id)
    return {"name": m.name, "base": parent.path, "adapter": m.path}


def prepare_eval(
    session: Session,
    run_key: str,
    against: str = "base",
    tasks: str = "heldout",
    n: int | None = None,
    decoding: dict[str, Any] | None = None,
    seed: int = 0,
    name: str | None = None,
    eval_dir: Path | None = None,
    graders: list[GraderSpec] | None = None,
) -> Evaluation:
    """Write the evaluation's directory and rows; the trainer does the rest."""
    run = get_run(session, run_key)
    candidate = register_run(session, run)
    baseline = (
        ensure_base(session, run.base_model) if against == "base" else get_model(session, against)
    )
    if baseline.id == candidate.id:
        raise EvalError("the candidate and the baseline are the same model")
    items, info = build_tasks(session, run, tasks, n)
    dec = {**DEFAULT_DECODING, **(decoding or {})}
    unknown = set(dec) - set(DEFAULT_DECODING)
    if unknown:
        raise EvalError(f"unknown decoding settings: {', '.join(sorted(unknown))}")
    if graders is None:
        graders = [
            GraderSpec(g["name"], g["weight"], g.get("path"))
            for g in run.config.get("graders") or []
        ]
        graders = graders or [
            GraderSpec("match", 1.0),
            GraderSpec("tools", 1.0),
            GraderSpec("format", 0.5),
            GraderSpec("json", 0.5),
        ]
    k = 1 + len(list(session.scalars(select(Evaluation.id).where(Evaluation.run_id == run.id))))
    name = name or f"{run.name}-eval{k}"
    if session.scalar(select(Evaluation.id).where(Evaluation.name == name)):
        raise EvalError(f"an evaluation named {name!r} exists already")
    eval_dir = (eval_dir or Path(run.run_dir) / "evals" / name).resolve()
    if eval_dir.exists() and any(eval_dir.iterdir()):
        raise EvalError(f"{eval_dir}: the evaluation directory exists and is not empty")
    rows = [{"position": i, **t} for i, t in enumerate(items)]
    write_atomic(eval_dir / "tasks.jsonl", b"".join(canonical_json(r) + b"\n" for r in rows))
    config = {
        "name": name,
        "eval_dir": str(eval_dir),
        "tasks_file": str(eval_dir / "tasks.jsonl"),
        "tasks": info,
        "heldout_only": tasks == "heldout",
        "models": {
            "baseline": _model_spec(baseline, session),
            "candidate": _model_spec(candidate, session),
        },
        "decoding": dec,
        "seed": seed,
        "graders": [g.as_dict() for g in graders],
    }
    write_atomic(eval_dir / "config.json", json.dumps(config, indent=2).encode())
    ev = Evaluation(
        name=name,
        run_id=run.id,
        candidate_id=candidate.id,
        baseline_id=baseline.id,
        tasks=tasks,
        decoding=dec,
        seed=seed,
        graders=config["graders"],
        eval_dir=str(eval_dir),
        status="pending",
        summary={"tasks": info},
    )
    session.add(ev)
    session.flush()
    for r in rows:
        session.add(
            EvalItem(
                evaluation_id=ev.id,
                position=r["position"],
                task_key=r["task_key"],
                prompt=r["prompt"],
                tools=r["tools"],
                reference=r["reference"],
                source=r["source"],
            )
        )
    session.flush()
    audit.record(
        session,
        "create",
        "evaluation",
        ev.id,
        None,
        name=name,
        run=run.name,
        against=baseline.name,
        tasks=info,
    )
    return ev


def eval_command(ev: Evaluation) -> list[str]:
    return [sys.executable, "-m", "trainer", "eval", str(Path(ev.eval_dir) / "config.json")]


def launch(session: Session, ev: Evaluation) -> int:
    """Start the trainer detached (own process group: closing the app does not stop it)."""
    if ev.status != "pending":
        raise EvalError(f"evaluation {ev.name!r} is {ev.status}; only a pending one can start")
    proc = start_trainer(Path(ev.eval_dir), eval_command(ev))
    ev.pid, ev.status, ev.started_at = proc.pid, "running", datetime.now(UTC)
    session.flush()
    return proc.pid


def run_foreground(ws, eval_id: int, echo: bool = True) -> int:
    """The command line's evaluation: stream progress, wait, store the outputs.
    Ctrl+C cancels (SIGTERM to the trainer's group)."""
    with ws.session() as s:
        ev = s.get(Evaluation, eval_id)
        cmd, eval_dir = eval_command(ev), Path(ev.eval_dir)
    with open(eval_dir / "stdout.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=trainer_env(),
            start_new_session=True,
            cwd=eval_dir,
        )
        with ws.session() as s:
            ev = s.get(Evaluation, eval_id)
            ev.pid, ev.status, ev.started_at = proc.pid, "running", datetime.now(UTC)
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                log.write(line)
                if echo and line.startswith(b"{"):
                    _echo(line)
            code = proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait()
    with ws.session() as s:
        sync(s, s.get(Evaluation, eval_id))
    return code


def _echo(raw: bytes) -> None:
    try:
        e = json.loads(raw)
    except ValueError:
        return
    if e.get("event") == "progress":
        print(f"{e['side']}: {e['done']}/{e['total']}", file=sys.stderr)
    elif e.get("event") in FINAL_EVENTS:
        print(f"{e['event']}: {e.get('error') or ''}".rstrip(": "), file=sys.stderr)


def sync(session: Session, ev: Evaluation) -> Evaluation:
    """Bring the rows in line with the directory: on `finished`, store the outputs once."""
    if ev.status in FINAL_EVENTS:
        return ev
    events, _ = read_events(ev.eval_dir)
    final = next((e for e in reversed(events) if e.get("event") in FINAL_EVENTS), None)
    if final is None:
        if ev.status == "running" and not process_alive(ev.pid):
            ev.status, ev.finished_at = "failed", datetime.now(UTC)
            ev.error = (
                "the evaluation process ended without a final event (killed or out of memory)"
            )
        session.flush()
        return ev
    ev.status, ev.error = final["event"], final.get("error")
    if final["event"] == "finished":
        try:
            _store_outputs(session, ev)
        except EvalError as exc:
            ev.status, ev.error = "failed", str(exc)
        else:
            ev.summary = {
                **ev.summary,
                "throughput": final.get("throughput", {}),
                **summarize(session, ev),
            }
    ev.finished_at = datetime.now(UTC)
    session.flush()
    return ev


def _store_outputs(session: Session, ev: Evaluation) -> None:
    """Every line is checked before any row is added: a bad file stores nothing."""
    items = {
        i.position: i
        for i in session.scalars(select(EvalItem).where(EvalItem.evaluation_id == ev.id))
    }
    model_of = {"baseline": ev.baseline_id, "candidate": ev.candidate_id}
    path = Path(ev.eval_dir) / "outputs.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read the outputs ({exc})") from None
    rows = []
    for n, line in enumerate(lines, 1):
        try:
            o = json.loads(line)
            rows.append(
                EvalOutput(
                    item_id=items[o["position"]].id,
                    side=o["side"],
                    model_id=model_of[o["side"]],
                    text=str(o["text"]),
                    message=o["message"],
                    valid=bool(o["valid"]),
                    error=o.get("error"),
                    scores=o["scores"],
                    score=float(o["score"]),
                    decoding=o["decoding"],
                    seed=int(o["seed"]),
                    n_tokens=int(o.get("n_tokens", 0)),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalError(f"{path}: line {n}: not an output record ({exc!r})") from None
    session.add_all(rows)
    session.flush()


def outputs(session: Session, ev: Evaluation) -> dict[int, dict[str, EvalOutput]]:
    """item id -> side -> output."""
    q = (
        select(EvalOutput)
        .join(EvalItem, EvalItem.id == EvalOutput.item_id)
        .where(EvalItem.evaluation_id == ev.id)
    )
    out: dict[int, dict[str, EvalOutput]] = defaultdict(dict)
    for o in session.scalars(q):
        out[o.item_id][o.side] = o
    return out


def summarize(session: Session, ev: Evaluation, item_ids: set[int] | None = None) -> dict[str, Any]:
    """Each model's mean score with a bootstrap CI, and the paired difference candidate -
    baseline with its CI; the same per grader. Only items both models answered count."""
    both = [
        o
        for i, o in sorted(outputs(session, ev).items())
        if len(o) == 2 and (item_ids is None or i in item_ids)
    ]
    res: dict[str, Any] = {"n_items": len(both), "seed": ev.seed}
    for side in SIDES:
        res[side] = {
            "score": evalstats.mean_ci([o[side].score for o in both], seed=ev.seed).as_dict(),
            "invalid": sum(not o[side].valid for o in both),
        }
    res["difference"] = evalstats.mean_ci(
        [o["candidate"].score - o["baseline"].score for o in both], seed=ev.seed
    ).as_dict()
    res["graders"] = {}
    for g in ev.graders:
        name = g["name"]
        res["graders"][name] = {
            side: evalstats.mean_ci(
                [o[side].scores.get(name, 0.0) for o in both], seed=ev.seed
            ).as_dict()
            for side in SIDES
        } | {
            "difference": evalstats.mean_ci(
                [
                    o["candidate"].scores.get(name, 0.0) - o["baseline"].scores.get(name, 0.0)
                    for o in both
                ],
                seed=ev.seed,
            ).as_dict()
        }
    return res


def get_eval(session: Session, key: str) -> Evaluation:
    ev = session.scalar(select(Evaluation).where(Evaluation.name == key))
    if ev is None and str(key).isdigit():
        ev = session.get(Evaluation, int(key))
    if ev is None:
        raise NotFound(f"no evaluation {key!r}")
    return ev


def cancel(session: Session, key: str) -> str:
    ev = sync(session, get_eval(session, key))
    if ev.status != "running" or not process_alive(ev.pid):
        return f"evaluation {ev.name} is {ev.status}; nothing to cancel"
    os.killpg(ev.pid, signal.SIGTERM)
    return f"cancelling evaluation {ev.name} (pid {ev.pid})"


def list_evals(session: Session) -> list[dict[str, Any]]:
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    out = []
    for ev in session.scalars(select(Evaluation).order_by(Evaluation.id)):
        sync(session, ev)
        out.append(
            {
                "id": ev.id,
                "name": ev.name,
                "status": ev.status,
                "candidate_model": names[ev.candidate_id],
                "baseline_model": names[ev.baseline_id],
                "tasks": ev.tasks,
                "n_items": ev.summary.get("n_items"),
                "difference": ev.summary.get("difference"),
                "eval_dir": ev.eval_dir,
                "error": ev.error,
            }
        )
    return out


def show(session: Session, ev: Evaluation) -> dict[str, Any]:
    sync(session, ev)
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    return {
        "id": ev.id,
        "name": ev.name,
        "status": ev.status,
        "error": ev.error,
        "candidate_model": names[ev.candidate_id],
        "baseline_model": names[ev.baseline_id],
        "tasks": ev.tasks,
        "decoding": ev.decoding,
        "seed": ev.seed,
        "graders": ev.graders,
        "eval_dir": ev.eval_dir,
        **ev.summary,
    }


def regrade(session: Session, ev: Evaluation, graders: list[GraderSpec]) -> dict[str, Any]:
    """Score the stored outputs again with other graders (no generation): what would these
    graders have said? Replaces the scores and the summary; audited."""
    from app.training.graders import combined
    from app.training.toolcalls import Parsed

    items = {
        i.id: i for i in session.scalars(select(EvalItem).where(EvalItem.evaluation_id == ev.id))
    }
    for item_id, outs in outputs(session, ev).items():
        for o in outs.values():
            sample = Parsed(o.message).chat()
            o.score, o.scores = combined(graders, sample, items[item_id].reference)
    ev.graders = [g.as_dict() for g in graders]
    session.flush()
    ev.summary = {**ev.summary, **summarize(session, ev)}
    session.flush()
    audit.record(session, "regrade", "evaluation", ev.id, None, graders=ev.graders)
    return ev.summary
