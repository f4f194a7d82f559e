"""Format detection and the registry of importers.

`iter_traces(path, fmt, options)` yields `(locator, TraceRecord | RecordError)` for every
record of a file, detecting the format from the first record unless `fmt` is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from app.traces.importers import langfuse, langsmith, openhands, otel
from app.traces.importers.conversations import (
    MESSAGE_KEYS,
    OUTCOME_KEYS,
    KeyOptions,
    conversation_record,
    find_messages_key,
    get_path,
)
from app.traces.importers.messages import RecordError
from app.traces.importers.reader import FileUnreadable, Item, read_records
from app.traces.model import TraceRecord

IMPORTER_VERSION = "1"

FORMATS = {
    "openai-chat": "OpenAI Chat Completions messages (incl. legacy function_call)",
    "openai-responses": "OpenAI Responses API items",
    "anthropic": "Anthropic Messages (text, tool_use, tool_result, thinking blocks)",
    "otel": "OpenTelemetry spans (OTLP/JSON or SDK JSON): GenAI, OpenInference, AI SDK",
    "langfuse": "Langfuse trace export (trace + observations + scores)",
    "langsmith": "LangSmith run trees (child_runs)",
    "sharegpt": "ShareGPT conversations (from/value)",
    "benchmark": "benchmark dumps: a message list, an outcome and an id per record",
    "openhands": "OpenHands event streams (actions and observations)",
}
CONVERSATION_FORMATS = ("openai-chat", "openai-responses", "anthropic", "sharegpt", "benchmark")
SUFFIXES = (".json", ".jsonl", ".ndjson")

_RESPONSES_TYPES = {
    "function_call",
    "function_call_output",
    "reasoning",
    "message",
    "custom_tool_call",
}
_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking"}


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
    if langfuse.detect(value):
        return "langfuse"
    if otel.detect(value):
        return "otel"
    if langsmith.detect(value):
        return "langsmith"
    if isinstance(value, list):
        if openhands.detect_list(value):
            return "openhands"
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


def parse_record(fmt: str, value: Any, options: KeyOptions) -> TraceRecord:
    """Parse one record; any failure on hostile input becomes a RecordError, never a crash."""
    try:
        return _parse_record(fmt, value, options)
    except RecordError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        raise RecordError(
            "", f"unexpected structure for {fmt} ({type(exc).__name__}: {exc})"
        ) from None


def _parse_record(fmt: str, value: Any, options: KeyOptions) -> TraceRecord:
    if fmt == "langfuse":
        return langfuse.parse(value)
    if fmt == "langsmith":
        return langsmith.parse(value)
    if fmt == "openhands":
        if not isinstance(value, list):
            raise RecordError("", "expected an array of OpenHands events")
        return openhands.parse(value)
    if fmt in CONVERSATION_FORMATS:
        return conversation_record(value, fmt, options)
    raise RecordError("", f"unknown format {fmt!r}")


class FileImport:
    """Reads one file; `format` is known after the first record has been seen."""

    def __init__(self, path: Path, fmt: str | None = None, options: KeyOptions | None = None):
        if fmt is not None and fmt not in FORMATS:
            raise FileUnreadable(f"--format: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        self.path = path
        self.format = fmt
        self.options = options or KeyOptions()

    def __iter__(self) -> Iterator[tuple[str, TraceRecord | RecordError]]:
        items = read_records(self.path)
        first = next(items, None)
        if first is None:
            return
        pending = [first]
        if (
            first.error is None
            and (looks_like_message(first.value) or openhands.detect_list([first.value]))
            and self.format not in ("otel",)
        ):
            yield from self._whole_file_conversation(first, items)
            return
        if self.format is None:
            self.format = self._detect(first, items, pending)
        if self.format == "otel":
            yield from self._otel(pending, items)
            return
        for item in chain(pending, items):
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
                continue
            try:
                yield item.locator, parse_record(self.format, item.value, self.options)
            except RecordError as exc:
                yield item.locator, exc

    def _detect(self, first: Item, items: Iterator[Item], pending: list[Item]) -> str:
        """The format of the first readable record (skipping broken ones)."""
        item = first
        while True:
            if item.error is None:
                fmt = detect_record(item.value)
                if fmt is None:
                    keys = (
                        ", ".join(list(item.value)[:8])
                        if isinstance(item.value, dict)
                        else type(item.value).__name__
                    )
                    raise FileUnreadable(
                        f"{self.path}: {item.locator}: cannot tell the format (keys: {keys}); "
                        f"pass --format ({', '.join(FORMATS)}) or --messages-key "
                        f"(one of {', '.join(MESSAGE_KEYS)} was expected)"
                    )
                return fmt
            nxt = next(items, None)
            if nxt is None:
                return "benchmark"
            pending.append(nxt)
            item = nxt

    def _whole_file_conversation(
        self, first: Item, items: Iterator[Item]
    ) -> Iterator[tuple[str, TraceRecord | RecordError]]:
        """A top-level array of messages (or events) is one conversation."""
        values = [first.value]
        for item in items:
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
                return
            values.append(item.value)
        fmt = self.format or detect_record(values) or "openai-chat"
        self.format = fmt
        try:
            yield "record 0", parse_record(fmt, values, self.options)
        except RecordError as exc:
            yield "record 0", exc

    def _otel(
        self, pending: list[Item], items: Iterator[Item]
    ) -> Iterator[tuple[str, TraceRecord | RecordError]]:
        spans = []
        for item in chain(pending, items):
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
                continue
            if not otel.detect(item.value):
                yield (
                    item.locator,
                    RecordError("", "not an OpenTelemetry span or resourceSpans object"),
                )
                continue
            spans.extend(otel.flat_spans(item.value))
        yield from otel.parse_spans(spans)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; directories recursively, keeping .json / .jsonl / .ndjson files."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            )
        else:
            out.append(p)
    return out
