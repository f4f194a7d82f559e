"""OpenTelemetry spans: OTLP/JSON `resourceSpans` or SDK-style span objects.

Spans are grouped into traces by trace id, ordered depth-first by parent and start time, and
read through three attribute vocabularies:

- GenAI semantic conventions: `gen_ai.input.messages` / `gen_ai.output.messages`,
  `gen_ai.system_instructions`, `execute_tool` spans, and the older per-message events
  (`gen_ai.user.message`, `gen_ai.choice`, ...);
- OpenInference: `llm.input_messages.N.message.*`, `llm.output_messages...`, TOOL spans
  with `tool.name`, `tool.parameters`, `input.value`, `output.value`;
- Vercel AI SDK: `ai.prompt.messages`, `ai.response.text`, `ai.response.toolCalls`,
  `ai.toolCall.*`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from app.traces.importers.assemble import ConversationBuilder
from app.traces.importers.messages import RecordError, as_record_error, normalize_item, to_text
from app.traces.model import TraceRecord, message, text_part

SOURCE = "otel"


def detect(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("resourceSpans"), list):
        return True
    return _is_span(value)


def _is_span(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "name" in value
        and (
            isinstance(value.get("spanContext"), dict)
            or isinstance(value.get("context"), dict)
            or ("traceId" in value and "spanId" in value)
        )
    )


# ---------------------------------------------------------------------------------------------
# Span extraction: every input shape -> flat dicts {trace_id, span_id, parent, start, name, attrs, events}


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is an object, else an empty one: hostile files put anything anywhere."""
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return value


