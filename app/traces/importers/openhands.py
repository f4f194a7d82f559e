"""OpenHands event streams: a list of actions and observations.

Agent actions carry `tool_call_metadata.model_response` (an OpenAI-style response): its
message holds the assistant text and tool calls. Observations carry the tool output.
"""

from __future__ import annotations

from typing import Any

from app.traces.importers.messages import RecordError, normalize_item, tool_result_part, type_name
from app.traces.model import TraceRecord, message, text_part

SOURCE = "openhands"


def detect_list(values: list[Any]) -> bool:
    return bool(values) and all(
        isinstance(v, dict) and "source" in v and ("action" in v or "observation" in v)
        for v in values[:5]
    )


def parse(events: list[Any]) -> TraceRecord:
    messages: list[dict[str, Any]] = []
    seen_responses: set[str] = set()
    for i, ev in enumerate(events):
        field = f"events[{i}]"
        if not isinstance(ev, dict):
            raise RecordError(field, f"expected an event object, got {type_name(ev)}")
        meta = (
            ev.get("tool_call_metadata") if isinstance(ev.get("tool_call_metadata"), dict) else None
        )
        if "observation" in ev and meta:
            messages.append(
                message(
                    "tool",
                    tool_result_part(
                        meta.get("tool_call_id"),
                        ev.get("content") or ev.get("message") or "",
                        ev.get("observation") == "error",
                    ),
                )
            )
        elif "action" in ev and meta and isinstance(meta.get("model_response"), dict):
            resp = meta["model_response"]
            if resp.get("id") in seen_responses:
                continue  # one response with several tool calls appears on each action
            seen_responses.add(resp.get("id"))
            for c, choice in enumerate(resp.get("choices") or []):
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    messages.extend(
                        normalize_item(
                            choice["message"],
                            f"{field}.tool_call_metadata.model_response.choices[{c}].message",
                        )
                    )
        elif ev.get("action") == "message" and ev.get("source") in ("user", "agent"):
            text = (ev.get("args") or {}).get("content") or ev.get("message") or ""
            role = "user" if ev["source"] == "user" else "assistant"
            messages.append(message(role, text_part(text)))
        elif ev.get("action") == "finish":
            text = (ev.get("args") or {}).get("final_thought") or ev.get("message") or ""
            if text:
                messages.append(message("assistant", text_part(text)))
    if not messages:
        raise RecordError("", "no messages, actions or observations found")
    return TraceRecord(
        source=SOURCE, messages=messages, metadata={"n_events": len(events)}
    ).finish()


def is_eval_output(value: Any) -> bool:
    """OpenHands' evaluation output (output.jsonl): one instance per line, events in `history`."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("history"), list)
        and detect_list(value["history"])
    )


def parse_eval_output(value: dict[str, Any]) -> TraceRecord:
    rec = parse(value["history"])
    iid = value.get("instance_id")
    if isinstance(iid, (str, int)) and not isinstance(iid, bool):
        rec.external_id = str(iid)
    if isinstance(value.get("instruction"), str):
        rec.task = value["instruction"]
    if isinstance(value.get("error"), str):
        rec.metadata["error"] = value["error"]
    result = value.get("test_result")
    if isinstance(result, dict):
        rec.metadata["test_result"] = {
            k: v for k, v in result.items() if isinstance(v, (str, int, float, bool))
        }
        report = result.get("report")
        if isinstance(report, dict) and isinstance(report.get("resolved"), bool):
            rec.outcome = 1.0 if report["resolved"] else 0.0
            rec.outcome_label = "resolved" if report["resolved"] else "unresolved"
            rec.outcome_source = "openhands:test_result.report.resolved"
    return rec
