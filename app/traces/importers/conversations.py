"""Record-per-trace formats: a message list plus an outcome, an id, tools and metadata.

OpenAI Chat, OpenAI Responses, Anthropic Messages, ShareGPT and benchmark dumps differ in
where a record keeps its messages and outcome; the messages themselves are normalised by
app.traces.importers.messages, which reads every vendor shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.traces.importers.messages import (
    RecordError,
    content_parts,
    normalize_item,
    normalize_messages,
    to_text,
    type_name,
)
from app.traces.model import TraceRecord, message

MESSAGE_KEYS = (
    "messages",
    "conversations",
    "conversation",
    "traj",
    "trajectory",
    "history",
    "train_messages",
    "input",
    "chat",
    "dialog",
)
OUTCOME_KEYS = (
    "reward",
    "score",
    "win",
    "success",
    "resolved",
    "passed",
    "pass",
    "outcome",
    "info.exit_status",
    "exit_status",
    "label",
)
ID_KEYS = ("task_id", "id", "instance_id", "trace_id", "conversation_id", "uuid", "sample_id")
TASK_KEYS = ("task", "prompt", "instruction", "question", "problem_statement", "query")
OUTPUT_KEYS = ("output", "response", "completion", "choices")

PASS_WORDS = {"pass", "passed", "success", "succeeded", "resolved", "true", "yes", "correct", "win"}
FAIL_WORDS = {
    "fail",
    "failed",
    "failure",
    "false",
    "no",
    "error",
    "incorrect",
    "loss",
    "unresolved",
}


@dataclass
class KeyOptions:
    """User overrides for benchmark dumps (--messages-key, --outcome-key, --id-key)."""

    messages_key: str | None = None
    outcome_key: str | None = None
    id_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def get_path(record: dict[str, Any], dotted: str) -> Any:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _holds_messages(items: list[Any]) -> bool:
    return any(
        isinstance(v, dict) and ("role" in v or ("from" in v and "value" in v)) for v in items[:3]
    )


def find_messages_key(record: dict[str, Any]) -> str | None:
    """The key of the record's message list. A record may hold several candidate lists
    (SWE-agent: `trajectory` of steps and `history` of messages): the one whose items are
    messages wins over a list of other objects."""
    fallback = None
    for key in MESSAGE_KEYS:
        value = record.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            if _holds_messages(value):
                return key
            fallback = fallback or key
    return fallback


def longest_of_prefixes(lists: list[Any], field: str) -> tuple[list[Any], list[str]]:
    """The longest of a list of growing conversation prefixes, and a warning for each list
    that is not a prefix of it (the data then holds branches, of which only one is kept)."""
    for i, item in enumerate(lists):
        if not isinstance(item, list):
            raise RecordError(f"{field}[{i}]", f"expected a message list, got {type_name(item)}")
    longest_i = max(range(len(lists)), key=lambda i: len(lists[i]))
    longest = lists[longest_i]
    warnings = []
    for i, item in enumerate(lists):
        if item != longest[: len(item)]:
            first = next(
                (k for k, (a, b) in enumerate(zip(item, longest, strict=False)) if a != b),
                len(longest),
            )
            warnings.append(
                f"{field}[{i}] is not a prefix of the longest list {field}[{longest_i}] "
                f"(differs at message {first}); only {field}[{longest_i}] was imported"
            )
    return longest, warnings


def normalize_outcome(value: Any) -> tuple[float | None, str | None]:
    """A reward, score, pass/fail flag or status word as (number, label)."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), ("pass" if value else "fail")
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in PASS_WORDS:
            return 1.0, value
        if word in FAIL_WORDS:
            return 0.0, value
        try:
            return float(word), None
        except ValueError:
            return None, value[:80]
    if isinstance(value, dict):  # e.g. {"reward": 1.0} or {"score": ...}
        for key in ("reward", "score", "value", "resolved", "success"):
            if key in value:
                return normalize_outcome(value[key])
    return None, None


def find_outcome(
    record: dict[str, Any], key: str | None
) -> tuple[float | None, str | None, str | None]:
    keys = (key,) if key else OUTCOME_KEYS
    for k in keys:
        value = get_path(record, k)
        if value is None:
            continue
        number, label = normalize_outcome(value)
        if number is not None or label is not None:
            return number, label, k
        if key:
            raise RecordError(
                k, f"expected a number, boolean or status word, got {type_name(value)}"
            )
    return None, None, None


