"""Modify: a judge's correction of the agent's steps, validated.

The judge edits the agent's steps (reply text, tool name and arguments), changes a step's kind
(tool call <-> reply), inserts and deletes steps (CorrectionDraft). The corrected history ends
at the last edited step. Arguments must be JSON and, when the trace carries the tool's schema,
must satisfy it (the subset of JSON Schema that tool definitions use: type, properties,
required, enum, items, additionalProperties). The word diff shown to judges and leads is in
app.review.word_diff.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from app.traces.model import message_text

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


def final_answer(messages: list[dict[str, Any]]) -> str:
    last = next(
        (m for m in reversed(messages) if m["role"] == "assistant" and message_text(m)), None
    )
    return message_text(last) if last else ""


def corrected_answer(corrected: list[dict[str, Any]]) -> str | None:
    """The answer a correction gives: its last step's text when that step is a reply of the
    agent; None when the correction ends in a tool call (an earlier reply is no answer)."""
    last = corrected[-1] if corrected else None
    if last is None or last["role"] != "assistant" or tool_calls_of(last):
        return None
    return message_text(last) or None


# ---------------------------------------------------------------------------------------------
# A correction as the judge builds it: edit, change kind, insert, delete; history ends there


@dataclass
class DraftStep:
    message: dict[str, Any]
    origin: int | None  # index in the original trace; None for a step the judge inserted


REPLY, TOOL_CALL = "reply", "tool_call"


class CorrectionDraft:
    """The judge's correction of a trace, step by step.

    Editing, re-kinding, inserting or deleting at step k ends the corrected history at k:
    the steps after it were produced by a different history (a tool result that answered the
    old arguments, a final answer built on it), so they stay only in the original. With
    several edits the history ends at the last one.
    """

    def __init__(
        self,
        original: list[dict[str, Any]],
        corrected: list[dict[str, Any]] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ):
        self.original = original
        self.tools = tools or []
        self._ids = 0
        self.deleted_at = -1  # a deletion at i ends the history before i
        base = corrected if corrected is not None else original
        # a stored correction is resumed step for step (changed where it differs)
        self.steps = [
            DraftStep(copy.deepcopy(m), i if i < len(original) else None)
            for i, m in enumerate(base)
        ]
        self.steps += [
            DraftStep(copy.deepcopy(original[i]), i) for i in range(len(base), len(original))
        ]

    # --- reading ---------------------------------------------------------------------------
    def end(self) -> int:
        """Index of the last step of the corrected history (-1 when nothing changed)."""
        last = max((i for i in range(len(self.steps)) if self.is_changed(i)), default=-1)
        return max(last, self.deleted_at - 1)

    def is_changed(self, i: int) -> bool:
        s = self.steps[i]
        return s.origin is None or s.message != self.original[s.origin]

    def result(self) -> list[dict[str, Any]] | None:
        """The corrected history, ending at the last edited step; None when unchanged."""
        end = self.end()
        if end < 0 and self.deleted_at < 0:
            return None
        return [copy.deepcopy(s.message) for s in self.steps[: end + 1]]

    def kind(self, i: int) -> str:
        m = self.steps[i].message
        if m["role"] != "assistant":
            return m["role"]
        return TOOL_CALL if tool_calls_of(m) else REPLY

    def is_editable(self, i: int) -> bool:
        return self.steps[i].message["role"] == "assistant"

    def text(self, i: int) -> str:
        return message_text(self.steps[i].message)

    # --- changing --------------------------------------------------------------------------
    def _touch(self, i: int) -> dict[str, Any]:
        if not self.is_editable(i):
            raise ValueError(f"step {i} is a {self.steps[i].message['role']} step, not the agent's")
        return self.steps[i].message

    def set_text(self, i: int, text: str) -> None:
        m = self.steps[i].message
        if message_text(m) == text:
            return
        m = self._touch(i)
        others = [p for p in m["parts"] if p["type"] != "text"]
        m["parts"] = ([{"type": "text", "text": text}] if text else []) + others

    def set_call(self, i: int, call: int, name: str, arguments: Any) -> None:
        part = tool_calls_of(self.steps[i].message)[call]
        if part["name"] == name and part["arguments"] == arguments:
            return
        self._touch(i)
        part["name"] = name
        part["arguments"] = arguments
        part.pop("arguments_invalid", None)

    def new_call(self) -> dict[str, Any]:
        self._ids += 1
        name = self.tools[0]["name"] if self.tools else ""
        return {"type": "tool_call", "id": f"judge_call_{self._ids}", "name": name, "arguments": {}}

    def set_kind(self, i: int, kind: str) -> None:
        """Turn an assistant step into a reply (its calls dropped) or a tool call."""
        if self.kind(i) == kind:
            return
        m = self._touch(i)
        texts = [p for p in m["parts"] if p["type"] in ("text", "reasoning")]
        if kind == REPLY:
            m["parts"] = texts or [{"type": "text", "text": ""}]
        else:
            m["parts"] = [p for p in texts if p.get("text")] + [self.new_call()]

    def insert_after(self, i: int, kind: str = REPLY) -> int:
        """A new assistant step after step i (i = -1: at the start); returns its index."""
        parts = [{"type": "text", "text": ""}] if kind == REPLY else [self.new_call()]
        step = DraftStep({"role": "assistant", "parts": parts}, None)
        self.steps.insert(i + 1, step)
        if self.deleted_at > i:
            self.deleted_at += 1
        return i + 1

    def delete(self, i: int) -> None:
        """Remove an assistant step (with the results of its calls, which answered it)."""
        m = self.steps[i].message
        if not self.is_editable(i):
            raise ValueError(f"step {i} is a {m['role']} step, not the agent's")
        ids = {p["id"] for p in tool_calls_of(m)}
        del self.steps[i]
        while i < len(self.steps) and self._answers(self.steps[i].message, ids):
            del self.steps[i]
        self.deleted_at = max(self.deleted_at, i)

    @staticmethod
    def _answers(m: dict[str, Any], ids: set[str]) -> bool:
        results = [p for p in m["parts"] if p["type"] == "tool_result"]
        return bool(results) and all(p.get("call_id") in ids for p in results)

    # --- checking --------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """What keeps this correction from being kept, as messages naming the step."""
        result = self.result()
        if result is None:
            return []
        out = []
        for i, s in enumerate(self.steps[: len(result)]):
            if not self.is_changed(i):
                continue
            m = s.message
            if self.kind(i) == REPLY and not message_text(m).strip():
                out.append(f"Step {i}: the reply is empty")
            for c in tool_calls_of(m):
                args = c["arguments"]
                text = args if isinstance(args, str) else json.dumps(args)
                _, errs = check_tool_call(c["name"], text, self.tools)
                out += [f"Step {i}: call {c['name'] or '(no name)'}: {e}" for e in errs]
        if not result or result[-1]["role"] != "assistant":
            out.append(
                "The corrected history must end with a step of the agent: after deleting a "
                "step, insert what the agent should have done instead"
            )
        return out


def tool_calls_of(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in m["parts"] if p["type"] == "tool_call"]
