"""Graders: reward functions for GRPO, combined by weight (the weighted-grader practice:
business outcome, tool coverage, format).

A grader maps (sample, reference) to a float in [0, 1]:
- `sample`: the completion, a list of chat messages ({"role", "content", "tool_calls"?});
- `reference`: {"answer": the approved or corrected final answer, "tool_calls": the names of
  the tool calls the reference trajectory made, in order}.

Built-in graders (pure Python, versioned for the run manifest):
- match:  token-overlap F1 between the sample's final text and the reference answer;
- tools:  share of the reference's tool calls present in the sample, in order;
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


def grade_tools(sample, reference) -> float:
    want = reference.get("tool_calls") or []
    if not want:
        return 1.0
    names = [c.get("function", {}).get("name") for c in _calls(sample)]
    i = 0
    for n in names:  # in order: the longest prefix-respecting subsequence
        if i < len(want) and n == want[i]:
            i += 1
    return i / len(want)


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
    for c in calls:
        args = c.get("function", {}).get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                continue
        ok += isinstance(args, dict)
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
