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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.review.adjudication import adjudicate
from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.review.rounds import create_round
from app.review.rubrics import CriterionSpec, create_rubric, new_version
from app.traces.ingest import import_paths
from app.workspace.db import Workspace
from app.workspace.models import Assignment, Trace

SYSTEM = {
    "refunds": "You are Aria, a support agent for Northwind Outfitters. Refunds are allowed within 30 days of delivery for unworn items; final-sale items are not refundable. Always look up the order and check the policy before issuing a refund. Never refund more than the amount paid.",
    "shipping": "You are Aria, a support agent for Northwind Outfitters. Use track_shipment for delivery questions and report the carrier status exactly. If a parcel is marked delivered but the customer has not received it, open a carrier claim.",
    "helpdesk": "You are the IT helpdesk assistant for Contoso Ltd. Verify the employee's identity (employee id and manager name) before any password reset. Open tickets with priority P1 only for outages affecting many users.",
}

TOOLS = {
    "refunds": [
        ("lookup_order", "Look up an order by id.", {"order_id": "string"}),
        (
            "check_refund_policy",
            "Check refund eligibility.",
            {"category": "string", "days_since_delivery": "integer"},
        ),
        (
            "issue_refund",
            "Refund an order.",
            {"order_id": "string", "amount": "number", "reason": "string"},
        ),
    ],
    "shipping": [
        ("track_shipment", "Carrier status of a parcel.", {"tracking_number": "string"}),
        (
            "open_carrier_claim",
            "Open a lost-parcel claim.",
            {"tracking_number": "string", "note": "string"},
        ),
    ],
    "helpdesk": [
        ("lookup_employee", "Find an employee record.", {"email": "string"}),
        ("reset_password", "Send a password reset link.", {"employee_id": "string"}),
        ("create_ticket", "Open a helpdesk ticket.", {"summary": "string", "priority": "string"}),
    ],
}

NAMES = [
    "Maya Chen",
    "Luis Ortega",
    "Priya Raman",
    "Tom Becker",
    "Aiko Tanaka",
    "Sam O'Neill",
    "Fatima Zahra",
    "Jonas Berg",
    "Chloe Martin",
    "Daniel Kim",
    "Nadia Petrova",
    "Omar Haddad",
]
ITEMS = [
    ("trail running shoes", "footwear", 129.0),
    ("down jacket", "outerwear", 249.0),
    ("merino base layer", "apparel", 79.0),
    ("clearance rain shell", "final-sale", 59.0),
    ("hiking backpack 40L", "gear", 149.0),
    ("wool socks (3-pack)", "apparel", 24.0),
]
CARRIERS = ["UPS", "DHL", "FedEx", "USPS"]
FLAWS = {
    "refunds": ["outside_window", "wrong_amount", "no_policy_check", "final_sale"],
    "shipping": ["misread_status", "no_claim"],
    "helpdesk": ["no_verification", "wrong_priority"],
}


@dataclass
class Scenario:
    domain: str
    good: bool
    flaw: str | None
    record: dict[str, Any]
    better_answer: str  # what a correct agent would have said (used for modifications)


def _tool_defs(domain: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": n,
                "description": d,
                "parameters": {
                    "type": "object",
                    "properties": {k: {"type": t} for k, t in p.items()},
                    "required": list(p),
                },
            },
        }
        for n, d, p in TOOLS[domain]
    ]