def find_id(record: dict[str, Any], key: str | None) -> str | None:
    for k in (key,) if key else ID_KEYS:
        value = get_path(record, k)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def normalize_tools(tools: Any, field_name: str = "tools") -> list[dict[str, Any]]:
    """OpenAI, Responses and Anthropic tool definitions as {name, description, parameters}."""
    if not isinstance(tools, list):
        return []
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise RecordError(
                f"{field_name}[{i}]", f"expected a tool object, got {type_name(tool)}"
            )
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = fn.get("name")
        if not isinstance(name, str):
            continue  # built-in tools (web_search, code_interpreter) carry no schema
        params = fn.get("parameters") or fn.get("input_schema") or fn.get("inputSchema") or {}
        out.append({"name": name, "description": fn.get("description") or "", "parameters": params})
    return out


def output_messages(value: Any, field_name: str) -> list[dict[str, Any]]:
    """A model response attached to a record: Chat `choices`, a Responses object, a message."""
    if isinstance(value, str):
        return [message("assistant", *content_parts(value, field_name))]
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list):
            return output_messages(value["choices"], f"{field_name}.choices")
        if isinstance(value.get("output"), list):  # Responses object
            return normalize_messages(value["output"], f"{field_name}.output")
        if "role" in value or "type" in value:
            return normalize_item(value, field_name)
        if isinstance(value.get("message"), dict):
            return normalize_item(value["message"], f"{field_name}.message")
        return [message("assistant", *content_parts(to_text(value), field_name))]
    if isinstance(value, list):
        msgs: list[dict[str, Any]] = []
        for i, item in enumerate(value):
            f = f"{field_name}[{i}]"
            if isinstance(item, dict) and isinstance(item.get("message"), dict):
                msgs.extend(normalize_item(item["message"], f"{f}.message"))
            else:
                msgs.extend(output_messages(item, f))
        return msgs
    return []


def conversation_record(value: Any, source: str, options: KeyOptions | None = None) -> TraceRecord:
    """One record of a conversation format -> TraceRecord (raises RecordError)."""
    options = options or KeyOptions()
    if isinstance(value, list):
        return TraceRecord(source=source, messages=normalize_messages(value)).finish()
    if not isinstance(value, dict):
        raise RecordError("", f"expected an object or a message list, got {type_name(value)}")
    key = options.messages_key or find_messages_key(value)
    if key is None:
        key = next((k for k in MESSAGE_KEYS if k in value), None)  # present but malformed
    if key is None:
        raise RecordError(
            "messages",
            f"no message list found (looked for {', '.join(MESSAGE_KEYS)}; use --messages-key)",
        )
    raw = get_path(value, key)
    if raw is None:
        raise RecordError(key, "missing")
    warnings: list[str] = []
    if isinstance(raw, list) and raw and all(isinstance(v, list) for v in raw):
        raw, warnings = longest_of_prefixes(raw, key)  # ToolBench-style growing prefixes
    messages = normalize_messages(raw, key)
    system = value.get("system") if isinstance(value.get("system"), (str, list)) else None
    if system is None and isinstance(value.get("instructions"), str):
        system = value["instructions"]
    if system:
        messages.insert(0, message("system", *content_parts(system, "system")))
    if key == "input" or any(k in value for k in ("choices",)):
        for out_key in OUTPUT_KEYS:
            if value.get(out_key) is not None and out_key != key:
                messages.extend(output_messages(value[out_key], out_key))
                break
    outcome, label, outcome_key = find_outcome(value, options.outcome_key)
    task = next((value[k] for k in TASK_KEYS if isinstance(value.get(k), str)), None)
    meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    meta = dict(meta)
    for k, v in value.items():  # small scalar fields of the record are kept as metadata
        small = (
            v is None
            or isinstance(v, (int, float, bool))
            or (isinstance(v, str) and len(v) <= 2000)
        )
        if small and k not in MESSAGE_KEYS and k not in ("metadata", "tools", "system"):
            meta.setdefault(k, v)
    if isinstance(value.get("info"), dict):
        meta.setdefault(
            "info", {k: v for k, v in value["info"].items() if not isinstance(v, (dict, list))}
        )
    if warnings:
        meta["import_warnings"] = warnings
    scores = []
    if isinstance(value.get("scores"), dict):
        scores = [
            {"name": str(k), "value": float(v), "source": source, "comment": ""}
            for k, v in value["scores"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
    return TraceRecord(
        source=source,
        messages=messages,
        external_id=find_id(value, options.id_key),
        task=task,
        tools=normalize_tools(value.get("tools")),
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source=f"{source}:{outcome_key}" if outcome_key else None,
        scores=scores,
    ).finish()
