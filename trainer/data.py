"""The run's data in, fitted to the length budget, handed to TRL.

Records are step-level, in TRL's conversational format, tool-call arguments structured:
    DPO  {"prompt": [...], "chosen": [one assistant message], "rejected": [...], "tools": [...]}
    SFT  {"prompt": [...], "completion": [one assistant message], "tools": [...]}
    KTO  {"prompt": [...], "completion": [...], "label": true|false, "tools": [...]}

Length: TRL cuts a long sequence at the end, which loses exactly the step a judge corrected.
Here the prompt is shortened from the middle instead (kept: the system messages, the tools and
the task, then as many of the last turns before the step as fit); the completion is never cut.
An example that cannot fit even so is dropped, with its reason counted.

Arrow (which TRL's datasets use) needs one schema per column, so tool-call arguments travel
as JSON strings and the tokenizer's `apply_chat_template` is wrapped to turn them back into
objects before the chat template sees them (no double encoding by `tojson`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.training.steps import to_arrow_messages

COMPLETION_KEYS = {
    "sft": ("completion",),
    "kto": ("completion",),
    "dpo": ("chosen", "rejected"),
    "grpo": ("chosen",),
}


class DataError(ValueError):
    """A record the trainer cannot use; the message names the file, line and field."""


def load_jsonl(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise DataError(f"{path}: line {n}: not JSON ({exc})") from None
    return rows


def check_records(rows: list[dict[str, Any]], method: str, where: str) -> None:
    """Each record has the fields its method needs, as message lists."""
    need = ("prompt", *COMPLETION_KEYS[method]) + (("label",) if method == "kto" else ())
    for n, r in enumerate(rows, 1):
        for key in need:
            if key not in r:
                raise DataError(f"{where}: record {n}: no field {key!r}")
        for key in ("prompt", *COMPLETION_KEYS[method]):
            if not isinstance(r[key], list) or not all(
                isinstance(m, dict) and "role" in m for m in r[key]
            ):
                raise DataError(
                    f"{where}: record {n}: field {key!r} must be a list of messages with a role"
                )
        for key in COMPLETION_KEYS[method]:
            if not r[key]:
                raise DataError(f"{where}: record {n}: field {key!r} is empty")


# ---------------------------------------------------------------------------------------------
# Rendering through the model's chat template


def render_ids(
    tok,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    add_generation_prompt: bool = False,
) -> list[int]:
    out = tok.apply_chat_template(
        messages,
        tools=tools or None,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=add_generation_prompt,
    )
    return list(out["input_ids"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class FitReport:
    """What fitting the data to max_length did (an event and a manifest entry)."""

    max_length: int
    max_length_source: str
    examples: int = 0
    kept: int = 0
    shortened: int = 0
    messages_removed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    length_percentiles: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "max_length_source": self.max_length_source,
            "examples": self.examples,
            "kept": self.kept,
            "shortened": self.shortened,
            "messages_removed": self.messages_removed,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "length_percentiles": self.length_percentiles,
        }


def _cut_points(prompt: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """The head (system messages and the task) and where the middle may be cut: before any
    message that is not a tool result, so no result is left without its call."""
    head = 0
    while head < len(prompt) and prompt[head].get("role") in ("system", "developer"):
        head += 1
    if head < len(prompt) and prompt[head].get("role") == "user":
        head += 1
    cuts = [i for i in range(head, len(prompt)) if prompt[i].get("role") != "tool"]
    return head, cuts


def _lengths(tok, prompt, completions, tools) -> tuple[int, int]:
    """(longest prompt+completion, longest completion) in tokens."""
    p_ids = render_ids(tok, prompt, tools, add_generation_prompt=True)
    full = comp = 0
    for c in completions:
        ids = render_ids(tok, prompt + c, tools)
        full = max(full, len(ids))
        comp = max(comp, len(ids) - _common_prefix(p_ids, ids))
    return full, comp


def fit_example(
    tok,
    record: dict[str, Any],
    keys: tuple[str, ...],
    max_length: int,
    full_length: int | None = None,
) -> tuple[dict[str, Any] | None, str | None, int]:
    """The record with its prompt shortened from the middle to fit (or None and the reason
    it cannot), and how many prompt messages were removed."""
    prompt, tools = record["prompt"], record.get("tools")
    completions = [record[k] for k in keys]
    if full_length is None:
        full_length, _ = _lengths(tok, prompt, completions, tools)
    if full_length <= max_length:
        return record, None, 0
    head, cuts = _cut_points(prompt)
    if not cuts:
        _, comp = _lengths(tok, prompt, completions, tools)
        return None, "completion_too_long" if comp >= max_length else "context_too_long", 0

    def fits(i: int) -> bool:
        return _lengths(tok, prompt[:head] + prompt[i:], completions, tools)[0] <= max_length

    # cuts[0] keeps everything (known too long); cuts[-1] keeps only the last turn.
    if not fits(cuts[-1]):
        _, comp = _lengths(tok, prompt[:head] + prompt[cuts[-1] :], completions, tools)
        return None, "completion_too_long" if comp >= max_length else "context_too_long", 0
    lo, hi = 0, len(cuts) - 1  # fits(cuts[hi]) holds; find the smallest such index
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(cuts[mid]):
            hi = mid
        else:
            lo = mid + 1
    start = cuts[hi]
    return {**record, "prompt": prompt[:head] + prompt[start:]}, None, start - head


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (q in (0, 100])."""
    s = sorted(values)
    return s[max(math.ceil(q / 100 * len(s)) - 1, 0)]


