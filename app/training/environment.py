"""Environment files: the tools an agent calls during GRPO, checked before training.

An environment file is a Python module in one of two forms:

- a class `Environment` whose public methods are the tools (state lives on the instance; a
  `reset(self, **task)` method is required and receives the task's fields: `prompt`,
  `task_key`, `reference`); one instance serves one episode at a time;
- module-level functions listed in `TOOLS = [fn, ...]` (stateless tools; nothing to reset).

Every tool needs type hints on its parameters and a Google-style docstring with an `Args:`
section describing each one: TRL shows the model a JSON schema built from them. A tool returns
text (a dict or list is sent as JSON).

`check_environment` loads the file in a subprocess with a timeout (a file that hangs or
crashes cannot take the app with it), derives each tool's schema the way TRL does, and compares
it with the tool schemas recorded in the traces: names, parameters, required, types. Every
mismatch is one line naming the file, the tool and the field. Pure Python: the trainer imports
`environment_class` to build the environments it hands to TRL.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.workspace.errors import ChambersError

LOAD_TIMEOUT_S = 30.0
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
JSON_TYPES.update({list: "array", dict: "object", tuple: "array"})


class EnvironmentFileError(ChambersError):
    """An environment file that cannot be used; one line per problem."""


@dataclass
class EnvironmentReport:
    """What the check found: the file's tools and their schemas (as TRL will show them)."""

    path: str
    sha256: str
    kind: str  # "class" | "functions"
    tools: list[dict[str, Any]] = field(default_factory=list)  # {"name", "parameters", ...}

    @property
    def names(self) -> list[str]:
        return [t["name"] for t in self.tools]


# ---------------------------------------------------------------------------------------------
# Loading (in the process that uses the tools: the trainer, or the check's subprocess)


