"""LangSmith run trees: a root run with nested `child_runs` (run_type llm / tool / chain).

LLM runs hold LangChain-serialised messages (`inputs.messages`, `outputs.generations`);
tool runs hold one call's input and output. Runs are walked depth-first by start time.
"""

from __future__ import annotations

from typing import Any

from app.traces.importers.assemble import ConversationBuilder
from app.traces.importers.conversations import normalize_outcome
from app.traces.importers.messages import RecordError, normalize_item, to_text, type_name
from app.traces.model import TraceRecord

SOURCE = "langsmith"


def detect(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "run_type" in value
        and ("child_runs" in value or "inputs" in value)
    )


def _flatten_messages(value: Any) -> list[Any]:
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [m for batch in value for m in batch]  # [[...]] batched prompts
    return value if isinstance(value, list) else []


def _llm_step(run: dict[str, Any], builder: ConversationBuilder, field: str) -> None:
    inputs = run.get("inputs") if isinstance(run.get("inputs"), dict) else {}
    history = []
    for i, m in enumerate(_flatten_messages(inputs.get("messages"))):
        history.extend(normalize_item(m, f"{field}.inputs.messages[{i}]"))
    for p in inputs.get("prompts") or []:
        if isinstance(p, str):
            history.append({"role": "user", "parts": [{"type": "text", "text": p}]})
    builder.add_history(history)
    outputs = run.get("outputs") if isinstance(run.get("outputs"), dict) else {}
    out = []
    for i, gen in enumerate(_flatten_messages(outputs.get("generations"))):
        if isinstance(gen, dict) and isinstance(gen.get("message"), dict):
            out.extend(normalize_item(gen["message"], f"{field}.outputs.generations[{i}].message"))
        elif isinstance(gen, dict) and isinstance(gen.get("text"), str):
            out.append({"role": "assistant", "parts": [{"type": "text", "text": gen["text"]}]})
    if not out and isinstance(outputs.get("output"), dict):
        out.extend(normalize_item(outputs["output"], f"{field}.outputs.output"))
    builder.add_output(out)


def _walk(run: dict[str, Any], builder: ConversationBuilder, field: str, depth: int = 0) -> None:
    kind = run.get("run_type")
    if kind == "llm":
        _llm_step(run, builder, field)
    elif kind == "tool":
        inputs = run.get("inputs") if isinstance(run.get("inputs"), dict) else {}
        outputs = run.get("outputs") if isinstance(run.get("outputs"), dict) else {}
        args = inputs.get("input", inputs)
        result = outputs.get("output", outputs) if not run.get("error") else run.get("error")
        call_id = (
            (run.get("extra") or {}).get("metadata", {}).get("tool_call_id", "")
            if isinstance(run.get("extra"), dict)
            else ""
        )
        if isinstance(result, dict) and result.get("type") == "tool" and "content" in result:
            call_id = call_id or result.get("tool_call_id", "")
            result = result["content"]
        builder.add_tool_step(
            str(call_id or ""),
            str(run.get("name") or "tool"),
            args,
            to_text(result),
            bool(run.get("error")),
        )
    children = run.get("child_runs") or []
    if not isinstance(children, list):
        raise RecordError(f"{field}.child_runs", f"expected an array, got {type_name(children)}")
    for i, child in enumerate(
        sorted(
            (c for c in children if isinstance(c, dict)),
            key=lambda c: str(c.get("start_time") or ""),
        )
    ):
        _walk(child, builder, f"{field}.child_runs[{i}]", depth + 1)


def parse(value: Any) -> TraceRecord:
    if not isinstance(value, dict):
        raise RecordError("", f"expected a LangSmith run object, got {type_name(value)}")
    builder = ConversationBuilder()
    _walk(value, builder, "run")
    if not builder.messages:
        raise RecordError("child_runs", "no llm or tool run with messages")
    inputs = value.get("inputs") if isinstance(value.get("inputs"), dict) else {}
    task = next(
        (
            v
            for k, v in inputs.items()
            if isinstance(v, str) and k in ("input", "question", "task", "query")
        ),
        None,
    )
    outcome = label = None
    stats = value.get("feedback_stats")
    scores = []
    if isinstance(stats, dict):
        for name, stat in stats.items():
            avg = stat.get("avg") if isinstance(stat, dict) else None
            if isinstance(avg, (int, float)):
                scores.append(
                    {
                        "name": name,
                        "value": float(avg),
                        "source": "langsmith:feedback",
                        "comment": "",
                    }
                )
    outputs = value.get("outputs") if isinstance(value.get("outputs"), dict) else {}
    for key in ("reward", "score", "success"):
        if key in outputs:
            outcome, label = normalize_outcome(outputs[key])
    meta = {
        k: value[k]
        for k in ("name", "start_time", "end_time", "status", "session_name")
        if isinstance(value.get(k), str)
    }
    if value.get("error"):
        meta["error"] = to_text(value["error"])[:2000]
    return TraceRecord(
        source=SOURCE,
        messages=builder.finish(),
        external_id=str(value.get("trace_id") or value.get("id") or "") or None,
        task=task,
        metadata=meta,
        outcome=outcome,
        outcome_label=label,
        outcome_source="langsmith:outputs" if outcome is not None else None,
        scores=scores,
    ).finish()