def fit_records(
    tok,
    rows: list[dict[str, Any]],
    method: str,
    max_length: int | None,
    percentile_q: float,
    model_cap: int,
) -> tuple[list[dict[str, Any]], FitReport]:
    """Fit every record to max_length (derived from the data if None: the given percentile
    of the real token lengths, rounded up to a multiple of 64, at most `model_cap`)."""
    keys = COMPLETION_KEYS[method]
    lengths = [_lengths(tok, r["prompt"], [r[k] for k in keys], r.get("tools"))[0] for r in rows]
    pct = {f"p{q}": percentile(lengths, q) for q in (50, 90, 95, 99, 100)} if lengths else {}
    if max_length is None:
        want = percentile(lengths, percentile_q) if lengths else model_cap
        max_length = min(int(math.ceil(want / 64) * 64), model_cap)
        source = (
            f"p{percentile_q:g} of {len(lengths)} examples ({want} tokens), model cap {model_cap}"
        )
    else:
        source = "set"
    report = FitReport(
        max_length=max_length, max_length_source=source, examples=len(rows), length_percentiles=pct
    )
    dropped: Counter[str] = Counter()
    out = []
    for r, n in zip(rows, lengths, strict=True):
        fitted, reason, removed = fit_example(tok, r, keys, max_length, n)
        if fitted is None:
            dropped[reason or "unknown"] += 1
            continue
        if removed:
            report.shortened += 1
            report.messages_removed += removed
        out.append(fitted)
    report.kept = len(out)
    report.dropped = dict(dropped)
    return out, report


# ---------------------------------------------------------------------------------------------
# Through Arrow and back


def restore_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        msg = {k: v for k, v in m.items() if v is not None}
        if msg.get("tool_calls"):
            msg["tool_calls"] = [
                {
                    **c,
                    "function": {
                        **c["function"],
                        "arguments": _decoded(c["function"].get("arguments")),
                    },
                }
                for c in msg["tool_calls"]
            ]
        else:
            msg.pop("tool_calls", None)
        out.append(msg)
    return out


def _decoded(arguments: Any) -> Any:
    """JSON text back to its value; anything else as it is (restoring twice is harmless)."""
    if not isinstance(arguments, str):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def wrap_tokenizer(tok) -> None:
    """Make `tok.apply_chat_template` accept the Arrow form of messages."""
    original = tok.apply_chat_template
    if getattr(original, "chambers_wrapped", False):
        return

    def apply_chat_template(conversation, *args, **kwargs):
        if isinstance(conversation, list) and conversation:
            if isinstance(conversation[0], dict):
                conversation = restore_messages(conversation)
            elif isinstance(conversation[0], list):  # a batch of conversations
                conversation = [restore_messages(c) for c in conversation]
        return original(conversation, *args, **kwargs)

    apply_chat_template.chambers_wrapped = True
    tok.apply_chat_template = apply_chat_template


def arrow_rows(rows: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    keys = ("prompt", *COMPLETION_KEYS[method])
    out = []
    for r in rows:
        row = {k: to_arrow_messages(r[k]) for k in keys}
        row["tools"] = json.dumps(r["tools"]) if r.get("tools") else None
        if method == "kto":
            row["label"] = bool(r["label"])
        out.append(row)
    return out
