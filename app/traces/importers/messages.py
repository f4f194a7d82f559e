"""Normalise message lists from any vendor's shape into the internal trace model.

One function, `normalize_messages`, reads a list whose items may be in any of these shapes,
mixed (framework exports do mix them):

- OpenAI Chat Completions messages, incl. legacy `function_call` and `role: function`;
- OpenAI Responses API items (`message`, `function_call`, `function_call_output`, `reasoning`);
- Anthropic Messages (`text`, `tool_use`, `tool_result`, `thinking` blocks);
- OpenTelemetry GenAI semantic-convention messages (`parts` with `tool_call`, ...);
- Google Gemini contents (`parts` with `function_call` / `function_response`);
- Vercel AI SDK parts (`tool-call`, `tool-result`), LangChain / LangSmith serialised messages;
- ShareGPT turns (`from` / `value`, incl. `function_call` and `observation`).

Bad input raises RecordError naming the field path, e.g. `messages[3].role`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from app.traces.model import message, text_part

ROLE_MAP = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "chatbot": "assistant",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
    "function_call": "assistant",
    "agent": "assistant",
    "tool-call": "assistant",  # smolagents' MessageRole.TOOL_CALL
    "tool-response": "tool",  # smolagents' MessageRole.TOOL_RESPONSE
}

LANGCHAIN_TYPES = {
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "tool",
    "ChatMessage": None,
}

# LangChain / LangGraph messages as plain dicts ({"type": "human", "content": ...}), the shape
# of the LangGraph API's thread states.
LANGCHAIN_DICT_TYPES = {
    "human": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}


class RecordError(ValueError):
    """A record that cannot be imported; `field` is a path like `messages[2].role`."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def as_record_error(exc: Exception, what: str = "this format") -> RecordError:
    """Any failure while reading one record, as that record's error (never a crash)."""
    if isinstance(exc, RecordError):
        return exc
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return RecordError("", f"unexpected structure for {what} ({detail})")


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def expect(value: Any, kind: type | tuple[type, ...], field: str, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RecordError(field, f"expected {what}, got {type_name(value)}")
    return value


def to_text(value: Any) -> str:
    """Render tool output or unknown content as text (JSON for structures)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return json.dumps(value, indent=2, default=str)


def parse_arguments(raw: Any) -> tuple[Any, bool]:
    """Tool-call arguments as parsed JSON; (raw string, True) when they are not JSON."""
    if raw is None:
        return {}, False
    if not isinstance(raw, str):
        return raw, False
    if not raw.strip():
        return {}, False
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError:
        return raw, True


def tool_call_part(call_id: Any, name: Any, arguments: Any, field: str) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise RecordError(f"{field}.name", f"expected a tool name, got {type_name(name)}")
    args, invalid = parse_arguments(arguments)
    part: dict[str, Any] = {
        "type": "tool_call",
        "id": str(call_id or ""),
        "name": name,
        "arguments": args,
    }
    if invalid:
        part["arguments_invalid"] = True
    return part


def tool_result_part(call_id: Any, content: Any, is_error: bool = False) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "call_id": str(call_id or ""),
        "content": to_text(content),
        "is_error": bool(is_error),
    }


def map_role(raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise RecordError(field, f"expected a role string, got {type_name(raw)}")
    role = ROLE_MAP.get(raw.strip().lower())
    if role is None:
        raise RecordError(field, f"unknown role {raw[:40]!r}")
    return role


# ---------------------------------------------------------------------------------------------
# Content parts (lists of typed blocks) shared by OpenAI, Anthropic, OTel, Vercel, Gemini.


def content_parts(content: Any, field: str) -> list[dict[str, Any]]:
    """Convert one message's `content` (string, list of blocks, or null) into parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)] if content else []
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return [text_part(to_text(content))]
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        parts.extend(block_parts(block, f"{field}[{i}]"))
    return parts


def block_parts(block: Any, field: str) -> list[dict[str, Any]]:  # noqa: C901 - a dispatch table
    if isinstance(block, str):
        return [text_part(block)] if block else []
    if not isinstance(block, dict):
        raise RecordError(field, f"expected a content block, got {type_name(block)}")
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text", "summary_text") or (
        kind is None and "text" in block
    ):
        text = block.get("text", block.get("content", ""))
        return [text_part(to_text(text))] if text else []
    if kind == "text" or (kind is None and isinstance(block.get("content"), str)):
        return [text_part(block["content"])]
    if kind in ("thinking", "reasoning", "redacted_thinking"):
        text = (
            block.get("thinking")
            or block.get("reasoning")  # Inspect AI's ContentReasoning
            or block.get("text")
            or block.get("content")
            or ""
        )
        if kind == "redacted_thinking":
            text = "[redacted thinking]"
        return [{"type": "reasoning", "text": to_text(text)}] if text else []
    if kind == "tool_use" or kind == "server_tool_use":
        return [tool_call_part(block.get("id"), block.get("name"), block.get("input"), field)]
    if kind == "tool_result" or kind == "tool_call_response" or kind == "function_response":
        call_id = block.get("tool_use_id") or block.get("id") or block.get("call_id")
        content = block.get("content", block.get("response", block.get("result")))
        if isinstance(content, list):
            content = "\n".join(
                b.get("text", to_text(b)) if isinstance(b, dict) else to_text(b) for b in content
            )
        return [tool_result_part(call_id, content, bool(block.get("is_error")))]
    if kind in ("tool_call", "function_call", "tool-call"):
        name = block.get("name") or block.get("toolName")
        args = block.get("arguments", block.get("input", block.get("args")))
        call_id = block.get("id") or block.get("call_id") or block.get("toolCallId")
        return [tool_call_part(call_id, name, args, field)]
    if kind == "tool-result":
        out = block.get("output", block.get("result"))
        if isinstance(out, dict) and "value" in out and out.get("type") in ("text", "json"):
            out = out["value"]
        return [tool_result_part(block.get("toolCallId"), out, bool(block.get("isError")))]
    if "function_call" in block and isinstance(block["function_call"], dict):  # Gemini
        fc = block["function_call"]
        return [
            tool_call_part(fc.get("id"), fc.get("name"), fc.get("args"), f"{field}.function_call")
        ]
    if "functionCall" in block and isinstance(block["functionCall"], dict):
        fc = block["functionCall"]
        return [
            tool_call_part(fc.get("id"), fc.get("name"), fc.get("args"), f"{field}.functionCall")
        ]
    for key in ("function_response", "functionResponse"):
        if key in block and isinstance(block[key], dict):
            fr = block[key]
            return [tool_result_part(fr.get("id") or fr.get("name"), fr.get("response"))]
    if kind in ("image", "image_url", "input_image", "file", "input_file", "document", "audio"):
        return [text_part(f"[{kind}]")]
    return [text_part(to_text(block))]


