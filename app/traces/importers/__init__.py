"""Format detection and the registry of importers.

`FileImport(path, fmt, options)` yields `(locator, TraceRecord | RecordError)` for every
record of a file, detecting the format from the first record unless `fmt` is given. Nothing in
here raises on a bad record: every failure becomes that record's RecordError.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from app.traces.importers import benchmarks, frameworks, langfuse, langsmith, openhands, otel
from app.traces.importers.conversations import MESSAGE_KEYS, KeyOptions, conversation_record
from app.traces.importers.detect import (
    ENVELOPES,
    classify_messages,
    detect_record,
    looks_like_message,
    starts_whole_file,
)
from app.traces.importers.messages import RecordError, as_record_error
from app.traces.importers.reader import FileUnreadable, Item, read_records
from app.traces.model import TraceRecord

__all__ = [
    "FORMATS",
    "IMPORTER_VERSION",
    "FileImport",
    "classify_messages",
    "detect_record",
    "expand_paths",
    "looks_like_message",
    "scan_paths",
]

IMPORTER_VERSION = "2"

FORMATS = {
    "openai-chat": "OpenAI Chat Completions messages (incl. legacy function_call)",
    "openai-responses": "OpenAI Responses API items",
    "anthropic": "Anthropic Messages (text, tool_use, tool_result, thinking blocks)",
    "otel": "OpenTelemetry spans (OTLP/JSON or SDK JSON): GenAI, OpenInference, AI SDK",
    "langfuse": "Langfuse trace export (trace + observations + scores)",
    "langsmith": "LangSmith run trees (child_runs)",
    "sharegpt": "ShareGPT conversations (from/value)",
    "benchmark": "benchmark dumps: a message list, an outcome and an id per record",
    "openhands": "OpenHands event streams and evaluation output (history of events)",
    "swe-agent": "SWE-agent .traj files (history, trajectory, info.exit_status)",
    "mini-swe-agent": "mini-SWE-agent trajectories (messages, info.exit_status)",
    "toolbench": "ToolBench / StableToolBench answer files (answer_generation, win)",
    "tau-bench": "tau-bench results (traj, reward, info.task, info.reward_info)",
    "agentbench": "AgentBench runs.jsonl (output.history, output.status, output.result)",
    "inspect": "Inspect AI eval logs (.eval archives and JSON logs)",
    "langgraph": "LangGraph checkpoints and thread states (values.messages)",
    "smolagents": "smolagents memory steps (AgentMemory.get_full_steps)",
    "openai-agents": "OpenAI Agents SDK trace exports (trace and trace.span objects)",
}
CONVERSATION_FORMATS = ("openai-chat", "openai-responses", "anthropic", "sharegpt", "benchmark")
GROUPED_FORMATS = ("otel", "openai-agents", "langgraph")  # traces assembled across records
FILE_NAME_IDS = ("swe-agent", "toolbench")  # one run per file, named after its task
SUFFIXES = (".json", ".jsonl", ".ndjson", ".traj", ".eval")
DETECT_RECORDS = 20  # records looked at to tell a file's format

Result = tuple[str, TraceRecord | RecordError]

_PARSERS = {
    "langfuse": langfuse.parse,
    "langsmith": langsmith.parse,
    "swe-agent": benchmarks.swe_agent_record,
    "mini-swe-agent": benchmarks.mini_swe_agent_record,
    "toolbench": benchmarks.toolbench_record,
    "tau-bench": benchmarks.tau_bench_record,
    "agentbench": benchmarks.agentbench_record,
    "inspect": frameworks.inspect_sample_record,
    "smolagents": frameworks.smolagents_record,
}


def checked(rec: TraceRecord) -> TraceRecord:
    """A trace must hold a conversation; `{"messages": []}` is an error, not a trace."""
    if not rec.messages:
        raise RecordError("messages", "no messages: the record holds an empty conversation")
    return rec


def parse_record(fmt: str, value: Any, options: KeyOptions) -> TraceRecord:
    """Parse one record; any failure on hostile input becomes a RecordError, never a crash."""
    try:
        return checked(_parse_record(fmt, value, options))
    except Exception as exc:  # noqa: BLE001 - user data must never crash an import
        raise as_record_error(exc, fmt) from None


def _parse_record(fmt: str, value: Any, options: KeyOptions) -> TraceRecord:
    test = ENVELOPES.get(fmt)
    if test is not None and not test(value):
        raise RecordError("", f"not a {fmt} record ({FORMATS[fmt]})")
    if fmt == "openhands":
        return (
            openhands.parse(value)
            if isinstance(value, list)
            else openhands.parse_eval_output(value)
        )
    if fmt in _PARSERS:
        return _PARSERS[fmt](value)
    if fmt in CONVERSATION_FORMATS:
        return conversation_record(value, fmt, options)
    raise RecordError("", f"unknown format {fmt!r}")


def parse_value(fmt: str, value: Any, options: KeyOptions) -> Iterator[Result]:
    """One record's traces: usually one, every sample of an Inspect JSON log."""
    if fmt == "inspect" and frameworks.is_inspect_log(value):
        for loc, result in frameworks.inspect_log_records(value):
            if isinstance(result, TraceRecord) and not result.messages:
                result = checked_error(result)
            yield loc, result
        return
    try:
        yield "", parse_record(fmt, value, options)
    except RecordError as exc:
        yield "", exc


