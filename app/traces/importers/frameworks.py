"""Agent frameworks' own exports: Inspect AI eval logs, LangGraph checkpoints and thread
states, smolagents memory steps, OpenAI Agents SDK trace exports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from app.traces.importers.assemble import ConversationBuilder
from app.traces.importers.conversations import longest_of_prefixes, normalize_outcome
from app.traces.importers.messages import (
    RecordError,
    as_record_error,
    content_parts,
    normalize_item,
    normalize_messages,
    to_text,
    type_name,
)
from app.traces.importers.reader import INSPECT_EVAL_KEY
from app.traces.model import TraceRecord, message, text_part

Result = tuple[str, TraceRecord | RecordError]

# ---------------------------------------------------------------------------------------------
# Inspect AI: a JSON log ({eval, samples}) or the samples of a .eval archive

# Inspect's value_to_float: CORRECT "C" 1.0, INCORRECT "I" 0, PARTIAL "P" 0.5, NOANSWER "N" 0
_INSPECT_VALUES = {
    "C": (1.0, "correct"),
    "I": (0.0, "incorrect"),
    "P": (0.5, "partial"),
    "N": (0.0, "no answer"),
}


def is_inspect_log(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("eval"), dict)
        and ("samples" in value or "results" in value or "plan" in value)
    )


def is_inspect_sample(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "epoch" in value
        and "input" in value
        and isinstance(value.get("messages"), list)
    )


def _resolve_attachments(value: Any, attachments: dict[str, Any]) -> Any:
    """Inspect moves long strings to `attachments` and leaves `attachment://<hash>` behind."""
    if not attachments:
        return value
    if isinstance(value, str):
        if value.startswith("attachment://"):
            found = attachments.get(value[len("attachment://") :])
            return found if isinstance(found, str) else value
        return value
    if isinstance(value, list):
        return [_resolve_attachments(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_attachments(v, attachments) for k, v in value.items()}
    return value


def _inspect_score(
    scores: Any,
) -> tuple[float | None, str | None, str | None, list[dict[str, Any]]]:
    if not isinstance(scores, dict):
        return None, None, None, []
    listed = []
    first: tuple[float | None, str | None, str | None] = (None, None, None)
    for name, score in scores.items():
        if not isinstance(score, dict):
            continue
        value = score.get("value")
        if isinstance(value, str) and value in _INSPECT_VALUES:
            number, label = _INSPECT_VALUES[value]
        else:
            number, label = (
                normalize_outcome(value) if not isinstance(value, (dict, list)) else (None, None)
            )
        if number is not None:
            comment = score.get("explanation") if isinstance(score.get("explanation"), str) else ""
            listed.append(
                {"name": str(name), "value": number, "source": "inspect", "comment": comment}
            )
        if first == (None, None, None) and (number is not None or label is not None):
            first = (number, label, f"inspect:scores.{name}")
    return (*first, listed)


def inspect_sample_record(
    sample: dict[str, Any], header: dict[str, Any] | None = None
) -> TraceRecord:
    header = header or sample.get(INSPECT_EVAL_KEY) or {}
    attachments = sample.get("attachments") if isinstance(sample.get("attachments"), dict) else {}
    raw = _resolve_attachments(sample.get("messages") or [], attachments)
    messages = normalize_messages(raw, "messages")
    if not messages and isinstance(sample.get("input"), str):
        messages = [message("user", text_part(sample["input"]))]
    output = sample.get("output") if isinstance(sample.get("output"), dict) else {}
    completion = output.get("completion")
    if (
        isinstance(completion, str)
        and completion
        and not any(m["role"] == "assistant" for m in messages)
    ):
        messages.append(message("assistant", text_part(completion)))
    outcome, label, where, scores = _inspect_score(sample.get("scores"))
    meta: dict[str, Any] = {
        k: header[k]
        for k in ("task", "model", "run_id", "task_id")
        if isinstance(header.get(k), str)
    }
    if isinstance(sample.get("metadata"), dict):
        meta["sample_metadata"] = sample["metadata"]
    if isinstance(sample.get("error"), dict):
        meta["error"] = to_text(sample["error"].get("message"))
    ref: dict[str, Any] = {}
    if sample.get("target") not in (None, "", []):
        ref["target"] = sample["target"]
    for name, score in (
        (sample.get("scores") or {}).items() if isinstance(sample.get("scores"), dict) else []
    ):
        if isinstance(score, dict):
            ref.setdefault("scores", {})[str(name)] = {
                k: score[k] for k in ("value", "answer", "explanation") if k in score
            }
    if ref:
        meta["reference"] = ref
    sid, epoch = sample.get("id"), sample.get("epoch")
    ext = None
    if isinstance(sid, (int, str)) and not isinstance(sid, bool):
        ext = f"{sid}" if epoch in (None, 1) else f"{sid}#epoch{epoch}"
    task = sample["input"] if isinstance(sample.get("input"), str) else None
    return TraceRecord(
        source="inspect",
        messages=messages,
        external_id=ext,
        task=task,
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source=where,
        scores=scores,
    ).finish()


def inspect_log_records(log: dict[str, Any]) -> Iterator[Result]:
    header = log["eval"]
    samples = log.get("samples")
    if not isinstance(samples, list) or not samples:
        yield (
            "samples",
            RecordError(
                "samples", "the eval log holds no samples (written with --no-log-samples?)"
            ),
        )
        return
    for i, sample in enumerate(samples):
        loc = f"samples[{i}]"
        if not isinstance(sample, dict):
            yield loc, RecordError("", f"expected a sample object, got {type_name(sample)}")
            continue
        try:
            yield loc, inspect_sample_record(sample, header)
        except Exception as exc:  # noqa: BLE001 - one trace's failure is its own error
            yield loc, as_record_error(exc, "inspect")


# ---------------------------------------------------------------------------------------------
# LangGraph: checkpoints (channel_values) and thread states (values, from the LangGraph API)


def _state_values(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("channel_values"), dict):
        return value["channel_values"]
    if isinstance(value.get("values"), dict) and ("checkpoint" in value or "next" in value):
        return value["values"]
    cp = value.get("checkpoint")
    if isinstance(cp, dict) and isinstance(cp.get("channel_values"), dict):
        return cp["channel_values"]
    return None


def is_langgraph_state(value: Any) -> bool:
    values = _state_values(value)
    return values is not None and isinstance(values.get("messages"), list)


def _thread_id(state: dict[str, Any]) -> str:
    for path in (
        ("checkpoint", "thread_id"),
        ("config", "configurable", "thread_id"),
        ("metadata", "thread_id"),
        ("thread_id",),
    ):
        node: Any = state
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (str, int)) and not isinstance(node, bool):
            return str(node)
    return ""


def langgraph_records(states: list[tuple[str, Any]]) -> Iterator[Result]:
    """One trace per thread: the checkpoint holding the most messages (the others are its
    earlier states; a warning names any that is not a prefix of it)."""
    threads: dict[str, list[tuple[str, list[Any]]]] = defaultdict(list)
    for loc, state in states:
        if not is_langgraph_state(state):
            yield loc, RecordError("", "not a LangGraph checkpoint or thread state with messages")
            continue
        threads[_thread_id(state)].append((loc, _state_values(state)["messages"]))
    for thread, group in threads.items():
        loc = f"thread {thread}" if thread else group[0][0]
        try:
            lists = [msgs for _, msgs in group]
            longest, warnings = longest_of_prefixes(lists, "states")
            warnings = [w.replace("states[", "state ") for w in warnings]
            meta: dict[str, Any] = {"n_checkpoints": len(group)}
            if warnings:
                meta["import_warnings"] = warnings
            yield (
                loc,
                TraceRecord(
                    source="langgraph",
                    messages=normalize_messages(longest, "values.messages"),
                    external_id=thread or None,
                    metadata=meta,
                ).finish(),
            )
        except Exception as exc:  # noqa: BLE001 - one trace's failure is its own error
            yield loc, as_record_error(exc, "langgraph")


# ---------------------------------------------------------------------------------------------
# smolagents: AgentMemory.get_full_steps() / get_succinct_steps()


def _is_step(value: Any) -> bool:
    return isinstance(value, dict) and (
        ("step_number" in value and ("model_output" in value or "observations" in value))
        or ("task" in value and "task_images" in value)
        or ("plan" in value and "model_output_message" in value)
        or set(value) == {"system_prompt"}
    )


def is_smolagents_steps(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("steps"), list):
        value = value["steps"]
    return isinstance(value, list) and bool(value) and all(_is_step(v) for v in value[:3])


def _smol_tool_calls(calls: Any, field: str) -> list[dict[str, Any]]:
    if not calls:
        return []
    return normalize_item({"role": "assistant", "content": None, "tool_calls": calls}, field)[0][
        "parts"
    ]


def _action_step(step: dict[str, Any], field: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    said = step.get("model_output")
    parts = content_parts(said, f"{field}.model_output") if isinstance(said, (str, list)) else []
    if not parts and isinstance(step.get("model_output_message"), dict):
        parts = content_parts(
            step["model_output_message"].get("content"), f"{field}.model_output_message.content"
        )
    calls = _smol_tool_calls(step.get("tool_calls"), f"{field}.tool_calls")
    if parts or calls:
        out.append(message("assistant", *parts, *calls))
    call_id = calls[0]["id"] if calls else ""
    error = step.get("error")
    if step.get("observations") not in (None, ""):
        result = {
            "type": "tool_result",
            "call_id": call_id,
            "content": to_text(step["observations"]),
            "is_error": False,
        }
        out.append(
            message("tool", result) if calls else message("user", text_part(result["content"]))
        )
    if isinstance(error, dict):
        text = to_text(error.get("message") or error)
        if calls and not step.get("observations"):
            out.append(
                message(
                    "tool",
                    {"type": "tool_result", "call_id": call_id, "content": text, "is_error": True},
                )
            )
        else:
            out.append(message("user", text_part(f"Error: {text}")))
    return out


def smolagents_record(value: Any) -> TraceRecord:
    steps = value["steps"] if isinstance(value, dict) else value
    messages: list[dict[str, Any]] = []
    final = None
    for i, step in enumerate(steps):
        field = f"steps[{i}]"
        if not isinstance(step, dict):
            raise RecordError(field, f"expected a step object, got {type_name(step)}")
        if "system_prompt" in step and len(step) == 1:
            messages.append(message("system", text_part(to_text(step["system_prompt"]))))
        elif "task" in step and "step_number" not in step:
            messages.append(message("user", text_part(to_text(step["task"]))))
        elif "plan" in step and "step_number" not in step:
            messages.append(message("assistant", text_part(to_text(step["plan"]))))
        elif "step_number" in step:
            messages.extend(_action_step(step, field))
            if step.get("is_final_answer") and step.get("action_output") is not None:
                final = to_text(step["action_output"])
        elif set(step) == {"output"}:
            final = to_text(step["output"])
    from app.traces.importers.messages import link_tool_results

    return TraceRecord(
        source="smolagents",
        messages=link_tool_results(messages),
        final_output=final,
        metadata={"n_steps": len(steps)},
    ).finish()


# ---------------------------------------------------------------------------------------------
# OpenAI Agents SDK: Trace.export() / Span.export() objects (or an ingest payload {"data": [...]})


def is_openai_agents(value: Any) -> bool:
    if isinstance(value, dict) and isinstance(value.get("data"), list) and value["data"]:
        value = value["data"][0]
    return isinstance(value, dict) and value.get("object") in ("trace", "trace.span")


def openai_agents_items(value: Any) -> list[Any]:
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return value["data"]
    return value if isinstance(value, list) else [value]


def _agents_trace(trace_id: str, trace: dict[str, Any], spans: list[dict[str, Any]]) -> TraceRecord:
    builder = ConversationBuilder()
    agents: list[str] = []
    model = None
    for i, span in enumerate(sorted(spans, key=lambda s: str(s.get("started_at") or ""))):
        data = span.get("span_data")
        if not isinstance(data, dict):
            continue
        kind = data.get("type")
        field = f"span {span.get('id') or i}.span_data"
        if kind == "generation":
            if isinstance(data.get("input"), list):
                builder.add_history(normalize_messages(data["input"], f"{field}.input"))
            if isinstance(data.get("output"), list):
                builder.add_output(normalize_messages(data["output"], f"{field}.output"))
            model = model or (data.get("model") if isinstance(data.get("model"), str) else None)
        elif kind == "function":
            name = data.get("name") if isinstance(data.get("name"), str) else "function"
            builder.add_tool_step(
                "",
                name,
                data.get("input"),
                to_text(data.get("output")),
                span.get("error") is not None,
            )
        elif kind == "agent" and isinstance(data.get("name"), str):
            agents.append(data["name"])
    if not builder.messages:
        raise RecordError("", "no generation or function span carries messages or tool calls")
    meta: dict[str, Any] = {"n_spans": len(spans)}
    for key in ("workflow_name", "group_id"):
        if isinstance(trace.get(key), str):
            meta[key] = trace[key]
    if isinstance(trace.get("metadata"), dict):
        meta["trace_metadata"] = trace["metadata"]
    if agents:
        meta["agents"] = sorted(set(agents))
    if model:
        meta["model"] = model
    return TraceRecord(
        source="openai-agents",
        messages=builder.finish(),
        external_id=trace_id or None,
        metadata=meta,
    ).finish()


def openai_agents_records(items: list[tuple[str, Any]]) -> Iterator[Result]:
    traces: dict[str, dict[str, Any]] = {}
    spans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for loc, item in items:
        if not isinstance(item, dict) or item.get("object") not in ("trace", "trace.span"):
            yield loc, RecordError("object", "expected an OpenAI Agents SDK trace or span export")
            continue
        if item["object"] == "trace":
            traces[str(item.get("id") or "")] = item
        else:
            spans[str(item.get("trace_id") or "")].append(item)
    for trace_id in dict.fromkeys([*traces, *spans]):
        loc = f"trace {trace_id}"
        try:
            yield loc, _agents_trace(trace_id, traces.get(trace_id, {}), spans.get(trace_id, []))
        except Exception as exc:  # noqa: BLE001 - one trace's failure is its own error
            yield loc, as_record_error(exc, "openai-agents")
