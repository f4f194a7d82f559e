"""Agent GRPO data: one task per task of the snapshot, played out in an environment.

A task is the conversation up to the first assistant turn (the model then acts: calls tools,
reads their results, answers), the tools the trace offered, and a reference: the final answer
and the tool calls of the task's best trajectory, chosen as the pairs choose their `chosen`
side, a lead's verdict first:
    1. a lead's corrected trajectory;   2. a trace the lead approved;
    3. a judge's corrected trajectory;  4. a trace the judges approved (majority);
    5. a written answer alone (a rejection or correction without a corrected trajectory):
       the reference then has the answer and no calls, since the trace's calls were not
       endorsed.
The train/held-out split is the snapshot's (whole tasks). A task that a selected built-in
grader cannot judge (`graders.unjudgeable`) is refused and counted per reason, never scored
with a constant.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.training.environment import EnvironmentFileError, check_environment
from app.training.examples import is_verdict_snapshot
from app.training.graders import GraderSpec, reference_from, unjudgeable
from app.training.pairs import group_of, snapshot_rows
from app.training.replay import check_schemas, replay_lines, task_of
from app.training.steps import to_chat, tool_schemas
from app.workspace.models import Adjudication, DatasetSnapshot, Review, Trace
from app.workspace.paths import write_atomic

NO_TRAJECTORY = "no approved or corrected trajectory of the task"
NO_PROMPT = "the trajectory has no prompt before its first assistant turn"


@dataclass
class AgentData:
    tasks: list[dict[str, Any]]
    refused: dict[str, int]
    replay: list[dict[str, Any]]  # the replay file's records (app.training.replay)
    schemas: list[dict[str, Any]]  # every tool the tasks offer, one schema per name
    traces: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


def _candidates(
    trace: Trace, reviews: list[Review], gold: Adjudication | None
) -> list[tuple[int, str, list[dict[str, Any]], str | None]]:
    """(rank, source, trajectory, answer override) for one trace; lower rank is better."""
    out = []
    if gold is not None:
        if gold.corrected_messages:
            out.append((1, "lead_corrected", gold.corrected_messages, None))
        elif gold.decision == "approve":
            out.append((2, "lead_approved", trace.messages, None))
        elif gold.corrected_output:
            out.append((5, "lead_answer", trace.messages, gold.corrected_output))
        return out  # a lead's verdict overrides the judges on this trace
    fixed = [r for r in reviews if r.decision == "modify" and r.corrected_messages]
    if fixed:
        out.append((3, "judge_corrected", fixed[0].corrected_messages, None))
    decisions = Counter(r.decision for r in reviews)
    if reviews and decisions.most_common(1)[0][0] == "approve":
        out.append((4, "judges_approved", trace.messages, None))
    answers = [r.corrected_output for r in reviews if r.corrected_output]
    if answers and not fixed:
        out.append((5, "judge_answer", trace.messages, answers[0]))
    return out


def _task(trace: Trace, messages: list[dict[str, Any]], answer: str | None) -> dict | None:
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
    if not first:
        return None
    rest = to_chat(messages[first:])
    reference = reference_from(rest)
    if answer is not None:
        reference = {"answer": answer, "tool_calls": []}
    return {
        "kind": "agent",
        "task_key": task_of(trace),
        "prompt": to_chat(messages[:first]),
        "tools": tool_schemas(trace.tools),
        "reference": reference,
    }


def _reviewed(session: Session, groups: set[str]) -> list[Trace]:
    """The reviewed traces of the groups (a task key's traces, or a task-less trace)."""
    keys = [g for g in groups if not g.startswith("trace:")]
    ids = [int(g[6:]) for g in groups if g.startswith("trace:")]
    q = select(Trace).where(Trace.task_key.in_(keys or [""]) | Trace.id.in_(ids or [0]))
    traces = list(session.scalars(q.order_by(Trace.id)))
    tids = [t.id for t in traces] or [0]
    seen = set(
        session.scalars(
            select(Review.trace_id).where(Review.trace_id.in_(tids), Review.status == "submitted")
        )
    )
    seen |= set(
        session.scalars(select(Adjudication.trace_id).where(Adjudication.trace_id.in_(tids)))
    )
    return [t for t in traces if t.id in seen]


def agent_data(session: Session, snap: DatasetSnapshot, graders: list[GraderSpec]) -> AgentData:
    rows = snapshot_rows(session, snap)
    split = {group_of(p): s for p, s in rows}
    traces = _reviewed(session, set(split))
    tids = [t.id for t in traces] or [0]
    reviews: dict[int, list[Review]] = defaultdict(list)
    for r in session.scalars(
        select(Review)
        .where(Review.trace_id.in_(tids), Review.status == "submitted")
        .order_by(Review.id)
    ):
        reviews[r.trace_id].append(r)
    gold = {
        a.trace_id: a
        for a in session.scalars(
            select(Adjudication).where(Adjudication.trace_id.in_(tids)).order_by(Adjudication.id)
        )
    }
    best: dict[str, tuple[int, int, str, Trace, list, str | None]] = {}
    for t in traces:
        for rank, source, messages, answer in _candidates(t, reviews[t.id], gold.get(t.id)):
            key = task_of(t)
            if key not in best or (rank, t.id) < best[key][:2]:
                best[key] = (rank, t.id, source, t, messages, answer)
    refused: Counter[str] = Counter()
    tasks, by_source = [], Counter()
    for group in sorted(split):
        if group not in best:
            refused[NO_TRAJECTORY] += 1
            continue
        _, _, source, trace, messages, answer = best[group]
        task = _task(trace, messages, answer)
        if task is None:
            refused[NO_PROMPT] += 1
            continue
        reasons = [
            f"{why} ({g.name} grader)"
            for g in graders
            if g.path is None and (why := unjudgeable(g.name, task["reference"]))
        ]
        if reasons:
            refused[reasons[0]] += 1
            continue
        tasks.append({**task, "split": split[group], "trace_ids": [trace.id], "source": source})
        by_source[source] += 1
    schemas: dict[str, dict[str, Any]] = {}
    for t in traces:
        for s in tool_schemas(t.tools):
            schemas.setdefault(s["function"]["name"], s)
    return AgentData(
        tasks,
        dict(refused),
        replay_lines(traces, list(schemas.values())),
        list(schemas.values()),
        traces=len(traces),
        by_source=dict(by_source),
    )


class AgentRun:
    """Agent tasks and the environment they run in, ready to be written to the run directory."""

    def __init__(self, data, environment: str, report):
        self.data, self.environment, self.report = data, environment, report
        self.tasks = data.tasks
        self.source = {
            "source": "agent tasks",
            "method": "the conversation up to the first assistant turn, played out with the "
            "environment's tools, scored by graders against the task's best trajectory",
            "judgements": sorted(data.by_source),
            "by_source": data.by_source,
            "refused": data.refused,
        }

    def write(self, run_dir: Path) -> dict[str, Any]:
        """The environment's copy (a file) or the replay data; returns config["environment"]."""
        if self.report is None:
            path = run_dir / "data" / "replay.jsonl"
            sha = write_atomic(path, _jsonl(self.data.replay))
            names = [s["function"]["name"] for s in self.data.schemas]
            return {"kind": "replay", "path": str(path.resolve()), "sha256": sha, "tools": names}
        path = run_dir / "environment.py"
        sha = write_atomic(path, Path(self.report.path).read_bytes())
        return {
            "kind": "file",
            "path": str(path.resolve()),
            "source": str(Path(self.environment).resolve()),
            "sha256": sha,
            "form": self.report.kind,
            "tools": self.report.names,
        }


def prepare_agent(session: Session, snap: DatasetSnapshot, graders, environment: str) -> AgentRun:
    """The snapshot's agent tasks; an environment file is checked against their tools."""
    if is_verdict_snapshot(snap):
        raise EnvironmentFileError(
            f"snapshot {snap.name!r} holds verdicts: agent GRPO needs a snapshot of pairs"
        )
    data = agent_data(session, snap, graders)
    if environment == "replay":
        bad = check_schemas(data.schemas)
        if bad:
            raise EnvironmentFileError("replay: " + "; ".join(bad))
        return AgentRun(data, environment, None)
    return AgentRun(data, environment, check_environment(Path(environment), data.schemas))


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in records
    )