def checked_error(rec: TraceRecord) -> TraceRecord | RecordError:
    try:
        return checked(rec)
    except RecordError as exc:
        return exc


class FileImport:
    """Reads one file; `format` is known after the first record has been seen."""

    def __init__(self, path: Path, fmt: str | None = None, options: KeyOptions | None = None):
        if fmt is not None and fmt not in FORMATS:
            raise FileUnreadable(f"--format: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        self.path = path
        self.format = fmt
        self.options = options or KeyOptions()

    def __iter__(self) -> Iterator[Result]:
        items = read_records(self.path)
        first = next(items, None)
        if first is None:
            yield "", RecordError("", "the file holds no records (an empty array)")
            return
        whole = self._whole_file_kind(first)
        if whole:
            yield from self._whole_file(first, items, whole)
            return
        pending = [first]
        if self.format is None:
            self.format = self._detect(first, items, pending)
        if self.format in GROUPED_FORMATS:
            yield from self._grouped(chain(pending, items))
            return
        for item in chain(pending, items):
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
                continue
            for sub, result in parse_value(self.format, item.value, self.options):
                yield self._locator(item.locator, sub), self._named(result)

    def _locator(self, locator: str, sub: str) -> str:
        if not sub:
            return locator
        return sub if locator == "record 0" else f"{locator}, {sub}"

    def _named(self, result: TraceRecord | RecordError) -> TraceRecord | RecordError:
        """SWE-agent and ToolBench name a run's file after its task: that is its id."""
        if (
            isinstance(result, TraceRecord)
            and result.external_id is None
            and self.format in FILE_NAME_IDS
        ):
            result.external_id = self.path.name.split(".")[0]
        return result

    def _whole_file_kind(self, first: Item) -> str | None:
        if first.error is not None or self.format in GROUPED_FORMATS:
            return None
        return starts_whole_file(first.value)

    def _detect(self, first: Item, items: Iterator[Item], pending: list[Item]) -> str:
        """The format of the first record that shows one (broken or empty records before it
        are reported as errors of that format); the file is refused if none of the first
        DETECT_RECORDS does."""
        item, unknown = first, None
        while True:
            if item.error is None:
                fmt = detect_record(item.value)
                if fmt is not None:
                    return fmt
                unknown = unknown or item
            nxt = next(items, None) if len(pending) < DETECT_RECORDS else None
            if nxt is None:
                break
            pending.append(nxt)
            item = nxt
        if unknown is None:
            return "benchmark"
        keys = (
            ", ".join(str(k)[:40] for k in list(unknown.value)[:8])
            if isinstance(unknown.value, dict)
            else type(unknown.value).__name__
        )
        raise FileUnreadable(
            f"{self.path}: {unknown.locator}: cannot tell the format (keys: {keys}); "
            f"choose the format (--format: {', '.join(FORMATS)}) or the key of the message "
            f"list (--messages-key; one of {', '.join(MESSAGE_KEYS)} was expected)"
        )

    def _whole_file(self, first: Item, items: Iterator[Item], kind: str) -> Iterator[Result]:
        """A top-level array of messages (or events, or steps) is one conversation."""
        values = [first.value]
        for item in items:
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
                return
            values.append(item.value)
        if self.format is None:
            self.format = kind if kind != "messages" else detect_record(values) or "openai-chat"
        for _, result in parse_value(self.format, values, self.options):
            yield "record 0", result

    def _grouped(self, items: Iterator[Item]) -> Iterator[Result]:
        """Formats whose traces are assembled from many records (spans, checkpoints)."""
        collected: list[tuple[str, Any]] = []
        for item in items:
            if item.error is not None:
                yield item.locator, RecordError("", item.error)
            elif self.format == "otel":
                yield from self._otel_spans(item, collected)
            elif self.format == "openai-agents":
                collected += [(item.locator, v) for v in frameworks.openai_agents_items(item.value)]
            else:
                collected.append((item.locator, item.value))
        if self.format == "otel":
            results = otel.parse_spans(v for _, v in collected)
        elif self.format == "openai-agents":
            results = frameworks.openai_agents_records(collected)
        else:
            results = frameworks.langgraph_records(collected)
        for loc, result in results:
            yield loc, checked_error(result) if isinstance(result, TraceRecord) else result

    def _otel_spans(self, item: Item, collected: list[tuple[str, Any]]) -> Iterator[Result]:
        if not otel.detect(item.value):
            yield item.locator, RecordError("", "not an OpenTelemetry span or resourceSpans object")
            return
        try:
            spans = list(otel.flat_spans(item.value))
        except Exception as exc:  # noqa: BLE001 - one record's failure is its own error
            yield item.locator, as_record_error(exc, "otel")
            return
        collected += [(item.locator, s) for s in spans]


def scan_paths(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given; directories recursively, keeping the trace suffixes. Returns the files
    and the skipped ones with why (hidden folders such as .git are passed over silently)."""
    out: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        for f in sorted(p.rglob("*")):
            if not f.is_file() or any(part.startswith(".") for part in f.relative_to(p).parts[:-1]):
                continue
            if f.suffix.lower() in SUFFIXES:
                out.append(f)
            elif not f.name.startswith("."):
                skipped.append((str(f), f"not a trace file ({', '.join(SUFFIXES)})"))
    return out, skipped


def expand_paths(paths: list[Path]) -> list[Path]:
    return scan_paths(paths)[0]
