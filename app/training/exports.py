"""Pairs as files: TRL's conversational preference format, OpenAI's preference fine-tuning
format, Parquet.

- TRL (`prompt`, `chosen`, `rejected`, `tools`): tool-call arguments stay JSON objects, so a
  chat template's `tojson` encodes them once; `tools` holds the JSON schemas TRL passes to
  `apply_chat_template(tools=...)`.
- OpenAI (`input.messages`, `input.tools`, `preferred_output`, `non_preferred_output`): each
  output is a list of one assistant message; arguments are JSON strings, as in the Chat
  Completions API. Train and held-out go to separate files.
"""

from __future__ import annotations

import io
import json
from typing import Any

from app.traces.model import canonical_json
from app.workspace.errors import ChambersError
from app.workspace.models import PreferencePair

FORMATS = ("trl", "openai", "parquet")
RECORD_VERSION = 2  # 1: whole continuations, no tools (snapshots made before step pairs)


class ExportError(ChambersError):
    pass


def pair_tools(p: PreferencePair) -> list[dict[str, Any]]:
    return list(p.provenance.get("tools") or [])


def trl_record(p: PreferencePair, split: str, version: int = RECORD_VERSION) -> dict[str, Any]:
    rec = {
        "prompt": p.prompt,
        "chosen": p.chosen,
        "rejected": p.rejected,
        "split": split,
        "pair_id": p.id,
        "rule": p.rule,
        "margin": p.margin,
    }
    if version >= 2:
        rec["tools"] = pair_tools(p)
    return rec


def _openai_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id") or ""
    calls = m.get("tool_calls") or []
    if calls:
        out["content"] = m.get("content") or None
        out["tool_calls"] = [
            {
                "id": c.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": c["function"]["name"],
                    "arguments": json.dumps(c["function"].get("arguments"), ensure_ascii=False),
                },
            }
            for i, c in enumerate(calls)
        ]
    return out


def openai_record(p: PreferencePair) -> dict[str, Any]:
    """One line of OpenAI's preference fine-tuning (DPO) JSONL."""
    for side in (p.chosen, p.rejected):
        if len(side) != 1 or side[0].get("role") != "assistant":
            raise ExportError(
                f"pair {p.id}: the OpenAI format needs one assistant message per output; this "
                "pair predates step-level pairs (make a new snapshot)"
            )
    tools = pair_tools(p)
    inp: dict[str, Any] = {"messages": [_openai_message(m) for m in p.prompt], "tools": tools}
    if any(len(m.get("tool_calls") or []) > 1 for m in [*p.prompt, *p.chosen, *p.rejected]):
        inp["parallel_tool_calls"] = True
    return {
        "input": inp,
        "preferred_output": [_openai_message(p.chosen[0])],
        "non_preferred_output": [_openai_message(p.rejected[0])],
    }


def export_bytes(
    rows: list[tuple[PreferencePair, str]], fmt: str, version: int = RECORD_VERSION
) -> bytes:
    if fmt == "trl":
        return b"".join(canonical_json(trl_record(p, s, version)) + b"\n" for p, s in rows)
    if fmt == "openai":
        return b"".join(canonical_json(openai_record(p)) + b"\n" for p, _ in rows)
    if fmt == "parquet":
        return _parquet(rows)
    raise ExportError(f"format must be one of {', '.join(FORMATS)}")


def _parquet(rows: list[tuple[PreferencePair, str]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def col(get) -> list[str]:
        return [json.dumps(get(p), ensure_ascii=False) for p, _ in rows]

    # Messages and schemas are nested and heterogeneous: JSON strings in columns (TRL reads a
    # `tools` string with json.loads).
    table = pa.table(
        {
            "pair_id": [p.id for p, _ in rows],
            "split": [s for _, s in rows],
            "rule": [p.rule for p, _ in rows],
            "margin": [p.margin for p, _ in rows],
            "prompt": col(lambda p: p.prompt),
            "chosen": col(lambda p: p.chosen),
            "rejected": col(lambda p: p.rejected),
            "tools": col(pair_tools),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
