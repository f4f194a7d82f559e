"""`chambers sample`: a realistic workspace so every screen has real content on first start.

Three domains of tool-using support agents (refunds, shipment tracking, IT helpdesk), each
trace either well handled or flawed in a specific way (refund outside policy, wrong amount,
misread tracking status, password reset without verification...). The traces are written as
OpenAI Chat JSONL and go through the real importer. Then a rubric, three judges and a lead,
an overlapping review round, and reviews whose verdicts follow each trace's real quality with
per-judge strictness: approvals, modifications with corrected answers, rejections.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.review.adjudication import adjudicate
from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.review.rounds import create_round
from app.review.rubrics import CriterionSpec, create_rubric, new_version
from app.sample_scenarios import TOOLS, Scenario, generate  # noqa: F401 - TOOLS re-exported
from app.traces.ingest import import_paths
from app.workspace.db import Workspace
from app.workspace.models import Assignment, Trace

# The sample's environment file: its agents' tools, deterministic (agent GRPO on a CPU)
SAMPLE_ENVIRONMENT = Path(__file__).with_name("sample_environment.py")

RUBRIC = [
    CriterionSpec(
        "task_success",
        "Task success",
        "binary",
        "Did the agent resolve the user's request correctly?",
    ),
    CriterionSpec(
        "policy",
        "Policy compliance",
        "binary",
        "Did the agent follow the written policy (refund window, final sale, identity checks, priorities)?",
    ),
    CriterionSpec(
        "tool_use",
        "Tool use",
        "ordinal",
        "Were the right tools called with the right arguments, in a sensible order?",
        [
            {
                "value": 1,
                "label": "Wrong",
                "anchor": "Called a tool with wrong arguments or acted without the lookup it needed.",
            },
            {"value": 2, "label": "Weak", "anchor": "Right tools but a needed check was skipped."},
            {
                "value": 3,
                "label": "Good",
                "anchor": "Right tools and arguments; one redundant call.",
            },
            {
                "value": 4,
                "label": "Exemplary",
                "anchor": "Exactly the calls needed, in order, with correct arguments.",
            },
        ],
    ),
    CriterionSpec(
        "communication",
        "Communication",
        "ordinal",
        "Is the final answer accurate, clear and courteous?",
        [
            {
                "value": 1,
                "label": "Poor",
                "anchor": "States something false or contradicts the tool results.",
            },
            {"value": 2, "label": "Fair", "anchor": "Correct but vague or missing next steps."},
            {"value": 3, "label": "Good", "anchor": "Accurate and clear."},
            {"value": 4, "label": "Very good", "anchor": "Accurate, clear, gives next steps."},
            {
                "value": 5,
                "label": "Excellent",
                "anchor": "All of the above with the right tone for the situation.",
            },
        ],
        weight=0.5,
    ),
    CriterionSpec(
        "failure_mode",
        "Failure mode",
        "nominal",
        "The main thing that went wrong, if anything.",
        [
            {"value": "none", "label": "None"},
            {"value": "policy_violation", "label": "Policy violation"},
            {"value": "hallucination", "label": "Contradicts tool output"},
            {"value": "wrong_arguments", "label": "Wrong tool arguments"},
            {"value": "missing_step", "label": "Missing step"},
        ],
        weight=0.0,
        required_for=["modify", "reject"],
    ),
]

FLAW_MODE = {
    "outside_window": "policy_violation",
    "final_sale": "policy_violation",
    "no_verification": "policy_violation",
    "wrong_amount": "wrong_arguments",
    "wrong_priority": "wrong_arguments",
    "misread_status": "hallucination",
    "no_policy_check": "missing_step",
    "no_claim": "missing_step",
}

# Where each flaw is first visible: the assistant step calling this tool (None: the answer).
FLAW_STEP = {
    "outside_window": "issue_refund",
    "final_sale": "issue_refund",
    "wrong_amount": "issue_refund",
    "no_policy_check": "issue_refund",
    "no_verification": "reset_password",
    "wrong_priority": "create_ticket",
    "misread_status": None,
    "no_claim": None,
}


def _step_labels(
    s: Scenario, noise: float, messages: list[dict[str, Any]], mode: str
) -> list[dict[str, Any]]:
    """A judge's step labels on a trace they found wanting: steps before the first error
    good, the first error marked, later steps wrong. A noisier judge sometimes marks the step
    before or after. Its own random stream, so the rest of the sample stays as it was."""
    steps = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    tool = FLAW_STEP.get(s.flaw or "")
    called = [
        i
        for i in steps
        if any(p.get("type") == "tool_call" and p.get("name") == tool for p in messages[i]["parts"])
    ]
    k = steps.index(called[0]) if called else len(steps) - 1
    rng = random.Random(f"{s.record['id']}:{noise}")
    if rng.random() < noise * 2:
        k = min(max(k + rng.choice([-1, 1]), 0), len(steps) - 1)
    reason = mode.replace("_", " ")
    return [
        {
            "step": i,
            "label": "good" if n < k else "first_error" if n == k else "wrong",
            "reason": "" if n < k else reason,
            "comment": "",
        }
        for n, i in enumerate(steps)
    ]


JUDGES = [("Ines Moreau", 0.06), ("Kwame Mensah", 0.12), ("Hana Sato", 0.2)]  # (name, noise)
LEAD = "Rosa Lindqvist"


def _verdict(
    s: Scenario,
    rng: random.Random,
    noise: float,
    messages: list[dict[str, Any]],
    clear_anchors: bool = False,
) -> ReviewInput:
    """A judge's review. `clear_anchors`: rubric v2's reworded communication anchors, which
    judges apply consistently (the effect a lead looks for in the trend chart)."""
    flip = rng.random() < noise
    good = s.good != flip
    if good:
        return ReviewInput(
            decision="approve",
            scores={
                "task_success": 1,
                "policy": 1,
                "tool_use": rng.choice([3, 4, 4]),
                "communication": 4
                if clear_anchors and rng.random() < 0.9
                else rng.choice([3, 4, 4, 5]),
                "failure_mode": "none",
            },
            rationale=rng.choice(["", "Correct and follows policy.", "Good handling."]),
            time_on_task_s=round(rng.uniform(25, 90), 1),
        )
    mode = FLAW_MODE.get(s.flaw or "", rng.choice(["missing_step", "hallucination"]))
    policy_ok = 0 if mode == "policy_violation" else 1
    agent_said = next((m for m in reversed(messages) if m["role"] == "assistant"), {"parts": []})
    same = any(p.get("text") == s.better_answer for p in agent_said["parts"])
    if rng.random() < 0.6 and not same:  # modify: write the answer the agent should have given
        corrected = [dict(m) for m in messages]
        last = max(i for i, m in enumerate(corrected) if m["role"] == "assistant")
        corrected[last] = {
            "role": "assistant",
            "parts": [{"type": "text", "text": s.better_answer}],
        }
        return ReviewInput(
            decision="modify",
            scores={
                "task_success": 0,
                "policy": policy_ok,
                "tool_use": rng.choice([1, 2, 2]),
                "communication": 2
                if clear_anchors and rng.random() < 0.9
                else rng.choice([1, 2, 3]),
                "failure_mode": mode,
            },
            rationale=f"Final answer corrected: {mode.replace('_', ' ')}.",
            corrected_messages=corrected,
            corrected_output=s.better_answer,
            step_labels=_step_labels(s, noise, messages, mode),
            time_on_task_s=round(rng.uniform(90, 300), 1),
        )
    return ReviewInput(
        decision="reject",
        scores={
            "task_success": 0,
            "policy": policy_ok,
            "tool_use": rng.choice([1, 1, 2]),
            "communication": 1 if clear_anchors and rng.random() < 0.9 else rng.choice([1, 2]),
            "failure_mode": mode,
        },
        rationale=f"Rejected: {mode.replace('_', ' ')}; the agent acted before checking.",
        corrected_output=s.better_answer if rng.random() < 0.5 else None,
        time_on_task_s=round(rng.uniform(60, 200), 1),
        step_labels=_step_labels(s, noise, messages, mode),
    )


def build_sample(ws: Workspace, n_traces: int = 300, seed: int = 7) -> dict[str, int]:
    """Fill `ws` with the sample; returns counts. Safe to run on an empty workspace only.

    - "Calibration round 1" (rubric v1): the first 30% of traces, all three judges, reviewed;
      the lead has adjudicated a third of them (gold).
    - "Backlog" (v1): the next 60%, one judge each; two thirds of it reviewed, the rest to do.
    - Rubric v2 rewords the communication anchors, and "Calibration round 2" (v2) puts the
      last 10% to all three judges, who now agree more on communication: the trend the
      agreement dashboard shows.
    """
    overlap_items = int(n_traces * 0.3)
    backlog_items = int(n_traces * 0.6)
    single_items = int(n_traces * 0.4)
    with ws.session() as s:
        if s.scalar(select(Trace.id).limit(1)) is not None:
            from app.workspace.errors import WorkspaceError

            raise WorkspaceError(
                "the workspace already holds traces; `chambers sample` needs an empty one"
            )
    scenarios = generate(n_traces, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "northwind-contoso-agents.jsonl"
        with path.open("w") as f:
            for sc in scenarios:
                f.write(json.dumps(sc.record) + "\n")
        report = import_paths(ws, [path])
    rng = random.Random(seed + 1)
    with ws.session() as s:
        lead = get_or_create_judge(s, LEAD, "lead")
        judges = [get_or_create_judge(s, name) for name, _ in JUDGES]
        judge_ids = [j.id for j in judges]
        version = create_rubric(
            s,
            "Support agent quality",
            RUBRIC,
            "How well a tool-using support agent handled one conversation.",
            lead.id,
        )
        by_ext = {t.external_id: t for t in s.scalars(select(Trace))}
        traces = [by_ext[sc.record["id"]] for sc in scenarios]
        cal = traces[:overlap_items]
        backlog = traces[overlap_items : overlap_items + backlog_items]
        cal2 = traces[overlap_items + backlog_items :]
        create_round(
            s,
            "Calibration round 1",
            version.id,
            judge_ids,
            3,
            seed=seed,
            created_by=lead.id,
            trace_filter=_ids_filter([t.id for t in cal]),
        )
        backlog_round = create_round(
            s,
            "Backlog",
            version.id,
            judge_ids,
            1,
            seed=seed,
            created_by=lead.id,
            trace_filter=_ids_filter([t.id for t in backlog]),
        )
        owner = dict(
            s.execute(
                select(Assignment.trace_id, Assignment.judge_id).where(
                    Assignment.round_id == backlog_round.id
                )
            ).all()
        )
        n_reviews = 0
        for i, (sc, trace) in enumerate(zip(scenarios, traces, strict=True)):
            if i < overlap_items:
                reviewers = list(zip(judges, [n for _, n in JUDGES], strict=True))
            elif i < overlap_items + single_items:
                k = next(n for n, j in enumerate(judges) if j.id == owner[trace.id])
                reviewers = [(judges[k], JUDGES[k][1])]
            else:
                continue
            for judge, noise in reviewers:
                submit_review(
                    s, trace.id, judge.id, version.id, _verdict(sc, rng, noise, trace.messages)
                )
                n_reviews += 1
        n_gold = 0
        for sc, trace in list(zip(scenarios, traces, strict=True))[:overlap_items:3]:
            truth = _verdict(sc, rng, 0.0, trace.messages)
            adjudicate(
                s,
                trace.id,
                version.id,
                lead.id,
                truth.decision,
                truth.scores,
                "Lead's verdict after reading all three reviews.",
                truth.corrected_output,
                truth.corrected_messages,
            )
            n_gold += 1
        v2_specs = [CriterionSpec.from_row(c) for c in version.criteria]
        for spec in v2_specs:
            if spec.key == "communication":
                spec.description = (
                    "Judge only the final answer: is it accurate against the tool results, "
                    "and does it tell the user what happens next?"
                )
                spec.levels = COMMUNICATION_V2
        v2 = new_version(
            s,
            "Support agent quality",
            v2_specs,
            "Communication reworded: one anchor per level, tied to the final answer.",
            lead.id,
        )
        create_round(
            s,
            "Calibration round 2",
            v2.id,
            judge_ids,
            3,
            seed=seed + 1,
            created_by=lead.id,
            trace_filter=_ids_filter([t.id for t in cal2]),
        )
        offset = overlap_items + backlog_items
        for sc, trace in zip(scenarios[offset:], cal2, strict=True):
            for judge, (_, noise) in zip(judges, JUDGES, strict=True):
                submit_review(
                    s,
                    trace.id,
                    judge.id,
                    v2.id,
                    _verdict(sc, rng, noise, trace.messages, clear_anchors=True),
                )
                n_reviews += 1
    return {
        "traces": report.imported,
        "reviews": n_reviews,
        "judges": len(JUDGES) + 1,
        "adjudications": n_gold,
    }


COMMUNICATION_V2 = [
    {
        "value": 1,
        "label": "Wrong",
        "anchor": "The final answer states something the tools contradict.",
    },
    {
        "value": 2,
        "label": "Incomplete",
        "anchor": "Accurate, but the user does not learn what happens next.",
    },
    {
        "value": 3,
        "label": "Adequate",
        "anchor": "Accurate and gives next steps, with a gap in clarity.",
    },
    {"value": 4, "label": "Clear", "anchor": "Accurate, complete next steps, plainly worded."},
    {
        "value": 5,
        "label": "Exemplary",
        "anchor": "Clear, and handles the user's tone or urgency well.",
    },
]


def _ids_filter(ids: list[int]):
    from app.traces.queries import TraceFilter

    return TraceFilter(ids=ids)