def any_value(v: Any) -> Any:
    """Decode an OTLP AnyValue."""
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return _int(v["intValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in _arr(_obj(v["arrayValue"]).get("values"))]
    if "kvlistValue" in v:
        return kv_list(_obj(v["kvlistValue"]).get("values"))
    return None


def kv_list(items: Any) -> dict[str, Any]:
    """OTLP attributes ([{key, value}]) or SDK attributes ({key: value}) as a dict."""
    if isinstance(items, dict):
        return items
    out = {}
    for kv in _arr(items):
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def _time(value: Any) -> float:
    try:
        return _seconds(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0


def _seconds(value: Any) -> float:
    if isinstance(value, list) and len(value) == 2:  # [seconds, nanos]
        return float(value[0]) + float(value[1]) / 1e9
    if isinstance(value, (int, float)):
        return float(value) / 1e9 if value > 1e14 else float(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value) / 1e9
        from datetime import datetime

        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def flat_spans(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("resourceSpans"), list):
        for rs in value["resourceSpans"]:
            rs = _obj(rs)
            resource = kv_list(_obj(rs.get("resource")).get("attributes"))
            scopes = _arr(rs.get("scopeSpans")) or _arr(rs.get("instrumentationLibrarySpans"))
            for ss in scopes:
                for span in _arr(_obj(ss).get("spans")):
                    if isinstance(span, dict):
                        yield _flat(span, resource)
    elif isinstance(value, list):
        for v in value:
            yield from flat_spans(v)
    elif _is_span(value):
        yield _flat(value, {})


def _flat(span: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    ctx = _obj(span.get("spanContext")) or _obj(span.get("context"))
    parent = span.get("parentSpanId") or span.get("parent_id") or span.get("parentId")
    if isinstance(span.get("parentSpanContext"), dict):
        parent = span["parentSpanContext"].get("spanId")
    events = []
    for e in _arr(span.get("events")):
        if isinstance(e, dict):
            events.append(
                {
                    "name": str(e.get("name", "")),
                    "attrs": kv_list(e.get("attributes")),
                    "body": e.get("body"),
                }
            )
    return {
        "trace_id": str(span.get("traceId") or ctx.get("traceId") or ctx.get("trace_id") or ""),
        "span_id": str(span.get("spanId") or ctx.get("spanId") or ctx.get("span_id") or ""),
        "parent": str(parent or ""),
        "start": _time(
            span.get("startTimeUnixNano") or span.get("startTime") or span.get("start_time")
        ),
        "name": str(span.get("name", "")),
        "attrs": kv_list(span.get("attributes")),
        "events": events,
        "resource": resource,
        "error": _obj(span.get("status")).get("code") in (2, "STATUS_CODE_ERROR", "ERROR"),
    }


def order_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first from the roots, children by start time."""
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots = []
    for s in spans:
        (children[s["parent"]] if s["parent"] in ids else roots).append(s)
    out: list[dict[str, Any]] = []
    stack = sorted(roots, key=lambda s: s["start"], reverse=True)
    while stack:
        s = stack.pop()
        out.append(s)
        stack.extend(sorted(children.get(s["span_id"], []), key=lambda c: c["start"], reverse=True))
    return out


# ---------------------------------------------------------------------------------------------
# Messages from one span.


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _messages(value: Any, field: str) -> list[dict[str, Any]]:
    value = _json(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for i, item in enumerate(value):
        out.extend(normalize_item(item, f"{field}[{i}]"))
    return out


_OI = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")


def openinference_messages(attrs: dict[str, Any], which: str) -> list[dict[str, Any]]:
    grouped: dict[int, dict[str, Any]] = defaultdict(dict)
    for key, v in attrs.items():
        m = _OI.match(key)
        if m and m.group(1) == which:
            grouped[int(m.group(2))][m.group(3)] = v
    out = []
    for idx in sorted(grouped):
        fields = grouped[idx]
        item: dict[str, Any] = {
            "role": fields.get("role", "user"),
            "content": fields.get("content"),
        }
        calls: dict[int, dict[str, Any]] = defaultdict(dict)
        for k, v in fields.items():
            m = re.match(r"^tool_calls\.(\d+)\.tool_call\.(.+)$", k)
            if m:
                calls[int(m.group(1))][m.group(2)] = v
        if calls:
            item["tool_calls"] = [
                {
                    "id": c.get("id", ""),
                    "function": {
                        "name": c.get("function.name"),
                        "arguments": c.get("function.arguments"),
                    },
                }
                for _, c in sorted(calls.items())
            ]
        if "tool_call_id" in fields:
            item["tool_call_id"] = fields["tool_call_id"]
        if "contents.0.message_content.text" in fields and not item["content"]:
            item["content"] = fields["contents.0.message_content.text"]
        out.extend(normalize_item(item, f"llm.{which}_messages.{idx}"))
    return out


def event_messages(span: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The older GenAI convention: one event per message."""
    history, output = [], []
    for i, e in enumerate(span["events"]):
        name = e["name"]
        if not name.startswith("gen_ai."):
            continue
        body = e["body"] if isinstance(e.get("body"), dict) else e["attrs"]
        body = {k.removeprefix("gen_ai.event."): _json(v) for k, v in (body or {}).items()}
        field = f"events[{i}]"
        if name == "gen_ai.choice":
            msg = body.get("message") if isinstance(body.get("message"), dict) else body
            output.extend(normalize_item({"role": "assistant", **msg}, field))
        elif name.endswith(".message"):
            role = name.split(".")[1]
            item = {"role": role, **{k: v for k, v in body.items() if k != "role"}}
            if role == "tool" and "id" in item:
                item["tool_call_id"] = item.pop("id")
            history.extend(normalize_item(item, field))
    return history, output


def ai_sdk_prompt(a: dict[str, Any]) -> list[dict[str, Any]]:
    """Vercel AI SDK: `ai.prompt.messages` on provider spans, `ai.prompt` on the call span."""
    if "ai.prompt.messages" in a:
        return _messages(a["ai.prompt.messages"], "ai.prompt.messages")
    prompt = _json(a.get("ai.prompt"))
    if not isinstance(prompt, dict):
        return [message("user", text_part(to_text(prompt)))] if prompt else []
    msgs = []
    if isinstance(prompt.get("system"), str):
        msgs.append(message("system", text_part(prompt["system"])))
    if isinstance(prompt.get("messages"), list):
        msgs += _messages(prompt["messages"], "ai.prompt.messages")
    elif isinstance(prompt.get("prompt"), str):
        msgs.append(message("user", text_part(prompt["prompt"])))
    return msgs


def span_step(span: dict[str, Any], builder: ConversationBuilder) -> None:
    a = span["attrs"]
    op = a.get("gen_ai.operation.name")
    kind = a.get("openinference.span.kind")
    if op == "execute_tool" or kind == "TOOL" or "ai.toolCall.name" in a:
        name = (
            a.get("gen_ai.tool.name")
            or a.get("tool.name")
            or a.get("ai.toolCall.name")
            or span["name"]
        )
        call_id = a.get("gen_ai.tool.call.id") or a.get("ai.toolCall.id") or ""
        args = (
            a.get("gen_ai.tool.call.arguments")
            or a.get("tool.parameters")
            or a.get("ai.toolCall.args")
            or a.get("ai.toolCall.input")
            or a.get("input.value")
        )
        result = (
            a.get("gen_ai.tool.call.result")
            or a.get("ai.toolCall.result")
            or a.get("ai.toolCall.output")
            or a.get("output.value")
        )
        builder.add_tool_step(
            str(call_id),
            str(name),
            _json(args),
            to_text(_json(result)) if result is not None else None,
            span["error"],
        )
        return
    history: list[dict[str, Any]] = []
    output: list[dict[str, Any]] = []
    system = a.get("gen_ai.system_instructions")
    if system:
        sys_parts = _json(system)
        text = (
            " ".join(p.get("content", "") for p in sys_parts if isinstance(p, dict))
            if isinstance(sys_parts, list)
            else to_text(sys_parts)
        )
        history.append(message("system", text_part(text)))
    if "gen_ai.input.messages" in a:
        history += _messages(a["gen_ai.input.messages"], "gen_ai.input.messages")
    if "gen_ai.output.messages" in a:
        output += _messages(a["gen_ai.output.messages"], "gen_ai.output.messages")
    history += openinference_messages(a, "input")
    output += openinference_messages(a, "output")
    if "ai.prompt.messages" in a or "ai.prompt" in a:
        history += ai_sdk_prompt(a)
        response = a.get("ai.response.text") or a.get("ai.response.object")
        if response:
            output.append(message("assistant", text_part(to_text(response))))
        calls = _json(a.get("ai.response.toolCalls"))
        if isinstance(calls, list):
            output += _messages(calls, "ai.response.toolCalls")
    ev_history, ev_output = event_messages(span)
    builder.add_history(history + ev_history)
    builder.add_output(output + ev_output)


def parse_spans(spans: Iterable[dict[str, Any]]) -> Iterator[tuple[str, TraceRecord | RecordError]]:
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    for trace_id, group in by_trace.items():
        try:
            yield f"trace {trace_id}", _trace_record(trace_id, group)
        except Exception as exc:  # noqa: BLE001 - one trace's failure is its own error
            yield f"trace {trace_id}", as_record_error(exc, "otel")


def _trace_record(trace_id: str, group: list[dict[str, Any]]) -> TraceRecord:
    ordered = order_spans(group)
    builder = ConversationBuilder()
    for span in ordered:
        span_step(span, builder)
    if not builder.messages:
        raise RecordError("", "no span carries GenAI, OpenInference or AI SDK messages")
    root = ordered[0]
    meta = {
        "root_span": root["name"],
        "n_spans": len(group),
        **{k: v for k, v in root["resource"].items() if str(k).startswith("service.")},
    }
    model = next(
        (
            s["attrs"].get("gen_ai.request.model")
            for s in ordered
            if s["attrs"].get("gen_ai.request.model")
        ),
        None,
    )
    if model:
        meta["model"] = model
    return TraceRecord(
        source=SOURCE,
        messages=builder.finish(),
        external_id=trace_id or None,
        metadata=meta,
    ).finish()