# ---------------------------------------------------------------------------------------------
# Whole messages.


def openai_tool_calls(calls: Any, field: str) -> list[dict[str, Any]]:
    expect(calls, list, field, "an array of tool calls")
    parts = []
    for i, call in enumerate(calls):
        f = f"{field}[{i}]"
        expect(call, dict, f, "a tool call object")
        fn = call.get("function")
        if isinstance(fn, dict):  # OpenAI
            parts.append(
                tool_call_part(call.get("id"), fn.get("name"), fn.get("arguments"), f"{f}.function")
            )
        elif isinstance(fn, str):  # Inspect AI: {id, function: name, arguments: {...}}
            parts.append(tool_call_part(call.get("id"), fn, call.get("arguments"), f))
        else:  # LangChain {name, args, id} or flat {name, arguments, id}
            args = call.get("args", call.get("arguments", call.get("input")))
            parts.append(tool_call_part(call.get("id"), call.get("name"), args, f))
    return parts


_PLAIN_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "developer": "system"}


_OPENAI_ASSISTANT_KEYS = {"role", "content", "tool_calls"}


def _fast_openai_assistant(item: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The most common shape in real exports, without the general machinery; None if the
    item is anything else (then the general path handles it, with its error messages)."""
    if item["role"] != "assistant" or not item.keys() <= _OPENAI_ASSISTANT_KEYS:
        return None
    content = item.get("content")
    calls = item.get("tool_calls")
    if not (content is None or type(content) is str) or not (calls is None or type(calls) is list):
        return None
    parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
    for call in calls or ():
        fn = call.get("function") if type(call) is dict else None
        name = fn.get("name") if type(fn) is dict else None
        if type(name) is not str or not name:
            return None
        args, invalid = parse_arguments(fn.get("arguments"))
        part = {
            "type": "tool_call",
            "id": str(call.get("id") or ""),
            "name": name,
            "arguments": args,
        }
        if invalid:
            part["arguments_invalid"] = True
        parts.append(part)
    return [{"role": "assistant", "parts": parts}]


def normalize_item(item: Any, field: str) -> list[dict[str, Any]]:
    """One source item -> zero or more internal messages."""
    if type(item) is not dict:
        expect(item, dict, field, "a message object")
    if "role" in item and "lc" not in item and "data" not in item:
        if len(item) <= 2 and type(item.get("content")) is str:  # fast path: {"role", "content"}
            role = _PLAIN_ROLES.get(item["role"])
            if role is not None:
                text = item["content"]
                return [{"role": role, "parts": [{"type": "text", "text": text}] if text else []}]
        return _fast_openai_assistant(item) or role_message(item, field)
    if item.get("lc") == 1 and isinstance(item.get("kwargs"), dict):  # LangChain serialised
        cls = (item.get("id") or ["", ""])[-1]
        kwargs = dict(item["kwargs"])
        role = LANGCHAIN_TYPES.get(cls) or kwargs.get("role") or kwargs.get("type") or "user"
        kwargs["role"] = role
        return normalize_item(kwargs, field)
    if "type" in item and "data" in item and isinstance(item["data"], dict) and "role" not in item:
        data = dict(item["data"])  # LangChain message_to_dict: {type: human, data: {...}}
        data.setdefault("role", item["type"])
        return normalize_item(data, field)
    if "from" in item and "value" in item and "role" not in item:
        return sharegpt_turn(item, field)
    kind = item.get("type")
    if type(kind) is str and kind in LANGCHAIN_DICT_TYPES and "content" in item:
        return role_message({**item, "role": LANGCHAIN_DICT_TYPES[kind]}, field)
    if kind in ("function_call", "custom_tool_call") and "role" not in item:
        return [
            message(
                "assistant",
                tool_call_part(
                    item.get("call_id") or item.get("id"),
                    item.get("name"),
                    item.get("arguments", item.get("input")),
                    field,
                ),
            )
        ]
    if kind in ("function_call_output", "custom_tool_call_output") and "role" not in item:
        return [message("tool", tool_result_part(item.get("call_id"), item.get("output")))]
    if kind == "reasoning" and "role" not in item:
        texts = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
        texts += [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
        text = "\n".join(t for t in texts if t)
        return [message("assistant", {"type": "reasoning", "text": text})] if text else []
    if "toolCallId" in item and "toolName" in item and "role" not in item:  # Vercel loose call
        if "output" in item or "result" in item:
            return [message("tool", *block_parts({**item, "type": "tool-result"}, field))]
        return [message("assistant", *block_parts({**item, "type": "tool-call"}, field))]
    if "role" not in item:
        if (
            "content" in item
            and isinstance(item.get("content"), (str, list))
            and kind in (None, "message")
        ):
            raise RecordError(f"{field}.role", "missing")
        raise RecordError(field, "not a message: no 'role' (or 'from', 'type') field")
    return role_message(item, field)


def role_message(item: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """A message with a `role`: OpenAI Chat, Anthropic, OTel GenAI, Gemini, LangChain dicts."""
    raw = item["role"]
    if raw == "tool" and type(item.get("content")) is str and item.get("tool_call_id"):
        return [
            {
                "role": "tool",
                "parts": [
                    {
                        "type": "tool_result",
                        "call_id": str(item["tool_call_id"]),
                        "content": item["content"],
                        "is_error": False,
                    }
                ],
            }
        ]
    role = map_role(raw, f"{field}.role")
    raw_role = str(item["role"]).lower()
    content_field = "parts" if "parts" in item and "content" not in item else "content"
    parts = content_parts(item.get(content_field), f"{field}.{content_field}")
    for key in ("reasoning_content", "reasoning"):
        if isinstance(item.get(key), str) and item[key]:
            parts.insert(0, {"type": "reasoning", "text": item[key]})
    if isinstance(item.get("thinking_blocks"), list):  # SWE-agent / LiteLLM
        thinking = content_parts(item["thinking_blocks"], f"{field}.thinking_blocks")
        parts[:0] = [p for p in thinking if p["type"] == "reasoning"]
    if "tool_calls" in item and item["tool_calls"]:
        parts.extend(openai_tool_calls(item["tool_calls"], f"{field}.tool_calls"))
    extra = item.get("additional_kwargs")
    if isinstance(extra, dict) and extra.get("tool_calls") and "tool_calls" not in item:
        parts.extend(
            openai_tool_calls(extra["tool_calls"], f"{field}.additional_kwargs.tool_calls")
        )
    if isinstance(item.get("function_call"), dict):  # legacy OpenAI
        fc = item["function_call"]
        parts.append(
            tool_call_part(
                fc.get("id") or "", fc.get("name"), fc.get("arguments"), f"{field}.function_call"
            )
        )
    if role == "tool":
        return [tool_message(item, parts, raw_role)]
    if role == "user" and parts and all(p["type"] == "tool_result" for p in parts):
        return [message("tool", p) for p in parts]  # Anthropic / Gemini tool results
    if role == "user" and any(p["type"] == "tool_result" for p in parts):
        results = [message("tool", p) for p in parts if p["type"] == "tool_result"]
        rest = [p for p in parts if p["type"] != "tool_result"]
        return results + [message("user", *rest)]
    return [
        message(role, *parts, name=item.get("name") if isinstance(item.get("name"), str) else None)
    ]


def tool_message(
    item: dict[str, Any], parts: list[dict[str, Any]], raw_role: str
) -> dict[str, Any]:
    if parts and all(p["type"] == "tool_result" for p in parts):
        return message("tool", *parts)
    text = "\n".join(p.get("text", "") for p in parts if p["type"] == "text")
    call_id = item.get("tool_call_id") or item.get("call_id") or item.get("id") or ""
    ids = item.get("tool_call_ids")  # SWE-agent names the call in a list
    if not call_id and isinstance(ids, list) and ids and isinstance(ids[0], str):
        call_id = ids[0]
    if raw_role == "function" and not call_id:
        call_id = item.get("name") or ""  # legacy: matched to the call by name below
    is_error = (
        bool(item.get("is_error"))
        or item.get("status") == "error"
        or isinstance(item.get("error"), dict)  # Inspect AI: {type, message}
    )
    name = item.get("name") if isinstance(item.get("name"), str) else None
    return message("tool", tool_result_part(call_id, text, is_error), name=name)


def sharegpt_turn(item: dict[str, Any], field: str) -> list[dict[str, Any]]:
    raw = item["from"]
    role = map_role(raw, f"{field}.from")
    value = item["value"]
    if not isinstance(value, str):
        raise RecordError(f"{field}.value", f"expected a string, got {type_name(value)}")
    if raw == "function_call":
        try:
            call = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise RecordError(f"{field}.value", "function_call is not valid JSON") from None
        calls = call if isinstance(call, list) else [call]
        parts = []
        for i, c in enumerate(calls):
            expect(c, dict, f"{field}.value[{i}]", "a function call object")
            parts.append(
                tool_call_part(
                    c.get("id"), c.get("name"), c.get("arguments", c.get("args")), f"{field}.value"
                )
            )
        return [message("assistant", *parts)]
    if role == "tool":
        return [message("tool", tool_result_part("", value))]
    return [message(role, text_part(value))] if value else [message(role)]


def normalize_messages(items: Any, field: str = "messages") -> list[dict[str, Any]]:
    """Normalise a message list; pair tool results with their calls; merge split turns."""
    expect(items, list, field, "an array of messages")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        out.extend(normalize_item(item, f"{field}[{i}]"))
    return link_tool_results(merge_assistant_fragments(out))


def merge_assistant_fragments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses-API items arrive as one item per call/reasoning: join consecutive ones."""
    merged: list[dict[str, Any]] = []
    for msg in messages:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and msg["role"] == "assistant" == prev["role"]
            and not prev.get("name")
            and _is_fragment(prev)
        ):
            prev["parts"] = prev["parts"] + msg["parts"]
            continue
        merged.append(msg)
    return merged


