"""Graders: reward functions for GRPO, combined by weight (the weighted-grader practice:
business outcome, tool coverage, format).

A grader maps (sample, reference) to a float in [0, 1]:
- `sample`: the completion, a list of chat messages ({"role", "content", "tool_calls"?});
- `reference`: {"answer": the approved or corrected final answer, "tool_calls": the calls the
  reference trajectory made, in order, each {"name", "arguments": object}} (`reference_from`
  builds it from a trajectory; a bare name string is read as a call with no arguments).

Built-in graders (pure Python, versioned for the run manifest):
- match:  token-overlap F1 between the sample's final text and the reference answer;
- tools:  the sample's calls aligned in order with the reference's: each aligned pair earns
          half for the name and half for the share of arguments that agree; the sum is divided
          by the longer of the two lists, so missing and extra calls both cost;
- format: the final message is non-empty text, without leftover template markers;
- json:   every tool call's arguments are a JSON object.
User graders are Python files defining `grade(sample, reference) -> float`; each call runs in a
worker process with a timeout, so a hanging or crashing grader scores 0 instead of stalling.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing as mp
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.workspace.errors import ChambersError

BUILTIN_VERSION = "1"
TIMEOUT_S = 5.0


class GraderError(ChambersError):
    pass


def final_text(sample: list[dict[str, Any]] | str) -> str:
    """The last non-empty assistant reply of a conversation (a string is its own answer)."""
    if isinstance(sample, str):
        return sample
    for m in reversed(sample):
        if m.get("role") == "assistant" and (m.get("content") or "").strip():
            return m["content"]
    return ""


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9$.,]+", text.lower())


def grade_match(sample, reference) -> float:
    got, want = _tokens(final_text(sample)), _tokens(reference.get("answer") or "")
    if not got or not want:
        return 0.0
    common: dict[str, int] = {}
    for t in want:
        common[t] = common.get(t, 0) + 1
    overlap = 0
    for t in got:
        if common.get(t, 0) > 0:
            overlap += 1
            common[t] -= 1
    if overlap == 0:
        return 0.0
    p, r = overlap / len(got), overlap / len(want)
    return 2 * p * r / (p + r)


def _calls(sample) -> list[dict[str, Any]]:
    if isinstance(sample, str):
        return []
    return [c for m in sample for c in (m.get("tool_calls") or [])]


def _arguments(raw: Any) -> dict[str, Any] | None:
    """A call's arguments as an object; None when they are not one (invalid JSON, a list)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None
    if raw is None:
        return {}
    return raw if isinstance(raw, dict) else None


def call_of(call: Any) -> dict[str, Any]:
    """{"name", "arguments"} from an OpenAI-style tool call, a reference call or a bare name."""
    if isinstance(call, str):
        return {"name": call, "arguments": None}
    if not isinstance(call, dict):
        return {"name": None, "arguments": None}
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    return {"name": fn.get("name"), "arguments": _arguments(fn.get("arguments"))}


