"""Word-level diffs of a correction, step by step, for judges and leads.

A line diff of a 400-character tool call turns the whole line red and green when one token
changed, reorders keys and prints `@@ -106,5` headers. Here each step of the corrected history
is aligned with the original's, changed steps are shown in place (their step number, role and
tool) with only the changed words marked, tool arguments keep their keys in the order the
agent wrote them, unchanged runs collapse to one line, and the original steps after the
correction's end are named as such (they answered a different history).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.traces.model import canonical_json

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)

REWRITE_RATIO = 0.4  # below this share of equal words, interleaving them only confuses

Segment = tuple[str, str]  # ("equal" | "insert" | "delete", text)


@dataclass(frozen=True)
class DiffStep:
    """One block of a correction's diff."""

    kind: str  # "unchanged" | "changed" | "inserted" | "deleted" | "after_end"
    title: str
    segments: list[Segment] = field(default_factory=list)
    original: tuple[int, int] | None = None  # original step range [a, b)
    corrected: tuple[int, int] | None = None

    @property
    def is_edit(self) -> bool:
        return self.kind in ("changed", "inserted", "deleted")


def step_text(message: dict[str, Any]) -> str:
    """A message as judges read it: text, then each tool call with its arguments indented
    (keys in the agent's order), tool results as their content."""
    out = []
    for p in message.get("parts", []):
        kind = p.get("type")
        if kind == "text":
            out.append(p["text"])
        elif kind == "reasoning":
            out.append(f"(reasoning) {p['text']}")
        elif kind == "tool_call":
            args = p.get("arguments")
            shown = (
                args if isinstance(args, str) else json.dumps(args, indent=2, ensure_ascii=False)
            )
            out.append(f"→ {p.get('name', '')}\n{shown}")
        elif kind == "tool_result":
            out.append(f"← {p.get('content', '')}")
    return "\n".join(out)


def word_segments(a: str, b: str) -> list[Segment]:
    """The changes from `a` to `b`, word by word (whitespace and punctuation are tokens)."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    matcher = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    if matcher.ratio() < REWRITE_RATIO:  # a rewrite, not an edit: old out, new in
        return [s for s in (("delete", a), ("insert", b)) if s[1]]
    out: list[Segment] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            _add(out, "equal", "".join(ta[i1:i2]))
        else:
            _add(out, "delete", "".join(ta[i1:i2]))
            _add(out, "insert", "".join(tb[j1:j2]))
    return out


def _step_segments(a: dict[str, Any], b: dict[str, Any]) -> list[Segment]:
    """Word changes of one step; a step that changed kind (tool call <-> reply) is shown as
    the old step out and the new one in, which reads better than interleaved words."""
    ta, tb = step_text(a), step_text(b)
    if _has_call(a) != _has_call(b) or a["role"] != b["role"]:
        return [s for s in (("delete", ta), ("insert", tb)) if s[1]]
    return word_segments(ta, tb)


def _has_call(m: dict[str, Any]) -> bool:
    return any(p.get("type") == "tool_call" for p in m.get("parts", []))


def _add(out: list[Segment], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == op:
        out[-1] = (op, out[-1][1] + text)
    else:
        out.append((op, text))


def _label(i: int, m: dict[str, Any]) -> str:
    calls = [p.get("name", "") for p in m.get("parts", []) if p.get("type") == "tool_call"]
    kind = f"tool call {', '.join(calls)}" if calls else "reply" if m["role"] == "assistant" else ""
    return f"Step {i} · {m['role']}" + (f" · {kind}" if kind else "")


def _span(a: int, b: int) -> str:
    return f"step {a}" if b - a == 1 else f"steps {a}–{b - 1}"


def word_diff(original: list[dict[str, Any]], corrected: list[dict[str, Any]]) -> list[DiffStep]:
    """The correction as blocks in conversation order (see the module docstring)."""
    keys_a = [canonical_json(m) for m in original]
    keys_b = [canonical_json(m) for m in corrected]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    out: list[DiffStep] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(
                DiffStep(
                    "unchanged", f"{_span(j1, j2).capitalize()} unchanged", [], (i1, i2), (j1, j2)
                )
            )
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(pairs):
            a, b = original[i1 + k], corrected[j1 + k]
            out.append(
                DiffStep(
                    "changed",
                    _label(j1 + k, b),
                    _step_segments(a, b),
                    (i1 + k, i1 + k + 1),
                    (j1 + k, j1 + k + 1),
                )
            )
        for j in range(j1 + pairs, j2):
            out.append(
                DiffStep(
                    "inserted",
                    _label(j, corrected[j]) + " · inserted",
                    [("insert", step_text(corrected[j]))],
                    None,
                    (j, j + 1),
                )
            )
        rest = (i1 + pairs, i2)
        if rest[0] < rest[1]:
            if rest[1] == len(original) and j2 == len(corrected):
                out.append(_after_end(rest))
            else:
                for i in range(*rest):
                    out.append(
                        DiffStep(
                            "deleted",
                            _label(i, original[i]) + " · deleted",
                            [("delete", step_text(original[i]))],
                            (i, i + 1),
                            None,
                        )
                    )
    return out


def _after_end(span: tuple[int, int]) -> DiffStep:
    a, b = span
    return DiffStep(
        "after_end",
        f"Original {_span(a, b)} came after the corrected step: they answered a different "
        "history, so they are kept only as the original, not in the correction",
        [],
        span,
        None,
    )


def n_edits(original: list[dict[str, Any]], corrected: list[dict[str, Any]]) -> int:
    return sum(1 for d in word_diff(original, corrected) if d.is_edit)
