"""The internal trace model every importer maps into.

A message is a plain JSON-able dict, stored as is:

    {"role": "system" | "user" | "assistant" | "tool", "parts": [part, ...], "name"?: str}

and a part is one of

    {"type": "text", "text": str}
    {"type": "reasoning", "text": str}
    {"type": "tool_call", "id": str, "name": str, "arguments": <parsed JSON>}
        (+ "arguments_invalid": true and the raw string when the arguments are not JSON)
    {"type": "tool_result", "call_id": str, "content": str, "is_error": bool}

Nothing downstream of the importers knows the source format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "reasoning", "tool_call", "tool_result")


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def message(role: str, *parts: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role, "parts": list(parts)}
    if name:
        msg["name"] = name
    return msg


def message_text(msg: dict[str, Any]) -> str:
    """The visible text of a message (text parts only), joined by blank lines."""
    return "\n\n".join(p["text"] for p in msg.get("parts", []) if p.get("type") == "text")


def tool_calls(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in msg.get("parts", []) if p.get("type") == "tool_call"]


def count_tool_calls(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for p in m["parts"] if p["type"] == "tool_call")


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class TraceRecord:
    """A trace ready to store. Derived fields are filled by `finish()`."""

    source: str
    messages: list[dict[str, Any]]
    external_id: str | None = None
    task: str | None = None
    final_output: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    outcome: float | None = None
    outcome_label: str | None = None
    outcome_source: str | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)
    split: str | None = None

    def finish(self) -> TraceRecord:
        """Fill task and final output from the messages when the source did not give them."""
        if self.task is None:
            first_user = next((m for m in self.messages if m["role"] == "user"), None)
            self.task = message_text(first_user) if first_user else None
        if self.final_output is None:
            last = next((m for m in reversed(self.messages) if m["role"] == "assistant"), None)
            text = message_text(last) if last else ""
            self.final_output = text or None
        return self

    @property
    def n_messages(self) -> int:
        return len(self.messages)

    @property
    def n_tool_calls(self) -> int:
        return count_tool_calls(self.messages)

    @property
    def task_key(self) -> str | None:
        return sha256_hex(self.task.strip().encode()) if self.task else None

    def encoded(self) -> dict[str, str]:
        """The JSON columns serialised once, for storage and for the hash. Keys keep the
        source's order, which is stable for the same content (sorting cost 10% of an import)."""
        return {
            "messages": orjson.dumps(self.messages).decode(),
            "tools": orjson.dumps(self.tools).decode(),
            "metadata": orjson.dumps(self.metadata, default=str).decode(),
            "scores": orjson.dumps(self.scores).decode(),
        }

    def content_hash(self, encoded: dict[str, str] | None = None) -> str:
        """Identity of the content: re-importing the same trace yields the same hash."""
        enc = encoded or self.encoded()
        head = canonical_json(
            [self.external_id, self.final_output, self.outcome, self.outcome_label]
        )
        return sha256_hex(head + enc["messages"].encode() + enc["tools"].encode())
