"""A GRPO run's logged episodes: read while the run writes them, and sent to judges.

The trainer appends `run_dir/episodes.jsonl`, one episode per line (see SPEC: step, split,
task_key, index, the messages after the prompt with parsed tool calls and tool results,
rewards per grader). A run that is still writing can leave a half line at the end, and a
reader must never crash on one bad line: bad lines are skipped.

The held-out episodes are what a reward-hacking check needs human eyes on: `episodes_to_round`
stores each one as a trace (the task's prompt, the model's messages, the task's tools; the
graders' rewards as automated scores) and assigns them to judges in a review round. Sending
twice adds nothing: a trace is identified by its content hash, and an episode already
assigned to judges is not assigned again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.rounds import RoundError, create_round
from app.traces.importers.conversations import normalize_tools
from app.traces.importers.messages import RecordError, normalize_messages
from app.traces.model import TraceRecord, message_text, sha256_hex
from app.traces.queries import TraceFilter
from app.training.steps import prompt_key, to_arrow_messages
from app.workspace import audit
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import (
    Assignment,
    Judge,
    ReviewRound,
    RubricVersion,
    Trace,
    TrainingRun,
)

EPISODES_FILE = "episodes.jsonl"
SPLITS = ("train", "heldout")
SOURCE_PREFIX = "run:"  # a sent episode's trace source: "run:" + the run's name (40 chars)


class EpisodeError(ChambersError):
    """Episodes that cannot be read or sent (the message names file, line and field)."""


def _episode(value: Any, line: int) -> dict[str, Any] | None:
    """One line's episode with its optional fields filled, or None if it is not one."""
    if not isinstance(value, dict):
        return None
    step, split, messages = value.get("step"), value.get("split"), value.get("messages")
    if not isinstance(step, int) or split not in SPLITS or not isinstance(messages, list):
        return None
    rewards = value.get("rewards") if isinstance(value.get("rewards"), dict) else {}
    calls = value.get("tool_calls")
    if not isinstance(calls, int):
        calls = sum(len(m.get("tool_calls") or []) for m in messages if isinstance(m, dict))
    return {
        **value,
        "line": line,
        "task_key": str(value.get("task_key") or ""),
        "index": value.get("index") if isinstance(value.get("index"), int) else 0,
        "rewards": {str(k): v for k, v in rewards.items() if isinstance(v, int | float)},
        "reward": value.get("reward") if isinstance(value.get("reward"), int | float) else None,
        "tool_calls": calls,
    }


def read_episodes_since(
    run_dir: str | Path, start: int = 0, first_line: int = 1
) -> tuple[list[dict[str, Any]], int, int]:
    """Episodes in the whole lines appended since byte offset `start` (line `first_line`),
    the new offset and the next line's number: the Runs screen tails the file with them.
    Each episode carries its 1-based `line`."""
    path = Path(run_dir) / EPISODES_FILE
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start, first_line
    end = data.rfind(b"\n") + 1  # a half-written last line waits for the next read
    lines = data[:end].split(b"\n")[:-1]
    out = []
    for i, raw in enumerate(lines):
        try:
            ep = _episode(json.loads(raw), first_line + i)
        except ValueError:
            continue
        if ep is not None:
            out.append(ep)
    return out, start + end, first_line + len(lines)


def read_episodes(
    run_dir: str | Path, split: str | None = None, step: int | None = None
) -> list[dict[str, Any]]:
    """Every whole, well-formed episode of the run (bad lines skipped), in file order."""
    episodes, _, _ = read_episodes_since(run_dir)
    return [
        e
        for e in episodes
        if (split is None or e["split"] == split) and (step is None or e["step"] == step)
    ]


# ---------------------------------------------------------------------------------------------
# The task behind an episode: its prompt and tools, from the run's data files


