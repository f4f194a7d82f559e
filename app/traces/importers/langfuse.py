"""Langfuse trace exports: `{"trace": {...}, "observations": [...]}` (or a list of them).

GENERATION observations hold the model input (often JSON in a string, in any vendor shape)
and output; TOOL observations hold a tool call's arguments and result. The trace's `scores`
(LLM-judge and human evaluations) are kept as automated scores.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.traces.importers.assemble import ConversationBuilder
from app.traces.importers.conversations import normalize_outcome, output_messages
from app.traces.importers.messages import RecordError, normalize_item, to_text, type_name
from app.traces.model import TraceRecord

SOURCE = "langfuse"


def detect(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("observations"), list)
        and (isinstance(value.get("trace"), dict) or "projectId" in value)
    )


def maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def input_messages(value: Any, field: str) -> list[dict[str, Any]]:
    """A generation's input in whatever shape the framework logged it."""
    value = maybe_json(value)
    if isinstance(value, dict):
        for key in ("messages", "contents", "input"):
            if isinstance(value.get(key), list):
                msgs = _items(value[key], f"{field}.{key}")
                system = (
                    (value.get("config") or {}).get("system_instruction")
                    if isinstance(value.get("config"), dict)
                    else None
                )
                system = system or value.get("system") or value.get("instructions")
                if isinstance(system, str) and system:
                    msgs.insert(0, {"role": "system", "parts": [{"type": "text", "text": system}]})
                return msgs
        if "role" in value:
            return _items([value], field)
        if isinstance(value.get("prompt"), str):  # AI SDK top-level call
            msgs = _items([{"role": "user", "content": value["prompt"]}], field)
            if isinstance(value.get("system"), str):
                msgs.insert(
                    0, {"role": "system", "parts": [{"type": "text", "text": value["system"]}]}
                )
            return msgs
        return []
    if isinstance(value, list):
        return _items(value, field)
    if isinstance(value, str) and value:
        return [{"role": "user", "parts": [{"type": "text", "text": value}]}]
    return []


def _items(items: list[Any], field: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and (not _is_message_like(item) or _is_tool_definition(item)):
            continue  # tool definitions and other context mixed into the input list
        out.extend(normalize_item(item, f"{field}[{i}]"))
    return out


def _is_tool_definition(item: dict[str, Any]) -> bool:
    content = item.get("content")
    return isinstance(content, dict) and content.get("type") == "function" and "function" in content


def _is_message_like(item: dict[str, Any]) -> bool:
    return (
        any(k in item for k in ("role", "from", "toolCallId"))
        or item.get("type")
        in (
            "message",
            "function_call",
            "function_call_output",
            "reasoning",
        )
        or (item.get("lc") == 1)
    )


def generation_output(value: Any, field: str) -> list[dict[str, Any]]:
    value = maybe_json(value)
    if (
        isinstance(value, dict)
        and isinstance(value.get("content"), dict)
        and "parts" in value["content"]
    ):
        value = value["content"]  # Gemini candidate
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and _is_message_like(v) for v in value)
    ):
        return _items(value, field)
    return output_messages(value, field) if value not in (None, "") else []


def scores(trace: dict[str, Any]) -> list[dict[str, Any]]:
    raw = trace.get("scores")
    if not isinstance(raw, list):
        return []
    out = []
    for s in raw:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            continue
        value = s.get("value")
        out.append(
            {
                "name": s["name"],
                "value": float(value)
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                else None,
                "string_value": s.get("stringValue"),
                "source": f"langfuse:{s.get('source') or 'score'}",
                "comment": s.get("comment") or "",
            }
        )
    return out


def parse(value: Any) -> TraceRecord:
    if not isinstance(value, dict):
        raise RecordError("", f"expected a Langfuse trace export object, got {type_name(value)}")
    trace = value.get("trace") if isinstance(value.get("trace"), dict) else value
    observations = value.get("observations")
    if not isinstance(observations, list):
        raise RecordError("observations", f"expected an array, got {type_name(observations)}")
    ordered = sorted(
        (o for o in observations if isinstance(o, dict)),
        key=lambda o: (str(o.get("startTime") or ""), str(o.get("id") or "")),
    )
    builder = ConversationBuilder()
    tools: dict[str, dict[str, Any]] = {}
    for i, obs in enumerate(ordered):
        field = f"observations[{obs.get('id', i)}]"
        kind = obs.get("type")
        if kind == "GENERATION":
            builder.add_history(input_messages(obs.get("input"), f"{field}.input"))
            builder.add_output(generation_output(obs.get("output"), f"{field}.output"))
            _collect_tools(obs, tools)
        elif kind == "TOOL":
            meta = maybe_json(obs.get("metadata"))
            meta = meta if isinstance(meta, dict) else {}
            attrs = maybe_json(meta.get("attributes"))
            attrs = attrs if isinstance(attrs, dict) else {}
            call_id = attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call_id") or ""
            name = attrs.get("gen_ai.tool.name") or str(obs.get("name") or "tool")
            builder.add_tool_step(
                str(call_id),
                name.removeprefix("execute_tool "),
                maybe_json(obs.get("input")),
                to_text(maybe_json(obs.get("output"))),
                obs.get("level") == "ERROR",
            )
    if not builder.messages:
        raise RecordError("observations", "no GENERATION or TOOL observation with messages")
    outcome, label = (None, None)
    if trace.get("output") is not None and isinstance(maybe_json(trace.get("output")), dict):
        out = maybe_json(trace["output"])
        for key in ("reward", "score", "success"):
            if key in out:
                outcome, label = normalize_outcome(out[key])
    meta = {
        k: trace.get(k)
        for k in (
            "name",
            "timestamp",
            "userId",
            "sessionId",
            "release",
            "version",
            "environment",
            "tags",
        )
        if trace.get(k) not in (None, "", [])
    }
    return TraceRecord(
        source=SOURCE,
        messages=builder.finish(),
        external_id=str(trace.get("id")) if trace.get("id") else None,
        tools=list(tools.values()),
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source="langfuse:trace.output" if outcome is not None else None,
        scores=scores(trace),
    ).finish()


def _collect_tools(obs: dict[str, Any], tools: dict[str, dict[str, Any]]) -> None:
    """Tool schemas logged with a generation (model parameters or a Responses `tools` list)."""
    for source in (
        maybe_json(obs.get("output")),
        maybe_json(obs.get("input")),
        obs.get("modelParameters"),
    ):
        if isinstance(source, dict) and isinstance(source.get("tools"), list):
            from app.traces.importers.conversations import normalize_tools

            try:
                for tool in normalize_tools(source["tools"]):
                    tools.setdefault(tool["name"], tool)
            except RecordError:
                continue
