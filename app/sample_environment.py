"""The sample's environment file: the tools of the sample's three support agents (refunds,
shipping, helpdesk), deterministic, so agent GRPO runs end to end on a CPU.

The world is the sample workspace's: its orders, parcels and employees are rebuilt from the
same seeded generator that wrote the traces (`app.sample_scenarios`), so looking up an order
named in a sample conversation answers what the trace's tool answered. The business rules are
real code: the refund policy (30 days, no final sale), a refund never above the amount paid
and never twice, a claim only for a parcel marked delivered, a reset only for a known employee.
Ids the tools create are derived from their inputs (no randomness). Used with
`chambers train grpo --environment app/sample_environment.py` (or the run dialog's "sample
environment").
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from app.sample_scenarios import generate

SEED = 7  # `chambers sample`'s default seed
WORLD_SIZE = 1000  # the generator is a prefix: this covers any sample of up to 1000 traces
KEYS = {"lookup_order": "order_id", "track_shipment": "tracking_number", "lookup_employee": "email"}


@lru_cache(maxsize=1)
def world() -> dict[str, dict[str, Any]]:
    """Per lookup tool, its records by key, read off the generated conversations."""
    out: dict[str, dict[str, Any]] = {name: {} for name in KEYS}
    for sc in generate(WORLD_SIZE, SEED):
        msgs = sc.record["messages"]
        results = {m.get("tool_call_id"): m["content"] for m in msgs if m["role"] == "tool"}
        for m in msgs:
            for c in m.get("tool_calls") or []:
                name = c["function"]["name"]
                if name in KEYS and c["id"] in results:
                    key = json.loads(c["function"]["arguments"])[KEYS[name]]
                    out[name].setdefault(key, json.loads(results[c["id"]]))
    return out


def _id(prefix: str, *parts: Any) -> str:
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return f"{prefix}-{int(digest[:8], 16) % 9000 + 1000}"


def _out(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


class Environment:
    """One support desk: the orders, parcels and staff directory, and what this episode did."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, **task: Any) -> None:
        """A new episode: no refund issued, claim opened, reset sent or ticket created yet."""
        self.refunded: dict[str, float] = {}
        self.claims: dict[str, str] = {}
        self.resets: list[str] = []
        self.tickets: list[dict[str, str]] = []

    def lookup_order(self, order_id: str) -> str:
        """Look up an order by id.

        Args:
            order_id: The order number, e.g. NW-123456.
        """
        order = world()["lookup_order"].get(order_id.strip())
        return _out(order) if order else _out({"error": f"no order {order_id}"})

    def check_refund_policy(self, category: str, days_since_delivery: int) -> str:
        """Check refund eligibility.

        Args:
            category: The item's category, as on the order (final-sale items are not refundable).
            days_since_delivery: Days since the order was delivered.
        """
        if category == "final-sale":
            return _out({"eligible": False, "reason": "final sale"})
        if days_since_delivery > 30:
            return _out({"eligible": False, "reason": "outside 30-day window"})
        return _out({"eligible": True, "reason": "within 30-day window"})

    def issue_refund(self, order_id: str, amount: float, reason: str) -> str:
        """Refund an order.

        Args:
            order_id: The order number.
            amount: The amount to refund, at most the amount paid.
            reason: Why the customer returns it.
        """
        order = world()["lookup_order"].get(order_id.strip())
        if not order:
            return _out({"error": f"no order {order_id}"})
        if order_id in self.refunded:
            return _out({"error": f"order {order_id} was refunded already"})
        if amount <= 0 or amount > order["amount_paid"] + 1e-9:
            return _out({"error": f"amount {amount} exceeds the {order['amount_paid']} paid"})
        self.refunded[order_id] = amount
        return _out({"refund_id": _id("RF", order_id, amount), "status": "processed"})

    def track_shipment(self, tracking_number: str) -> str:
        """Carrier status of a parcel.

        Args:
            tracking_number: The parcel's tracking number.
        """
        parcel = world()["track_shipment"].get(tracking_number.strip())
        return _out(parcel) if parcel else _out({"error": f"no parcel {tracking_number}"})

    def open_carrier_claim(self, tracking_number: str, note: str) -> str:
        """Open a lost-parcel claim.

        Args:
            tracking_number: The parcel's tracking number.
            note: What the customer reports.
        """
        parcel = world()["track_shipment"].get(tracking_number.strip())
        if not parcel:
            return _out({"error": f"no parcel {tracking_number}"})
        if parcel.get("status") != "delivered":
            return _out({"error": "a claim needs a parcel marked delivered; it is in transit"})
        claim = self.claims.setdefault(tracking_number, _id("CL", tracking_number))
        return _out({"claim_id": claim})

    def lookup_employee(self, email: str) -> str:
        """Find an employee record.

        Args:
            email: The employee's work email.
        """
        person = world()["lookup_employee"].get(email.strip().lower())
        return _out(person) if person else _out({"error": f"no employee {email}"})

    def reset_password(self, employee_id: str) -> str:
        """Send a password reset link.

        Args:
            employee_id: The employee id, e.g. E12345.
        """
        known = {p["employee_id"] for p in world()["lookup_employee"].values()}
        if employee_id.strip() not in known:
            return _out({"error": f"no employee {employee_id}"})
        self.resets.append(employee_id)
        return _out({"sent": True})

    def create_ticket(self, summary: str, priority: str) -> str:
        """Open a helpdesk ticket.

        Args:
            summary: One line on the problem.
            priority: P1 (outage for many users) to P4.
        """
        if priority not in ("P1", "P2", "P3", "P4"):
            return _out({"error": f"priority must be P1, P2, P3 or P4, not {priority!r}"})
        ticket = {"ticket": _id("INC", summary, priority), "priority": priority}
        self.tickets.append(ticket)
        return _out({"ticket": ticket["ticket"]})