def _task_key_of(prompt: list[Any]) -> str:
    """A task without a recorded key: the hash of its first user message, as traces do."""
    user = next(
        (m for m in prompt if isinstance(m, dict) and m.get("role") == "user"), {"content": ""}
    )
    content = user.get("content")
    return sha256_hex(content.strip().encode()) if isinstance(content, str) else ""


def _prompt_key(prompt: list[Any]) -> str:
    return prompt_key(to_arrow_messages(prompt))


def task_prompts(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """task_key -> {"prompt": [chat messages], "tools": [tool schemas]} over the run's train
    and held-out data. Agent tasks carry their key; a pair's prompt is found under its task's
    hash and under the hash the watch gives it."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("train.jsonl", "heldout.jsonl"):
        try:
            lines = (Path(run_dir) / "data" / name).read_bytes().splitlines()
        except OSError:
            continue
        for raw in lines:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            prompt = rec.get("prompt") if isinstance(rec, dict) else None
            if not isinstance(prompt, list):
                continue
            task = {"prompt": prompt, "tools": rec.get("tools") or []}
            if rec.get("task_key"):
                out.setdefault(str(rec["task_key"]), task)
                continue
            out.setdefault(_task_key_of(prompt), task)
            try:
                out.setdefault(_prompt_key(prompt), task)
            except (AttributeError, KeyError, TypeError):
                continue  # a malformed prompt: its episodes are shown without it
    return out


def episode_trace(ep: dict[str, Any], task: dict[str, Any] | None) -> dict[str, Any]:
    """The episode in the trace model (prompt first when known), for the trace view and for
    storing; raises EpisodeError naming the line and field it cannot read."""
    where = f"{EPISODES_FILE} line {ep['line']}"
    try:
        prompt = normalize_messages(task["prompt"], "prompt") if task else []
        messages = normalize_messages(ep["messages"], "messages")
        tools = normalize_tools((task or {}).get("tools"))
    except RecordError as exc:
        raise EpisodeError(f"{where}: {exc}") from None
    msgs = prompt + messages
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    return {
        "messages": msgs,
        "tools": tools,
        "final_output": (message_text(last) or None) if last else None,
        "n_messages": len(msgs),
        "n_tool_calls": sum(1 for m in msgs for p in m["parts"] if p["type"] == "tool_call"),
        "prompt_messages": len(prompt),
    }


# ---------------------------------------------------------------------------------------------
# Sending held-out episodes to judges


def _record(run: TrainingRun, ep: dict[str, Any], task: dict[str, Any] | None) -> TraceRecord:
    t = episode_trace(ep, task)
    return TraceRecord(
        source=(SOURCE_PREFIX + run.name)[:40],
        messages=t["messages"],
        external_id=f"{run.name}/step-{ep['step']}/{ep['task_key'][:16]}/{ep['index']}",
        final_output=t["final_output"],
        tools=t["tools"],
        metadata={
            "run": run.name,
            "run_id": run.id,
            "step": ep["step"],
            "split": ep["split"],
            "task_key": ep["task_key"],
            "index": ep["index"],
            "episodes_line": ep["line"],
        },
        scores=[
            {"name": k, "value": float(v), "source": f"grader:{run.name}", "comment": ""}
            for k, v in ep["rewards"].items()
        ],
    ).finish()


def _store(session: Session, records: list[TraceRecord]) -> tuple[list[int], int]:
    """The traces' ids, storing those whose content is new; and how many were new."""
    hashes = [r.content_hash() for r in records]
    known = dict(
        session.execute(
            select(Trace.content_hash, Trace.id).where(Trace.content_hash.in_(hashes))
        ).all()
    )
    new = 0
    for rec, h in zip(records, hashes, strict=True):
        if h in known:
            continue
        row = Trace(
            source=rec.source,
            external_id=rec.external_id,
            task=rec.task,
            task_key=rec.task_key,
            messages=rec.messages,
            final_output=rec.final_output,
            tools=rec.tools,
            meta=rec.metadata,
            scores=rec.scores,
            n_messages=rec.n_messages,
            n_tool_calls=rec.n_tool_calls,
            content_hash=h,
        )
        session.add(row)
        session.flush()
        known[h] = row.id
        new += 1
    return [known[h] for h in hashes], new


def _rubric_version(session: Session, run: TrainingRun) -> int:
    """The newest rubric version the run's data was judged under, else the newest one."""
    ids = (run.config or {}).get("rubric_version_ids") or []
    if ids:
        return max(ids)
    newest = session.scalar(select(RubricVersion.id).order_by(RubricVersion.id.desc()))
    if newest is None:
        raise EpisodeError("the workspace has no rubric: create one before sending to judges")
    return newest


def episodes_to_round(
    session: Session,
    run_id: int,
    name: str,
    judge_ids: list[int],
    per_item: int,
    rubric_version_id: int | None = None,
    created_by: int | None = None,
    seed: int = 0,
) -> ReviewRound:
    """Store the run's held-out episodes as traces and assign the ones no judge has yet to
    `per_item` judges each, in a new round `name` (returned). If every held-out episode is
    assigned already, nothing is added and the newest round holding them is returned.
    `round.selection` says how many episodes there were, how many traces were new and how
    many were assigned (`n_traces`)."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    episodes = read_episodes(run.run_dir, split="heldout")
    if not episodes:
        raise EpisodeError(
            f"{Path(run.run_dir) / EPISODES_FILE}: run {run.name!r} has logged no held-out "
            "episodes yet (the watch logs them every watch_steps steps)"
        )
    tasks = task_prompts(run.run_dir)
    records = [_record(run, ep, tasks.get(ep["task_key"])) for ep in episodes]
    ids, new_traces = _store(session, records)
    assigned = set(session.scalars(select(Assignment.trace_id).where(Assignment.trace_id.in_(ids))))
    todo = sorted(set(ids) - assigned)
    if not todo:
        rnd = session.scalar(
            select(ReviewRound)
            .join(Assignment, Assignment.round_id == ReviewRound.id)
            .where(Assignment.trace_id.in_(ids))
            .order_by(ReviewRound.id.desc())
        )
        if rnd is None:  # assigned outside any round (a lead's ad hoc assignment)
            raise RoundError(f"the held-out episodes of {run.name!r} are assigned already")
        return rnd
    rnd = create_round(
        session,
        name,
        rubric_version_id or _rubric_version(session, run),
        judge_ids,
        per_item,
        TraceFilter(ids=todo),
        seed=seed,
        created_by=created_by,
    )
    rnd.selection = {
        **rnd.selection,
        "run": run.name,
        "run_id": run.id,
        "episodes": len(episodes),
        "new_traces": new_traces,
        "steps": sorted({e["step"] for e in episodes}),
    }
    audit.record(
        session,
        "send_heldout",
        "training_run",
        run.id,
        created_by,
        round=rnd.name,
        round_id=rnd.id,
        episodes=len(episodes),
        traces=len(todo),
        new_traces=new_traces,
    )
    session.flush()
    return rnd


def default_judges(session: Session, per_item: int = 2) -> tuple[list[int], int]:
    """Every active judge (not leads, unless there are no judges) and the overlap to use: the
    one-click send from the Runs screen."""
    rows = session.execute(
        select(Judge.id, Judge.role).where(Judge.active.is_(True)).order_by(Judge.id)
    ).all()
    judges = [i for i, role in rows if role == "judge"] or [i for i, _ in rows]
    if not judges:
        raise EpisodeError("the workspace has no active judges to send the episodes to")
    return judges, max(1, min(per_item, len(judges)))


def round_name(session: Session, run_id: int) -> str:
    """A free round name for the run's held-out episodes: "RUN held-out", then "(2)" ..."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    base = f"{run.name} held-out"
    taken = set(session.scalars(select(ReviewRound.name).where(ReviewRound.name.like(base + "%"))))
    n = 1
    name = base
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name