def reference_from(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A grader's reference from a trajectory: its final answer and its tool calls, in order."""
    return {"answer": final_text(messages), "tool_calls": [call_of(c) for c in _calls(messages)]}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-9
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def call_credit(got: dict[str, Any], want: dict[str, Any]) -> float:
    """0 for another tool; 0.5 for the right tool plus 0.5 times the share of argument keys
    (of either call) whose values agree. A reference given by name alone leaves the arguments
    free; a sample's arguments that are not an object earn nothing beyond the name."""
    if got["name"] != want["name"]:
        return 0.0
    g, w = got["arguments"], want["arguments"]
    if w is None:
        return 1.0
    if g is None:
        return 0.5
    keys = set(g) | set(w)
    if not keys:
        return 1.0
    agree = sum(1 for k in keys if k in g and k in w and _same(g[k], w[k]))
    return 0.5 + 0.5 * agree / len(keys)


def grade_tools(sample, reference) -> float:
    want = [call_of(c) for c in reference.get("tool_calls") or []]
    got = [call_of(c) for c in _calls(sample)]
    if not want and not got:
        return 1.0
    # best order-preserving alignment (a weighted longest common subsequence)
    best = [[0.0] * (len(want) + 1) for _ in range(len(got) + 1)]
    for i in range(1, len(got) + 1):
        for j in range(1, len(want) + 1):
            best[i][j] = max(
                best[i - 1][j],
                best[i][j - 1],
                best[i - 1][j - 1] + call_credit(got[i - 1], want[j - 1]),
            )
    return best[len(got)][len(want)] / max(len(want), len(got))


def unjudgeable(name: str, reference: dict[str, Any]) -> str | None:
    """Why a built-in grader cannot judge against this reference (None when it can): such a
    prompt would get a constant score, so preparation refuses it and counts it."""
    if name == "tools" and not reference.get("tool_calls"):
        return "the reference makes no tool call"
    if name == "match" and not (reference.get("answer") or "").strip():
        return "the reference has no final answer"
    return None


def grade_format(sample, reference) -> float:
    text = final_text(sample).strip()
    if not text:
        return 0.0
    if re.search(r"<\|[a-z_]+\|>|<tool_call>|</s>", text):
        return 0.0
    return 1.0


def grade_json(sample, reference) -> float:
    calls = _calls(sample)
    if not calls:
        return 1.0
    ok = 0
    ok = sum(1 for c in calls if call_of(c)["arguments"] is not None)
    return ok / len(calls)


BUILTINS: dict[str, Callable[[Any, dict[str, Any]], float]] = {
    "match": grade_match,
    "tools": grade_tools,
    "format": grade_format,
    "json": grade_json,
}


@dataclass
class GraderSpec:
    name: str  # a built-in name, or the file's stem for user graders
    weight: float
    path: str | None = None  # user grader file

    @property
    def version(self) -> str:
        if self.path is None:
            return f"builtin-{BUILTIN_VERSION}"
        return "sha256:" + hashlib.sha256(Path(self.path).read_bytes()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "path": self.path,
            "version": self.version,
        }


def parse(specs: list[str], files: list[Path] | None = None) -> list[GraderSpec]:
    out = []
    for s in specs:
        name, _, w = s.partition(":")
        if name not in BUILTINS:
            raise GraderError(f"grader {name!r}: built-ins are {', '.join(BUILTINS)}")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise GraderError(f"grader {s!r}: the weight must be a number") from None
        out.append(GraderSpec(name, weight))
    for f in files or []:
        load_user_grader(f)  # fail early, with the file's name
        out.append(GraderSpec(f.stem, 1.0, str(f.resolve())))
    if not out or sum(g.weight for g in out) <= 0:
        raise GraderError("graders need a positive total weight")
    return out


def load_user_grader(path: Path) -> Callable[[Any, dict[str, Any]], float]:
    if not path.is_file():
        raise GraderError(f"{path}: no such grader file")
    spec = importlib.util.spec_from_file_location(f"chambers_grader_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - a user's file: report, never crash
        raise GraderError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, "grade", None)
    if not callable(fn):
        raise GraderError(f"{path}: defines no function grade(sample, reference)")
    return fn


def _worker(path: str, sample, reference, q) -> None:
    try:
        q.put(float(load_user_grader(Path(path))(sample, reference)))
    except Exception as exc:  # noqa: BLE001
        q.put(f"{type(exc).__name__}: {exc}")


def run_user_grader(path: str, sample, reference, timeout: float = TIMEOUT_S) -> float:
    """One call in a separate process with a timeout; errors and timeouts score 0."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(path, sample, reference, q), daemon=True)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        return 0.0
    try:
        v = q.get(timeout=1)
    except Exception:  # noqa: BLE001 - nothing came back
        return 0.0
    return min(max(v, 0.0), 1.0) if isinstance(v, float) else 0.0


def grade_one(name: str, path: str | None, sample, reference) -> float:
    """A built-in grader by name, or a user file (in a worker process, with the timeout)."""
    if path is None:
        return float(BUILTINS[name](sample, reference))
    return run_user_grader(path, sample, reference)


def combined(graders: list[GraderSpec], sample, reference) -> tuple[float, dict[str, float]]:
    parts = {g.name: grade_one(g.name, g.path, sample, reference) for g in graders}
    total = sum(g.weight for g in graders)
    return sum(g.weight * parts[g.name] for g in graders) / total, parts
