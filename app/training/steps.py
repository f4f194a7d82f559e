"""Steps of a trajectory: conversion to chat messages, normalisation, and where two
trajectories differ. Pure functions over the internal trace model (app.traces.model).

A *step* is one assistant message (its text and its structured tool calls). Preference pairs
are made of single steps (app.training.pairs); this module decides which steps to compare.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from typing import Any

from app.traces.model import canonical_json

Message = dict[str, Any]

# Values an agent copies from tool output: order numbers, tracking numbers, ticket ids, dates,
# call ids. A token of 4+ characters that holds a digit (short codes such as "P1" are kept:
# they are choices, not copies).
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*")


# ---------------------------------------------------------------------------------------------
# Conversion


def to_chat(messages: list[Message]) -> list[dict[str, Any]]:
    """Internal trace messages -> TRL conversational messages (tool calls stay structured)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        out += _chat_of(m)
    return out


def _chat_of(m: Message) -> list[dict[str, Any]]:
    parts = m.get("parts", [])
    text = "\n\n".join(p["text"] for p in parts if p.get("type") == "text")
    if m["role"] == "tool":
        results = [p for p in parts if p.get("type") == "tool_result"]
        if not results:
            return [{"role": "tool", "tool_call_id": "", "content": text}]
        return [
            {
                "role": "tool",
                "tool_call_id": r.get("call_id") or "",
                "content": r.get("content") or "",
            }
            for r in results
        ]
    msg: dict[str, Any] = {"role": m["role"], "content": text}
    calls = [p for p in parts if p.get("type") == "tool_call"]
    if calls and m["role"] == "assistant":
        msg["tool_calls"] = [
            {
                "type": "function",
                "id": c.get("id") or f"call_{i}",
                "function": {"name": c["name"], "arguments": _arguments(c)},
            }
            for i, c in enumerate(calls)
        ]
    return [msg]


def _arguments(call: dict[str, Any]) -> Any:
    """Structured arguments; unparseable ones (kept raw by the importer) as an object."""
    args = call.get("arguments")
    if call.get("arguments_invalid") or not isinstance(args, dict):
        return {"_raw": args} if args not in (None, {}) else {}
    return args


def step_message(m: Message) -> dict[str, Any]:
    """One assistant step as one chat message."""
    (msg,) = _chat_of(m)
    return msg


def tool_schemas(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trace's tools as chat-template JSON schemas: {"type": "function", "function": {...}}."""
    out = []
    for t in tools or []:
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if t.get("type") == "function" else t
        if not isinstance(fn, dict) or not fn.get("name"):
            continue
        spec = {"name": fn["name"], "description": fn.get("description") or ""}
        spec["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": spec})
    return out


# ---------------------------------------------------------------------------------------------
# Normalisation: ids copied from tool output do not make two steps different


class TokenMap:
    """Tokens seen in tool output so far, numbered by first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self._pat: re.Pattern[str] | None = None

    def feed(self, message: dict[str, Any]) -> None:
        if message.get("role") != "tool":
            return
        for tok in _TOKEN.findall(str(message.get("content") or "")):
            if len(tok) >= 4 and tok not in self.index:
                self.index[tok] = len(self.index)
                self._pat = None

    def token(self, n: int) -> str | None:
        for tok, i in self.index.items():
            if i == n:
                return tok
        return None

    def _pattern(self) -> re.Pattern[str] | None:
        if not self.index:
            return None
        if self._pat is None:
            toks = sorted(self.index, key=len, reverse=True)
            self._pat = re.compile("|".join(re.escape(t) for t in toks))
        return self._pat

    def sub(self, value: Any, repl=None) -> Any:
        """`value` with every known token replaced by repl(index) (default ⟨id:n⟩)."""
        pat = self._pattern()
        repl = repl or (lambda n: f"⟨id:{n}⟩")
        return _walk(value, pat, self.index, repl)


def _walk(value: Any, pat, index: dict[str, int], repl) -> Any:
    if isinstance(value, str):
        return pat.sub(lambda m: repl(index[m.group(0)]), value) if pat else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        key = str(value)
        return _number(value, repl(index[key])) if key in index else value
    if isinstance(value, list):
        return [_walk(v, pat, index, repl) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, pat, index, repl) for k, v in value.items()}
    return value


def _number(value: int | float, new: str) -> Any:
    """A number replaced: the placeholder when normalising, else the other run's number."""
    if new.startswith("⟨id:"):
        return new
    try:
        return type(value)(new)
    except ValueError:
        return value


def normalised(message: dict[str, Any], tokens: TokenMap) -> dict[str, Any]:
    """A chat message without call ids, tokens from earlier tool output numbered, text
    stripped: what the step *does*, not which ids it happened to copy."""
    out: dict[str, Any] = {
        "role": message["role"],
        "content": (message.get("content") or "").strip(),
    }
    calls = [
        {"name": c["function"]["name"], "arguments": c["function"].get("arguments")}
        for c in message.get("tool_calls") or []
    ]
    if calls:
        out["tool_calls"] = calls
    return tokens.sub(out)


