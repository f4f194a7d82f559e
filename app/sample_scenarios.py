"""The sample's agents: three domains of tool-using support conversations (refunds, shipment
tracking, IT helpdesk), each well handled or flawed in a specific way, generated from a seed.

Pure Python (no database): `app.sample` imports the traces it writes from here, and the sample's
environment file (`app/sample_environment.py`) rebuilds the same world from the same seed, so
it can run inside the trainer process.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

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


def generate(n: int, seed: int = 7) -> list[Scenario]:
    rng = random.Random(seed)
    domains = list(GENERATORS)
    return [GENERATORS[domains[i % 3]](rng, rng.random() < 0.55) for i in range(n)]