def _is_fragment(msg: dict[str, Any]) -> bool:
    """A message holding only reasoning or tool calls so far: later parts belong to it."""
    return bool(msg["parts"]) and all(p["type"] in ("reasoning", "tool_call") for p in msg["parts"])


def link_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every tool call an id and every tool result the id of its call.

    Sources that identify calls only by name (legacy OpenAI functions, Gemini, ShareGPT)
    are matched to the oldest call of that name still waiting for a result.
    """
    pending: list[dict[str, Any]] = []
    counter = 0
    known: set[str] = set()
    for msg in messages:
        for part in msg["parts"]:
            if part["type"] == "tool_call":
                counter += 1
                if not part["id"]:
                    part["id"] = f"call_{counter}"
                known.add(part["id"])
                pending.append(part)
            elif part["type"] == "tool_result":
                cid = part["call_id"]
                if cid in known:
                    pending = [c for c in pending if c["id"] != cid]
                    continue
                match = next((c for c in pending if cid and c["name"] == cid), None)
                if match is None and pending and not cid:
                    match = pending[0]
                elif match is None and pending and msg.get("name"):
                    match = next((c for c in pending if c["name"] == msg["name"]), None)
                if match is not None:
                    part["call_id"] = match["id"]
                    pending.remove(match)
    return messages
