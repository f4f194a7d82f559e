"""What a judge scans a long trace by: the outline of its steps, tool names for results,
errors, and JSON that tools returned as text (sometimes JSON encoded inside a string).

Pure functions over the internal message model (app.traces.model), shared by the trace view
and its tests; nothing here knows about Qt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Tool results that report a failure in their text rather than through is_error
# (τ-bench returns "Error: ..." strings; many frameworks write "Exception: ...").
_ERROR_TEXT = re.compile(r"^\s*(error|exception|traceback)\b[\s:(]", re.IGNORECASE)
DECODE_LIMIT = 2_000_000  # bigger results are shown as text: parsing them would stall the view


@dataclass(frozen=True)
class OutlineEntry:
    """One line of the outline: a message, or a tool call / result inside it."""

    step: int  # message index
    kind: str  # system | user | assistant | final | tool_call | tool_result | error
    label: str


def tool_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    """call id -> tool name, so a result can be shown with the tool that produced it."""
    return {
        p["id"]: p["name"]
        for m in messages
        for p in m.get("parts", [])
        if p.get("type") == "tool_call" and p.get("id")
    }


def is_error_result(part: dict[str, Any]) -> bool:
    if part.get("type") != "tool_result":
        return False
    return bool(part.get("is_error")) or bool(_ERROR_TEXT.match((part.get("content") or "")[:80]))


def last_assistant(messages: list[dict[str, Any]]) -> int:
    return max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)


_MARKUP = re.compile(r"\*\*|__|`|^#+\s*")


def _first_line(text: str, limit: int = 60) -> str:
    line = _MARKUP.sub("", " ".join(text.split()))
    return line if len(line) <= limit else cut_at_word(line, limit)


def cut_at_word(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if not text[limit - 1].isspace() and space > limit // 2:  # mid-word: back to a space
        head = head[:space]
    return head.rstrip(" ,;:.") + "…"


def outline(messages: list[dict[str, Any]]) -> list[OutlineEntry]:
    """The steps of a trace in order, tool calls by name and errors marked."""
    names = tool_names(messages)
    final = last_assistant(messages)
    out: list[OutlineEntry] = []
    for i, m in enumerate(messages):
        role = m["role"]
        text = " ".join(p["text"] for p in m["parts"] if p["type"] == "text")
        calls = [p for p in m["parts"] if p["type"] == "tool_call"]
        results = [p for p in m["parts"] if p["type"] == "tool_result"]
        if role == "system":
            out.append(OutlineEntry(i, "system", "System prompt"))
        elif calls:
            for p in calls:
                out.append(OutlineEntry(i, "tool_call", f"→ {p['name']}"))
        elif results:
            for p in results:
                name = names.get(p.get("call_id", ""), "tool")
                if is_error_result(p):
                    out.append(
                        OutlineEntry(i, "error", f"✗ {name}: {_first_line(p['content'], 40)}")
                    )
                else:
                    out.append(OutlineEntry(i, "tool_result", f"← {name}"))
        elif role == "assistant":
            kind = "final" if i == final else "assistant"
            out.append(OutlineEntry(i, kind, "A  " + (_first_line(text) or "(no text)")))
        else:
            out.append(OutlineEntry(i, role, "U  " + (_first_line(text) or "(empty)")))
    return out


def _looks_like_json(text: str) -> bool:
    s = text.strip()
    return len(s) >= 2 and (s[0], s[-1]) in (("{", "}"), ("[", "]"), ('"', '"'))


def decode_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is JSON; strings that hold JSON documents are decoded too
    (a tool that double-encodes its output shows as data, not as a wall of \\" escapes)."""
    if len(text) > DECODE_LIMIT or not _looks_like_json(text):
        return False, None
    try:
        value = json.loads(text)
    except ValueError:
        return False, None
    return True, _unwrap(value, depth=0)


def _unwrap(value: Any, depth: int) -> Any:
    if depth > 4:
        return value
    if isinstance(value, str) and _looks_like_json(value) and value.strip()[0] in "[{":
        try:
            return _unwrap(json.loads(value), depth + 1)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _unwrap(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, depth + 1) for v in value]
    return value


def pretty_json(value: Any) -> str:
    """Indented JSON with non-ASCII shown as itself (é, not \\u00e9), keys in source order."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def json_summary(value: Any) -> str:
    """A few words on what a decoded result holds, for a collapsed card."""
    if isinstance(value, dict):
        keys = list(value)
        more = f", … {len(keys) - 4} more" if len(keys) > 4 else ""
        return "{" + ", ".join(str(k) for k in keys[:4]) + more + "}"
    if isinstance(value, list):
        return f"[{len(value)} item{'s' if len(value) != 1 else ''}]"
    return _first_line(json.dumps(value, ensure_ascii=False), 60)
