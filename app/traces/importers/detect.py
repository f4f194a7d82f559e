"""Which format a record is in, from its content alone.

Order matters: formats with a distinctive envelope (Langfuse, OTel, Inspect, SWE-agent, ...)
are tried before the generic "a record with a message list" rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.traces.importers import benchmarks, frameworks, langfuse, langsmith, openhands, otel
from app.traces.importers.conversations import OUTCOME_KEYS, find_messages_key, get_path

_RESPONSES_TYPES = {
    "function_call",
    "function_call_output",
    "reasoning",
    "message",
    "custom_tool_call",
}
_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking"}

# Formats with an envelope of their own, each with the test that recognises one record.
ENVELOPES: dict[str, Callable[[Any], bool]] = {
    "langfuse": langfuse.detect,
    "otel": otel.detect,
    "langsmith": langsmith.detect,
    "openai-agents": frameworks.is_openai_agents,
    "inspect": lambda v: frameworks.is_inspect_log(v) or frameworks.is_inspect_sample(v),
    "swe-agent": benchmarks.is_swe_agent,
    "mini-swe-agent": benchmarks.is_mini_swe_agent,
    "toolbench": benchmarks.is_toolbench,
    "tau-bench": benchmarks.is_tau_bench,
    "agentbench": benchmarks.is_agentbench,
    "langgraph": frameworks.is_langgraph_state,
    "smolagents": frameworks.is_smolagents_steps,
    "openhands": lambda v: (
        openhands.is_eval_output(v) or (isinstance(v, list) and openhands.detect_list(v))
    ),
}


def looks_like_message(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if ("role" in value or "from" in value) and find_messages_key(value) is None:
        return True
    return (
        value.get("type") in _RESPONSES_TYPES
        and "role" not in value
        or value.get("type") == "message"
    )


def starts_whole_file(value: Any) -> str | None:
    """The format of a file whose top-level array is one trace, judged by its first item."""
    if looks_like_message(value):
        return "messages"
    if openhands.detect_list([value]):
        return "openhands"
    if frameworks.is_smolagents_steps([value]):
        return "smolagents"
    return None


def classify_messages(items: list[Any]) -> str:
    for item in items:
        if not isinstance(item, dict):
            continue
        if "from" in item and "value" in item:
            return "sharegpt"
        if item.get("type") in _RESPONSES_TYPES:
            return "openai-responses"
        content = item.get("content")
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in _ANTHROPIC_BLOCKS for b in content
        ):
            return "anthropic"
    return "openai-chat"


def detect_record(value: Any) -> str | None:
    for name, test in ENVELOPES.items():
        if test(value):
            return name
    if isinstance(value, list):
        return (
            classify_messages(value)
            if value and all(looks_like_message(v) for v in value[:3])
            else None
        )
    if not isinstance(value, dict):
        return None
    if value.get("object") == "response" or (
        isinstance(value.get("input"), list)
        and classify_messages(value["input"]) == "openai-responses"
    ):
        return "openai-responses"
    key = find_messages_key(value)
    if key is None:
        return None
    kind = classify_messages(value[key])
    if kind in ("sharegpt", "openai-responses"):
        return kind
    if kind == "anthropic" or isinstance(value.get("system"), (str, list)):
        return "anthropic"
    has_outcome = any(get_path(value, k) is not None for k in OUTCOME_KEYS)
    if key not in ("messages", "input") or has_outcome:
        return "benchmark"
    return "openai-chat"