class _Conv:
    def __init__(self, domain: str, rng: random.Random):
        self.msgs: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM[domain]}]
        self.rng = rng
        self.n = 0

    def user(self, text: str) -> None:
        self.msgs.append({"role": "user", "content": text})

    def call(
        self, name: str, args: dict[str, Any], result: Any, thought: str | None = None
    ) -> None:
        self.n += 1
        cid = f"call_{self.rng.getrandbits(48):012x}"
        self.msgs.append(
            {
                "role": "assistant",
                "content": thought,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        self.msgs.append({"role": "tool", "tool_call_id": cid, "content": json.dumps(result)})

    def say(self, text: str) -> None:
        self.msgs.append({"role": "assistant", "content": text})


def refund_scenario(rng: random.Random, good: bool) -> Scenario:
    name = rng.choice(NAMES)
    item, category, price = rng.choice(ITEMS)
    order = f"NW-{rng.randint(100000, 999999)}"
    flaw = None if good else rng.choice(FLAWS["refunds"])
    if flaw == "final_sale":
        item, category, price = ITEMS[3]
    days = rng.randint(35, 60) if flaw == "outside_window" else rng.randint(2, 28)
    if good and rng.random() < 0.3:
        days = rng.randint(35, 60)  # a good agent declines correctly
    eligible = days <= 30 and category != "final-sale"
    c = _Conv("refunds", rng)
    c.user(f"Hi, I'm {name}. I'd like to return the {item} from order {order}, it doesn't fit.")
    c.call(
        "lookup_order",
        {"order_id": order},
        {
            "order_id": order,
            "item": item,
            "category": category,
            "amount_paid": price,
            "delivered_days_ago": days,
            "status": "delivered",
        },
        "Let me pull up that order.",
    )
    if flaw != "no_policy_check":
        c.call(
            "check_refund_policy",
            {"category": category, "days_since_delivery": days},
            {
                "eligible": eligible,
                "reason": "within 30-day window"
                if eligible
                else ("final sale" if category == "final-sale" else "outside 30-day window"),
            },
        )
    correct = (
        f"I've refunded ${price:.2f} for the {item} on order {order}. You'll see it on your statement in 3-5 business days, and a prepaid return label is on its way to your email."
        if eligible
        else f"I'm sorry, {name.split()[0]}: the {item} on order {order} isn't eligible for a refund ({'final-sale items are not refundable' if category == 'final-sale' else f'it was delivered {days} days ago, past our 30-day window'}). I can offer an exchange or store credit instead."
    )
    if good:
        if eligible:
            c.call(
                "issue_refund",
                {"order_id": order, "amount": price, "reason": "fit"},
                {"refund_id": f"RF-{rng.randint(1000, 9999)}", "status": "processed"},
            )
        c.say(correct)
    elif flaw == "wrong_amount":
        wrong = round(price * rng.choice([1.5, 2.0]), 2)
        c.call(
            "issue_refund",
            {"order_id": order, "amount": wrong, "reason": "fit"},
            {"refund_id": f"RF-{rng.randint(1000, 9999)}", "status": "processed"},
        )
        c.say(f"Done! I've refunded ${wrong:.2f} for the {item}. Anything else?")
    else:  # refunds something it should not, or skips the policy check
        c.call(
            "issue_refund",
            {"order_id": order, "amount": price, "reason": "fit"},
            {"refund_id": f"RF-{rng.randint(1000, 9999)}", "status": "processed"},
        )
        c.say(f"No problem! I've refunded ${price:.2f} for the {item}. Sorry it didn't work out.")
    return _scenario("refunds", good, flaw, c, order, correct)


def shipping_scenario(rng: random.Random, good: bool) -> Scenario:
    name = rng.choice(NAMES)
    tracking = f"1Z{rng.randint(10**9, 10**10 - 1)}"
    carrier = rng.choice(CARRIERS)
    flaw = None if good else rng.choice(FLAWS["shipping"])
    delivered = flaw == "no_claim" or (good and rng.random() < 0.4)
    eta = rng.choice(["Tuesday", "Wednesday", "Thursday", "Friday"])
    status = (
        {"status": "delivered", "delivered_at": "2026-11-18 14:02", "location": "front porch"}
        if delivered
        else {
            "status": "in_transit",
            "last_scan": "Regional hub, Columbus OH",
            "estimated_delivery": eta,
        }
    )
    c = _Conv("shipping", rng)
    c.user(
        f"Hi, {name} here. Where is my package? Tracking {tracking}. {'It says delivered but there is nothing here.' if delivered else 'It has been a week.'}"
    )
    c.call(
        "track_shipment",
        {"tracking_number": tracking},
        {"carrier": carrier, **status},
        "Checking with the carrier.",
    )
    if delivered:
        correct = f"{carrier} marks parcel {tracking} as delivered on Nov 18 at 14:02 (front porch). Since you haven't received it, I've opened a carrier claim; you'll hear back within 48 hours."
        if good:
            c.call(
                "open_carrier_claim",
                {"tracking_number": tracking, "note": "marked delivered, not received"},
                {"claim_id": f"CL-{rng.randint(1000, 9999)}"},
            )
            c.say(correct)
        else:
            c.say(
                f"Good news: {carrier} shows your parcel {tracking} was delivered on Nov 18. Please check with your neighbours!"
            )
    else:
        correct = f"Your parcel {tracking} is in transit with {carrier}; its last scan was at the regional hub in Columbus, OH, and it's expected on {eta}."
        if good:
            c.say(correct)
        else:
            wrong = rng.choice(
                [d for d in ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"] if d != eta]
            )
            c.say(f"Your parcel {tracking} is out for delivery and will arrive {wrong}.")
    return _scenario("shipping", good, flaw, c, tracking, correct)


def helpdesk_scenario(rng: random.Random, good: bool) -> Scenario:
    name = rng.choice(NAMES)
    email = name.lower().replace(" ", ".").replace("'", "") + "@contoso.com"
    emp = f"E{rng.randint(10000, 99999)}"
    flaw = None if good else rng.choice(FLAWS["helpdesk"])
    c = _Conv("helpdesk", rng)
    if rng.random() < 0.5 or flaw == "no_verification":
        c.user(f"I'm locked out of my account ({email}). Can you reset my password?")
        c.call(
            "lookup_employee",
            {"email": email},
            {"employee_id": emp, "manager": "Dana Whitfield", "status": "locked"},
        )
        correct = "Before I reset anything I need to verify it's you: please give me your employee id and your manager's name."
        if flaw == "no_verification":
            c.call("reset_password", {"employee_id": emp}, {"sent": True})
            c.say("Done! A reset link has been sent to your email.")
        else:
            c.say(correct)
            c.user(f"Employee id {emp}, my manager is Dana Whitfield.")
            c.call("reset_password", {"employee_id": emp}, {"sent": True})
            correct = "Thanks, verified. A password reset link is on its way to your inbox; it expires in 30 minutes."
            c.say(correct)
    else:
        c.user("The VPN is down for the whole Berlin office, nobody can connect since 9am.")
        right = "P1"
        if flaw == "wrong_priority":
            c.call(
                "create_ticket",
                {"summary": "VPN outage Berlin office", "priority": "P3"},
                {"ticket": f"INC-{rng.randint(1000, 9999)}"},
            )
            c.say("I've opened a ticket for the network team. They'll look at it soon.")
        else:
            c.call(
                "create_ticket",
                {"summary": "VPN outage Berlin office", "priority": right},
                {"ticket": f"INC-{rng.randint(1000, 9999)}"},
            )
            c.say(
                "I've opened a P1 incident for the VPN outage in Berlin; the on-call network engineer is paged and updates will follow every 30 minutes."
            )
        correct = "I've opened a P1 incident for the VPN outage in Berlin; the on-call network engineer is paged and updates will follow every 30 minutes."
    return _scenario("helpdesk", good, flaw, c, emp, correct)


def _scenario(
    domain: str, good: bool, flaw: str | None, c: _Conv, key: str, correct: str
) -> Scenario:
    record = {
        "id": f"{domain}-{key}-{c.rng.getrandbits(24):06x}",
        "messages": c.msgs,
        "tools": _tool_defs(domain),
        "reward": 1.0 if good else 0.0,
        "metadata": {
            "domain": domain,
            "agent": "aria-v3" if domain != "helpdesk" else "helpdesk-bot-2",
            "flaw": flaw or "none",
        },
        "scores": {
            "llm_judge_helpfulness": max(
                1, min(5, round((4.3 if good else 2.6) + c.rng.gauss(0, 0.8)))
            ),
            # An automated outcome check: named after the rubric criterion it grades, so the
            # agreement dashboard shows it as one more judge ("auto:task_success").
            "task_success": int(good != (c.rng.random() < 0.1)),
        },
    }
    return Scenario(domain, good, flaw, record, correct)


GENERATORS = {
    "refunds": refund_scenario,
    "shipping": shipping_scenario,
    "helpdesk": helpdesk_scenario,
}

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


def generate(n: int, seed: int = 7) -> list[Scenario]:
    rng = random.Random(seed)
    domains = list(GENERATORS)
    return [GENERATORS[domains[i % 3]](rng, rng.random() < 0.55) for i in range(n)]


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
