"""Rubrics as YAML files, so they can live in git beside the agent's code.

    rubric: Support agent quality
    description: How well a support agent handled one conversation.
    notes: what changed in this version
    criteria:
      - key: tool_use
        title: Tool use
        description: Were the right tools called with the right arguments?
        scale: ordinal            # binary | ordinal | nominal
        weight: 1.0
        required_for: [approve, modify, reject]
        levels:                   # ordinal: values 1..k; nominal: any distinct values
          - {value: 1, label: Wrong, anchor: Called a tool with wrong arguments.}
          - {value: 2, label: Right, anchor: Exactly the calls needed.}

Errors name the file, the line and the field: `rubric.yaml:14: criteria[1].scale: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.review.rubrics import CriterionSpec, RubricError
from app.workspace.models import RubricVersion
from app.workspace.types import DECISIONS, SCALES

TOP_KEYS = {"rubric", "description", "notes", "version", "criteria"}
CRITERION_KEYS = {"key", "title", "description", "scale", "weight", "required_for", "levels"}


def dump(version: RubricVersion) -> str:
    doc: dict[str, Any] = {
        "rubric": version.rubric.name,
        "version": version.version,
        "description": version.rubric.description,
        "notes": version.notes,
        "criteria": [],
    }
    for c in version.criteria:
        item: dict[str, Any] = {
            "key": c.key,
            "title": c.title,
            "description": c.description,
            "scale": c.scale,
            "weight": c.weight,
            "required_for": list(c.required_for),
        }
        if c.scale != "binary":
            item["levels"] = [dict(lv) for lv in c.levels]
        doc["criteria"].append(item)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


class _Doc:
    """A composed YAML node tree, turned into Python values with line numbers kept."""

    def __init__(self, text: str, source: str):
        self.source = source
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark else "?"
            raise RubricError(f"{source}:{line}: not valid YAML: {exc.problem}") from None
        if self.root is None:
            raise RubricError(f"{source}: the file is empty")

    def fail(self, node: yaml.Node, where: str, message: str) -> RubricError:
        return RubricError(f"{self.source}:{node.start_mark.line + 1}: {where}: {message}")

    def mapping(self, node: yaml.Node, where: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "expected a mapping (key: value)")
        out = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise self.fail(k, where, "keys must be plain text")
            if k.value in out:
                raise self.fail(k, where, f"{k.value!r} appears twice")
            out[k.value] = v
        return out


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load(text: str, source: str = "<rubric>") -> dict[str, Any]:
    """Parse and validate; returns {name, description, notes, criteria: [CriterionSpec]}."""
    doc = _Doc(text, source)
    top = doc.mapping(doc.root, "top level")
    for k, node in top.items():
        if k not in TOP_KEYS:
            raise doc.fail(
                node, k, f"unknown field (expected one of {', '.join(sorted(TOP_KEYS))})"
            )
    if "rubric" not in top:
        raise doc.fail(doc.root, "rubric", "missing: the rubric's name")
    name = _construct(top["rubric"])
    if not isinstance(name, str) or not name.strip():
        raise doc.fail(top["rubric"], "rubric", "the name must be non-empty text")
    description = _text(doc, top, "description", "description")
    notes = _text(doc, top, "notes", "notes")
    if "criteria" not in top:
        raise doc.fail(doc.root, "criteria", "missing: a list of criteria")
    crit_node = top["criteria"]
    if not isinstance(crit_node, yaml.SequenceNode) or not crit_node.value:
        raise doc.fail(crit_node, "criteria", "expected a non-empty list")
    specs: list[CriterionSpec] = []
    seen: dict[str, int] = {}
    for i, node in enumerate(crit_node.value):
        where = f"criteria[{i}]"
        m = doc.mapping(node, where)
        for k, v in m.items():
            if k not in CRITERION_KEYS:
                raise doc.fail(
                    v,
                    f"{where}.{k}",
                    f"unknown field (expected one of {', '.join(sorted(CRITERION_KEYS))})",
                )
        for req in ("key", "scale"):
            if req not in m:
                raise doc.fail(node, f"{where}.{req}", "missing")
        key = _construct(m["key"])
        if not isinstance(key, str):
            raise doc.fail(m["key"], f"{where}.key", "must be text")
        if key in seen:
            raise doc.fail(m["key"], f"{where}.key", f"{key!r} is also criteria[{seen[key]}]")
        seen[key] = i
        scale = _construct(m["scale"])
        if scale not in SCALES:
            raise doc.fail(
                m["scale"], f"{where}.scale", f"{scale!r} is not one of {', '.join(SCALES)}"
            )
        title = _text(doc, m, "title", f"{where}.title") or key
        desc = _text(doc, m, "description", f"{where}.description")
        weight = 1.0
        if "weight" in m:
            weight = _construct(m["weight"])
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise doc.fail(m["weight"], f"{where}.weight", "must be a number >= 0")
        required = list(DECISIONS)
        if "required_for" in m:
            required = _construct(m["required_for"])
            if not isinstance(required, list) or any(r not in DECISIONS for r in required):
                raise doc.fail(
                    m["required_for"],
                    f"{where}.required_for",
                    f"must be a list drawn from {', '.join(DECISIONS)}",
                )
        levels: list[dict[str, Any]] = []
        if scale == "binary":
            if "levels" in m:
                raise doc.fail(
                    m["levels"], f"{where}.levels", "a binary scale has no levels (it is pass/fail)"
                )
        else:
            if "levels" not in m:
                raise doc.fail(node, f"{where}.levels", f"missing: a {scale} scale needs levels")
            ln = m["levels"]
            if not isinstance(ln, yaml.SequenceNode):
                raise doc.fail(ln, f"{where}.levels", "expected a list")
            for k, lv_node in enumerate(ln.value):
                lw = f"{where}.levels[{k}]"
                lv = doc.mapping(lv_node, lw)
                if "value" not in lv:
                    raise doc.fail(lv_node, f"{lw}.value", "missing")
                value = _construct(lv["value"])
                if scale == "ordinal" and (isinstance(value, bool) or value != k + 1):
                    raise doc.fail(
                        lv["value"],
                        f"{lw}.value",
                        f"ordinal levels are numbered 1..k in order; expected {k + 1}",
                    )
                if scale == "nominal" and not isinstance(value, str | int):
                    raise doc.fail(lv["value"], f"{lw}.value", "must be text or a whole number")
                bad = set(lv) - {"value", "label", "anchor"}
                if bad:
                    raise doc.fail(
                        lv[sorted(bad)[0]],
                        f"{lw}.{sorted(bad)[0]}",
                        "unknown field (expected value, label, anchor)",
                    )
                entry = {
                    "value": value,
                    "label": _text(doc, lv, "label", f"{lw}.label") or str(value),
                }
                anchor = _text(doc, lv, "anchor", f"{lw}.anchor")
                if anchor:
                    entry["anchor"] = anchor
                levels.append(entry)
            values = [lv["value"] for lv in levels]
            if len(set(map(str, values))) != len(values):
                raise doc.fail(ln, f"{where}.levels", "level values must be distinct")
        spec = CriterionSpec(key, title, scale, desc, levels, float(weight), list(required))
        try:
            spec.validate()
        except RubricError as exc:
            raise doc.fail(node, where, str(exc)) from None
        specs.append(spec)
    return {"name": name.strip(), "description": description, "notes": notes, "criteria": specs}


def _text(doc: _Doc, m: dict[str, yaml.Node], key: str, where: str) -> str:
    if key not in m:
        return ""
    v = _construct(m[key])
    if v is None:
        return ""
    if not isinstance(v, str | int | float):
        raise doc.fail(m[key], where, "must be text")
    return str(v)


def load_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise RubricError(f"{path}: not a UTF-8 text file") from None
    return load(text, str(path))
