"""Modify: a judge's edits to the agent's output, validated, and the diff shown before submit.

The judge may edit the final answer, the text of any assistant message, and any tool call's
name and arguments. Arguments must be JSON and, when the trace carries the tool's schema,
must satisfy it (the subset of JSON Schema that tool definitions use: type, properties,
required, enum, items, additionalProperties).
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass
from typing import Any

from app.traces.model import message_text


@dataclass(frozen=True)
class EditTarget:
    message_index: int
    part_index: int
    kind: str  # "text" or "tool_call"
    label: str


def edit_targets(messages: list[dict[str, Any]]) -> list[EditTarget]:
    """Every assistant text and tool call, in conversation order."""
    out = []
    step = 0
    for mi, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        step += 1
        for pi, part in enumerate(msg["parts"]):
            if part["type"] == "text":
                out.append(EditTarget(mi, pi, "text", f"Step {mi}: assistant text"))
            elif part["type"] == "tool_call":
                out.append(EditTarget(mi, pi, "tool_call", f"Step {mi}: call {part['name']}"))
    return out


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "arguments") -> list[str]:
    """Errors of `value` against a tool parameter schema (empty list when valid)."""
    if not isinstance(schema, dict) or not schema:
        return []
    errors: list[str] = []
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds:
        ok = False
        for k in kinds:
            expected = _TYPES.get(k)
            if (
                expected is None
                or isinstance(value, expected)
                and not (k in ("integer", "number") and isinstance(value, bool))
            ):
                ok = True
        if not ok:
            return [f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(f"{path}.{key}: required")
        for key, sub in value.items():
            if key in props:
                errors += schema_errors(sub, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key}: not allowed by the tool's schema")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def check_tool_call(
    name: str, arguments_text: str, tools: list[dict[str, Any]]
) -> tuple[Any, list[str]]:
    """Parse and validate an edited tool call: (arguments, errors)."""
    errors = []
    if not name.strip():
        errors.append("the tool name is empty")
    try:
        args = json.loads(arguments_text) if arguments_text.strip() else {}
    except json.JSONDecodeError as exc:
        return None, [
            *errors,
            f"arguments are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ]
    known = {t["name"]: t for t in tools}
    if known and name not in known:
        errors.append(f"no tool named {name!r} in this trace (known: {', '.join(sorted(known))})")
    elif name in known:
        errors += schema_errors(args, known[name].get("parameters") or {})
    return args, errors


def apply_edits(
    messages: list[dict[str, Any]], edits: dict[tuple[int, int], Any]
) -> list[dict[str, Any]]:
    """A corrected copy: edits map (message, part) to new text or {name, arguments}."""
    corrected = copy.deepcopy(messages)
    for (mi, pi), value in edits.items():
        part = corrected[mi]["parts"][pi]
        if part["type"] == "text":
            part["text"] = value
        elif part["type"] == "tool_call":
            part["name"] = value["name"]
            part["arguments"] = value["arguments"]
            part.pop("arguments_invalid", None)
    return corrected


def final_answer(messages: list[dict[str, Any]]) -> str:
    last = next(
        (m for m in reversed(messages) if m["role"] == "assistant" and message_text(m)), None
    )
    return message_text(last) if last else ""


def as_text(messages: list[dict[str, Any]]) -> list[str]:
    """A line-oriented rendering of a conversation, for diffs."""
    lines = []
    for i, m in enumerate(messages):
        for p in m["parts"]:
            if p["type"] == "text":
                body = p["text"].splitlines() or [""]
                lines += [f"[{i}] {m['role']}: {body[0]}", *[f"      {b}" for b in body[1:]]]
            elif p["type"] == "tool_call":
                lines.append(
                    f"[{i}] {m['role']} -> {p['name']}({json.dumps(p['arguments'], ensure_ascii=False, sort_keys=True)})"
                )
            elif p["type"] == "tool_result":
                first = (p["content"].splitlines() or [""])[0]
                lines.append(f"[{i}] tool <- {first[:200]}")
            else:
                lines.append(f"[{i}] {m['role']} (reasoning)")
    return lines


def unified_diff(original: list[dict[str, Any]], corrected: list[dict[str, Any]]) -> list[str]:
    return list(
        difflib.unified_diff(
            as_text(original), as_text(corrected), "original", "corrected", lineterm="", n=2
        )
    )
