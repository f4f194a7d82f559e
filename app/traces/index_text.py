"""The search index entries of one trace, computed in Python.

SQLite: the importer writes a trace's tool names (`trace_tools`) and numeric scores
(`trace_scores`) with the trace, from values computed here in the parser (a second process for
big files); its full-text row (`trace_fts`) follows in app.traces.search_index, from the stored
columns. The triggers of migrations 0007 and 0008 compute the same values in SQL from the stored
JSON for every other write; they read each trace's messages several times and made an import
~4x slower.

`trace_fts` is contentless: deleting a row must supply the values it was indexed with, and the
delete trigger computes them with SQL. So the values here are exactly the SQL ones
(`tests/test_search.py` checks them against the trigger's expressions), down to how SQLite
renders a real number as text: reals are rendered by SQLite itself.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import threading
from typing import Any

import orjson

# (tool names, (score name, value) pairs)
FilterEntry = tuple[list[str], list[tuple[str, float]]]
_I64 = 2**63
_local = threading.local()


def _sqlite() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(":memory:")
    return conn


def _real_text(x: float) -> str:
    """SQLite's text for a REAL (`x || ''`), from SQLite: its formatting is its own."""
    return _sqlite().execute("SELECT ? || ''", (x,)).fetchone()[0]


@functools.cache
def _json_cuts_at_nul() -> bool:
    """Whether this SQLite's JSON functions end a string at an escaped NUL (3.40 does)."""
    row = _sqlite().execute("""SELECT length(json_extract('["a\\u0000b"]', '$[0]'))""")
    return row.fetchone()[0] == 1


def _json_text(s: str) -> str:
    """A string as SQLite's JSON functions return it."""
    if "\x00" in s and _json_cuts_at_nul():
        return s[: s.index("\x00")]
    return s


def _atom(value: Any) -> str | None:
    """What `json_tree(...).atom` concatenates as: None for null, containers and NaN."""
    if isinstance(value, str):
        return _json_text(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value) if -_I64 <= value < _I64 else _real_text(float(value))
    if isinstance(value, float):
        return _real_text(value) if math.isfinite(value) else None  # orjson writes null
    return None


def _add(out: list[str], value: Any) -> None:
    """Append what `json_extract(...)` of one field concatenates as (nothing for null; a
    container: its JSON text)."""
    if type(value) is str and "\x00" not in value:
        out.append(value)  # the common case first
    elif isinstance(value, dict | list):
        out.append(orjson.dumps(value).decode())
    else:
        atom = _atom(value)
        if atom is not None:
            out.append(atom)


def _keyed_leaves(value: Any, key: str | None, out: list[str]) -> None:
    """json_tree's leaves in document order as `key atom` (`atom` under an array index and at
    the root)."""
    if isinstance(value, dict):
        for k, v in value.items():
            kind = type(v)
            if kind is str and "\x00" not in v and "\x00" not in k:
                out.append(f"{k} {v}")  # the common cases first
            elif kind is int and -_I64 <= v < _I64 and "\x00" not in k:
                out.append(f"{k} {v}")
            else:
                _keyed_leaves(v, k, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _keyed_leaves(v, None, out)
    else:
        atom = _atom(value)
        if atom is not None:
            out.append(atom if key is None else f"{_json_text(key)} {atom}")


_SCORE_KEYS = ("name", "value", "comment")


def _score_atoms(value: Any, key: Any, out: list[str]) -> None:
    """json_tree's leaves under the keys name, value and comment, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            _score_atoms(v, k, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _score_atoms(v, None, out)
    elif key in _SCORE_KEYS:
        atom = _atom(value)
        if atom is not None:
            out.append(atom)


def _joined(parts: list[str]) -> str | None:
    return " ".join(parts) if parts else None  # group_concat: NULL over no rows


def filter_entry(calls: list[dict[str, Any]], scores_json: str) -> FilterEntry:
    """The trace's tool names (from its tool call parts) and numeric scores (from their stored
    JSON), written with the trace by the importer: the tool and score filters work as soon as
    the trace is stored."""
    tools: dict[str, None] = {}
    for part in calls:
        name = part.get("name")
        if isinstance(name, str):
            tools[_json_text(name)[:200]] = None
    scores = [] if scores_json == "[]" else _numeric_scores(orjson.loads(scores_json))
    return list(tools), scores


def fts_values(
    task: str | None,
    final_output: str | None,
    messages: list[Any],
    metadata_json: str,
    scores_json: str,
) -> tuple[str | None, ...]:
    """A stored trace's fts values (task, answer, steps, tools, arguments, results, meta), from
    its columns (messages parsed; metadata and scores as stored JSON)."""
    steps: list[str] = []
    names: list[str] = []
    args: list[str] = []
    results: list[str] = []
    for msg in messages if isinstance(messages, list) else ():  # json_each of a non-array: none
        if not isinstance(msg, dict):
            continue
        for part in msg.get("parts") or ():
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" or kind == "reasoning":
                _add(steps, part.get("text"))
            elif kind == "tool_call":
                _add(names, part.get("name"))
                if "arguments" in part:
                    _keyed_leaves(part["arguments"], None, args)
            elif kind == "tool_result":
                _add(results, part.get("content"))
    meta: list[str] = []
    _keyed_leaves(orjson.loads(metadata_json), None, meta)
    score_atoms: list[str] = []
    _score_atoms(orjson.loads(scores_json), None, score_atoms)
    return (
        task,
        final_output,
        _joined(steps),
        _joined(names),
        _joined(args),
        _joined(results),
        f"{_joined(meta) or ''} {_joined(score_atoms) or ''}",
    )


def _numeric_scores(scores: Any) -> list[tuple[str, float]]:
    """Scores with a text name and a number or boolean value (booleans as 1.0 / 0.0), as the
    trigger stores them."""
    if not isinstance(scores, list):
        return []
    out = []
    for s in scores:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            continue
        value = s.get("value")
        if isinstance(value, bool | int | float):
            out.append((_json_text(s["name"])[:200], float(value)))
    return out