def same_step(a: dict[str, Any], b: dict[str, Any], history: list[dict[str, Any]]) -> bool:
    """Do two steps after the same chat history do the same thing?"""
    tokens = TokenMap()
    for m in history:
        tokens.feed(m)
    return normalised(a, tokens) == normalised(b, tokens)


# ---------------------------------------------------------------------------------------------
# Corrections: which corrected steps replace which original steps


def _key(m: Message) -> bytes:
    return canonical_json(m)


def changed_steps(original: list[Message], corrected: list[Message]) -> list[tuple[int, int]]:
    """(index in corrected, index in original) of each assistant step the correction changed.

    Robust to a corrected history that ends early (at the edited step), to inserted and
    deleted steps and to a step whose kind changed (tool call <-> reply): the two message
    lists are aligned (difflib), and in each differing block the n-th corrected assistant
    step is compared with the n-th original one. A step inserted where the original had none
    is compared with what the agent did next; a deleted step with the corrected step that
    follows it."""
    sm = difflib.SequenceMatcher(
        None, [_key(m) for m in original], [_key(m) for m in corrected], autojunk=False
    )
    out: list[tuple[int, int]] = []
    for tag, o1, o2, c1, c2 in sm.get_opcodes():
        if tag != "equal":
            out += _block_pairs(original, corrected, o1, o2, c1, c2)
    return out


def _is_assistant(messages: list[Message], i: int) -> bool:
    return 0 <= i < len(messages) and messages[i].get("role") == "assistant"


def _block_pairs(original, corrected, o1, o2, c1, c2) -> list[tuple[int, int]]:
    c_steps = [i for i in range(c1, c2) if _is_assistant(corrected, i)]
    o_steps = [j for j in range(o1, o2) if _is_assistant(original, j)]
    if not c_steps:  # steps deleted: the corrected step that follows replaces the first
        return [(c2, o_steps[0])] if o_steps and _is_assistant(corrected, c2) else []
    out = [(c, o) for c, o in zip(c_steps, o_steps, strict=False)]
    if not o_steps and _is_assistant(original, o2):  # inserted: against what the agent did
        out.append((c_steps[0], o2))
    return out


# ---------------------------------------------------------------------------------------------
# Ranked: the first step where two runs of one task part ways


def first_divergence(
    better: list[dict[str, Any]], worse: list[dict[str, Any]]
) -> tuple[int, int] | None:
    """(index in `better`, index in `worse`) of the first assistant step where two chat
    histories differ after normalisation, when everything before it is the same (after
    normalisation); None when they never differ or part ways at a tool or user turn."""
    tb, tw = TokenMap(), TokenMap()
    for i in range(min(len(better), len(worse))):
        a, b = better[i], worse[i]
        if a["role"] == "tool" or b["role"] == "tool":
            tb.feed(a)
            tw.feed(b)
        na, nb = normalised(a, tb), normalised(b, tw)
        if na == nb:
            continue
        if a["role"] == "assistant" and b["role"] == "assistant":
            return i, i
        return None
    return None


def carry_ids(step: dict[str, Any], own: list[dict[str, Any]], target: list[dict[str, Any]]):
    """`step` (which followed history `own`) with the ids it copied from `own`'s tool output
    replaced by the ids at the same places in `target`'s: the step as it reads after
    `target`. Tokens with no counterpart stay."""
    mine, theirs = TokenMap(), TokenMap()
    for m in own:
        mine.feed(m)
    for m in target:
        theirs.feed(m)

    def repl(n: int) -> str:
        return theirs.token(n) or mine.token(n) or ""

    out = dict(step)
    out["content"] = mine.sub(step.get("content") or "", repl)
    if step.get("tool_calls"):
        out["tool_calls"] = [
            {
                **c,
                "function": {
                    **c["function"],
                    "arguments": mine.sub(c["function"]["arguments"], repl),
                },
            }
            for c in step["tool_calls"]
        ]
    return out


def assistant_steps(messages: list[Message]) -> list[int]:
    """The indexes of the assistant messages."""
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant"]


def to_arrow_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One schema for every message: arguments as JSON text (decoded again by
    `restore_messages`), absent keys explicit."""
    out = []
    for m in messages:
        calls = [
            {
                "type": "function",
                "id": str(c.get("id") or ""),
                "function": {
                    "name": c["function"]["name"],
                    "arguments": json.dumps(c["function"].get("arguments"), ensure_ascii=False),
                },
            }
            for c in m.get("tool_calls") or []
        ]
        out.append(
            {
                "role": m["role"],
                "content": m.get("content") or "",
                "tool_calls": calls or None,
                "tool_call_id": m.get("tool_call_id") or None,
            }
        )
    return out


def prompt_key(arrow_prompt: list[dict[str, Any]]) -> str:
    """A prompt's key where it has no task key (the reward-hacking watch's episodes): sha256,
    first 12 hex digits, of its JSON (sorted keys) in the one-schema form of
    `to_arrow_messages`."""
    raw = json.dumps(arrow_prompt, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]
