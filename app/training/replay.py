"""The replay environment: tools that answer from the reviewed traces.

At preparation, every tool call of the reviewed traces of the snapshot's tasks is written to
`run_dir/data/replay.jsonl` with the result the real tool returned. During GRPO, a call whose
name and arguments (canonical JSON) match a call recorded for the *same task* gets that result;
any other call gets an honest "no recorded result for this call" observation, never an
invented one. What replay can teach: to make the calls a good trajectory made, with the right
arguments, in a sensible order, and to answer from their results. What it cannot: how the world
responds to anything the agents never tried (a different order id, a refund not recorded), so
exploring beyond the recorded calls earns nothing but that observation.

File format, one JSON object per line:
    {"kind": "tool", "schema": {"type": "function", "function": {name, description, parameters}}}
    {"kind": "call", "task_key", "name", "arguments": canonical JSON text, "result", "trace_id"}

Each tool becomes a method with a real signature, type hints and a Google-style docstring
built from its recorded schema, because TRL shows the model the schema it derives from them.
"""

from __future__ import annotations

import inspect
import json
import keyword
from pathlib import Path
from typing import Any

from app.training.environment import EnvironmentFileError

PY_TYPES: dict[str | None, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}
MISS = "no recorded result for this call: replay knows only the calls made in this task's traces"


def canonical(arguments: Any) -> str:
    """Arguments as canonical JSON (sorted keys, no spaces; 59.0 and 59 are one number)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def task_of(trace) -> str:
    """A trace's task: its task key, or the trace itself when it has none."""
    return trace.task_key or f"trace:{trace.id}"


def recorded_calls(trace) -> list[dict[str, Any]]:
    """The trace's tool calls with the results its tools returned (unanswered calls skipped)."""
    results = {
        p.get("call_id"): p.get("content") or ""
        for m in trace.messages
        if m["role"] == "tool"
        for p in m.get("parts", [])
        if p.get("type") == "tool_result"
    }
    out = []
    for m in trace.messages:
        if m["role"] != "assistant":
            continue
        for p in m.get("parts", []):
            if p.get("type") != "tool_call" or p.get("id") not in results:
                continue
            if p.get("arguments_invalid") or not isinstance(p.get("arguments"), dict):
                continue
            out.append(
                {
                    "kind": "call",
                    "task_key": task_of(trace),
                    "name": p["name"],
                    "arguments": canonical(p["arguments"]),
                    "result": results[p["id"]],
                    "trace_id": trace.id,
                }
            )
    return out


def replay_lines(traces, schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replay file's records: the tools, then each task's distinct calls (the first trace,
    by id, that made a call gives its result)."""
    lines: list[dict[str, Any]] = [{"kind": "tool", "schema": s} for s in schemas]
    seen: set[tuple[str, str, str]] = set()
    for t in sorted(traces, key=lambda t: t.id):
        for c in recorded_calls(t):
            key = (c["task_key"], c["name"], c["arguments"])
            if key not in seen:
                seen.add(key)
                lines.append(c)
    return lines


def check_schemas(schemas: list[dict[str, Any]]) -> list[str]:
    """Tools replay cannot offer as Python methods (names that are not identifiers)."""
    bad = []
    for s in schemas:
        fn = s["function"]
        names = [fn["name"], *((fn.get("parameters") or {}).get("properties") or {})]
        bad += [
            f"tool {fn['name']}: {n!r} is not a Python identifier; replay cannot offer it"
            for n in names
            if not n.isidentifier() or keyword.iskeyword(n)
        ]
    return bad


def _method(schema: dict[str, Any]):
    """A tool method with the recorded signature and docstring, answering from the record."""
    fn = schema["function"]
    name = fn["name"]
    spec = fn.get("parameters") or {}
    props = spec.get("properties") or {}
    required = set(spec.get("required") or [])
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {"return": str}
    ordered = [p for p in props if p in required] + [p for p in props if p not in required]
    for p in ordered:
        hint = PY_TYPES.get((props[p] or {}).get("type"), Any)
        default = inspect.Parameter.empty if p in required else None
        annotations[p] = hint if p in required or hint is Any else hint | None
        params.append(
            inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        )
    signature = inspect.Signature(params, return_annotation=str)

    def tool(self, **kwargs):
        signature.bind(self, **kwargs)  # a wrong or missing argument fails like a real call
        args = {k: v for k, v in kwargs.items() if v is not None}
        return self._answer(name, args)

    args_doc = "\n".join(
        f"    {p}: {((props[p] or {}).get('description') or '(no description recorded)').strip()}"
        for p in ordered
    )
    description = (fn.get("description") or f"The {name} tool, as recorded.").strip()
    tool.__name__ = tool.__qualname__ = name
    tool.__signature__ = signature
    tool.__annotations__ = annotations
    tool.__doc__ = description + ("\n\nArgs:\n" + args_doc if ordered else "")
    return tool


def load_replay(path: str | Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], str]]:
    schemas, calls = [], {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("kind") == "tool":
            schemas.append(rec["schema"])
        elif rec.get("kind") == "call":
            calls[(rec["task_key"], rec["name"], rec["arguments"])] = rec["result"]
    return schemas, calls


def replay_environment(path: str | Path) -> type:
    """The environment class TRL instantiates per episode, from a replay file."""
    schemas, calls = load_replay(path)
    bad = check_schemas(schemas)
    if bad:
        raise EnvironmentFileError("\n".join(f"{path}: {b}" for b in bad))

    def reset(self, task_key: str | None = None, **task: Any) -> None:
        self.task_key = task_key
        self.hits = self.misses = 0

    def answer(self, name: str, arguments: dict[str, Any]) -> str:
        result = calls.get((self.task_key or "", name, canonical(arguments)))
        if result is None:
            self.misses += 1
            return MISS
        self.hits += 1
        return result

    body: dict[str, Any] = {s["function"]["name"]: _method(s) for s in schemas}
    body.update(
        {
            "__doc__": "Tools that answer from the reviewed traces of the same task.",
            "__init__": lambda self: reset(self),
            "reset": reset,
            "_answer": answer,
        }
    )
    return type("ReplayEnvironment", (), body)
