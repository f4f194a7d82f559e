"""A model's raw output -> the app's structured assistant message.

Chat templates of the Qwen/Hermes family (the committed tiny model's too) write tool calls as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. The parse keeps everything: text
outside the calls becomes a text part, each call a tool_call part (app.traces.model), and an
output that is not valid (unclosed tag, arguments that are not JSON, no name) is still
returned, marked invalid with the reason, so an evaluation never drops it.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.training.steps import to_chat

_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)


@dataclass
class Parsed:
    message: dict[str, Any]  # {"role": "assistant", "parts": [...]}
    valid: bool = True
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.errors) or None

    def chat(self) -> list[dict[str, Any]]:
        """The message in TRL's chat form (what the graders read)."""
        return to_chat([self.message])


def _call_part(body: str, n: int, errors: list[str]) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call", "id": f"call_{n}", "name": "", "arguments": {}}
    try:
        obj = json.loads(body)
    except ValueError as exc:
        errors.append(f"tool call {n + 1}: not JSON ({exc.msg})")
        return {**part, "arguments": body.strip(), "arguments_invalid": True}
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        errors.append(f"tool call {n + 1}: no function name")
        return {**part, "arguments": body.strip(), "arguments_invalid": True}
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            errors.append(f"tool call {n + 1} ({obj['name']}): arguments are not JSON")
            return {**part, "name": obj["name"], "arguments": args, "arguments_invalid": True}
    if not isinstance(args, dict):
        errors.append(f"tool call {n + 1} ({obj['name']}): arguments are not an object")
        return {**part, "name": obj["name"], "arguments": args, "arguments_invalid": True}
    return {**part, "name": obj["name"], "arguments": args}


def parse_output(text: str) -> Parsed:
    errors: list[str] = []
    parts: list[dict[str, Any]] = []
    pieces: list[str] = []
    pos = 0
    for n, m in enumerate(_CALL.finditer(text)):
        pieces.append(text[pos : m.start()])
        if not m.group(2):
            errors.append(f"tool call {n + 1}: <tool_call> is never closed")
        parts.append(_call_part(m.group(1), n, errors))
        pos = m.end()
    pieces.append(text[pos:])
    visible = "".join(pieces).strip()
    if "</tool_call>" in visible:
        errors.append("a </tool_call> without its <tool_call>")
    if visible:
        parts.insert(0, {"type": "text", "text": visible})
    if not parts:
        errors.append("empty output")
    return Parsed({"role": "assistant", "parts": parts}, not errors, errors)


def from_chat(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL chat messages -> internal trace messages (to render a prompt like a trace)."""
    out = []
    for m in messages:
        role = m.get("role", "user")
        if role == "tool":
            part = {
                "type": "tool_result",
                "call_id": m.get("tool_call_id") or "",
                "content": m.get("content") or "",
                "is_error": False,
            }
            out.append({"role": "tool", "parts": [part]})
            continue
        parts: list[dict[str, Any]] = []
        if m.get("content"):
            parts.append({"type": "text", "text": m["content"]})
        for i, c in enumerate(m.get("tool_calls") or []):
            fn = c.get("function", {})
            args = fn.get("arguments")
            if isinstance(args, str):
                with contextlib.suppress(ValueError):
                    args = json.loads(args)
            parts.append(
                {
                    "type": "tool_call",
                    "id": c.get("id") or f"call_{i}",
                    "name": fn.get("name", ""),
                    "arguments": args,
                }
            )
        out.append({"role": role, "parts": parts})
    return out