def load_module(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"chambers_environment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def environment_class(path: str | Path) -> type:
    """The class TRL instantiates per episode: the file's `Environment`, or one built around
    its `TOOLS` functions (static methods keep their signatures and docstrings)."""
    path = Path(path)
    module = load_module(path)
    cls = getattr(module, "Environment", None)
    if isinstance(cls, type):
        return cls
    tools = getattr(module, "TOOLS", None)
    if isinstance(tools, list | tuple) and tools and all(callable(t) for t in tools):
        body: dict[str, Any] = {t.__name__: staticmethod(_as_text(t)) for t in tools}
        body["reset"] = lambda self, **task: None
        body["__doc__"] = f"The tools of {path.name}."
        body["_chambers_kind"] = "functions"
        return type("Environment", (), body)
    raise EnvironmentFileError(
        f"{path}: defines neither a class Environment nor a TOOLS list of functions"
    )


def _as_text(fn):
    """The function itself when it returns text; else a wrapper with the same signature and
    docstring that sends dicts and lists as JSON (TRL would send Python's repr)."""
    import functools

    @functools.wraps(fn)
    def tool(*args, **kwargs):
        return as_text(fn(*args, **kwargs))

    return tool


def as_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(result)


def tool_methods(cls: type) -> list[Any]:
    """The tools TRL will expose: public functions of the class other than reset/get_reward."""
    return [
        fn
        for name, fn in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]


# ---------------------------------------------------------------------------------------------
# Schemas from type hints and docstrings (what transformers' get_json_schema requires)


def _json_type(hint: Any) -> str | None:
    """A JSON schema type for a hint; None for Any or no hint."""
    if hint is inspect.Parameter.empty or hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _json_type(args[0]) if len(args) == 1 else None
    if origin is typing.Literal:
        return JSON_TYPES.get(type(typing.get_args(hint)[0]))
    return JSON_TYPES.get(origin or hint, "object" if origin is None else None)


def _documented_args(doc: str) -> set[str]:
    """Parameter names described under a Google-style `Args:` section."""
    m = re.search(
        r"^\s*(Args|Arguments|Parameters):\s*\n(.*?)(?=^\s*[A-Z][a-z]+:\s*$|\Z)", doc, re.M | re.S
    )
    if not m:
        return set()
    return {
        a.group(1) for a in re.finditer(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*\S", m.group(2), re.M)
    }


def describe_tool(fn: Any) -> dict[str, Any]:
    """{"name", "description", "parameters": {p: type}, "required": [...], "problems": [...]}"""
    problems = []
    doc = inspect.getdoc(fn) or ""
    if not doc.strip():
        problems.append("no docstring (TRL shows the model its description)")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is reported per parameter
        hints = {}
    documented = _documented_args(doc)
    params, required = {}, []
    for name, p in inspect.signature(fn).parameters.items():
        if name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(name, p.annotation)
        if hint is inspect.Parameter.empty:
            problems.append(f"parameter {name!r}: no type hint")
        if name not in documented:
            problems.append(f"parameter {name!r}: not described under Args: in the docstring")
        params[name] = _json_type(hint)
        if p.default is inspect.Parameter.empty:
            required.append(name)
    return {
        "name": fn.__name__,
        "description": doc.split("\n\n")[0].strip(),
        "parameters": params,
        "required": required,
        "problems": problems,
    }


def describe_file(path: Path) -> dict[str, Any]:
    """The file's form and tools (run in the check's subprocess)."""
    cls = environment_class(path)
    return {
        "kind": getattr(cls, "_chambers_kind", "class"),
        "has_reset": callable(getattr(cls, "reset", None)),
        "tools": [describe_tool(fn) for fn in tool_methods(cls)],
    }


# ---------------------------------------------------------------------------------------------
# The check


def recorded_schemas(tool_schemas: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per tool name, its recorded {"parameters": {p: type}, "required": [...]} (first seen)."""
    out: dict[str, dict[str, Any]] = {}
    for t in tool_schemas:
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        name = fn.get("name")
        if not name or name in out:
            continue
        spec = fn.get("parameters") or {}
        props = spec.get("properties") or {}
        out[name] = {
            "parameters": {p: (v or {}).get("type") for p, v in props.items()},
            "required": list(spec.get("required") or []),
        }
    return out


def _compatible(mine: str | None, recorded: str | None) -> bool:
    if mine is None or recorded is None or mine == recorded:
        return True
    return mine == "number" and recorded == "integer"  # a float parameter takes integers


def mismatches(where: str, described: dict[str, Any], recorded: dict[str, dict[str, Any]]):
    """One line per problem: the file's own (docstrings, hints) and each disagreement with the
    recorded schemas (a tool the traces call but the file lacks, a parameter missing, extra,
    typed or required differently)."""
    lines = []
    if not described["has_reset"]:
        lines.append(f"{where}: class Environment: no reset(self, **task) method")
    mine = {t["name"]: t for t in described["tools"]}
    for t in described["tools"]:
        lines += [f"{where}: tool {t['name']}: {p}" for p in t["problems"]]
    for name, rec in recorded.items():
        t = mine.get(name)
        if t is None:
            have = ", ".join(sorted(mine)) or "none"
            lines.append(f"{where}: tool {name}: not defined (the traces call it; defined: {have})")
            continue
        for p, want in rec["parameters"].items():
            if p not in t["parameters"]:
                lines.append(f"{where}: tool {name}: parameter {p!r}: missing (the traces pass it)")
            elif not _compatible(t["parameters"][p], want):
                lines.append(
                    f"{where}: tool {name}: parameter {p!r}: type {t['parameters'][p]}, "
                    f"the traces record {want}"
                )
            elif (p in t["required"]) != (p in rec["required"]):
                here = "required" if p in t["required"] else "optional"
                there = "required" if p in rec["required"] else "optional"
                lines.append(
                    f"{where}: tool {name}: parameter {p!r}: {here} here, {there} in the traces"
                )
        for p in t["parameters"]:
            if p not in rec["parameters"] and p in t["required"]:
                lines.append(
                    f"{where}: tool {name}: parameter {p!r}: required here, "
                    "but the traces never pass it"
                )
    return lines


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_environment(
    path: str | Path, tool_schemas: list[dict[str, Any]], timeout: float = LOAD_TIMEOUT_S
) -> EnvironmentReport:
    """Load the file in a subprocess (with a timeout) and check its tools against the schemas
    recorded in the traces; raises EnvironmentFileError with one line per mismatch."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise EnvironmentFileError(f"{where}: no such environment file")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "app.training.environment", str(path.resolve())],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentFileError(
            f"{where}: did not load within {timeout:g} s (does it wait or loop at import?)"
        ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else None
    except ValueError:
        out = None
    if proc.returncode != 0 or not isinstance(out, dict):
        reason = out.get("error") if isinstance(out, dict) else None
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentFileError(f"{where}: cannot load ({reason or tail})")
    problems = mismatches(where, out, recorded_schemas(tool_schemas))
    if problems:
        raise EnvironmentFileError("\n".join(problems))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return EnvironmentReport(str(path), sha, out["kind"], out["tools"])


def _main(argv: list[str]) -> int:
    """`python -m app.training.environment FILE`: the file's tools as one JSON line."""
    path = Path(argv[0])
    try:
        out = describe_file(path)
    except EnvironmentFileError as exc:
        print(json.dumps({"error": str(exc).removeprefix(f"{path}: ")}))
        return 1
    except BaseException as exc:  # noqa: BLE001 - a user's file: report, never a traceback
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
