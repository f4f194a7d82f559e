"""The search index entries of one trace, computed in Python while it is parsed.

SQLite: the importer writes a trace's full-text row (`trace_fts`), its tool names
(`trace_tools`) and its numeric scores (`trace_scores`) itself, one batch at a time, from the
values computed here in the parser (a second process for big files). The triggers of migration
0007 compute the same values in SQL from the stored JSON for every other write; they read each
trace's messages several times and made an import ~4x slower.

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

from app.traces.model import TraceRecord

# (fts values in column order, tool names, (score name, value) pairs)
IndexEntry = tuple[tuple[str | None, ...], list[str], list[tuple[str, float]]]
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


def index_entry(rec: TraceRecord, encoded: dict[str, str]) -> IndexEntry:
    """The trace's fts values (task, answer, steps, tools, arguments, results, meta), tool
    names and numeric scores. Metadata and scores are read back from their stored JSON (the
    metadata encoder turns unknown types into strings)."""
    steps: list[str] = []
    names: list[str] = []
    args: list[str] = []
    results: list[str] = []
    tools: dict[str, None] = {}
    for msg in rec.messages:
        for part in msg.get("parts") or ():
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" or kind == "reasoning":
                _add(steps, part.get("text"))
            elif kind == "tool_call":
                name = part.get("name")
                _add(names, name)
                if isinstance(name, str):
                    tools[_json_text(name)[:200]] = None
                if "arguments" in part:
                    _keyed_leaves(part["arguments"], None, args)
            elif kind == "tool_result":
                _add(results, part.get("content"))
    meta: list[str] = []
    _keyed_leaves(orjson.loads(encoded["metadata"]), None, meta)
    scores = orjson.loads(encoded["scores"])
    score_atoms: list[str] = []
    _score_atoms(scores, None, score_atoms)
    fts = (
        rec.task,
        rec.final_output,
        _joined(steps),
        _joined(names),
        _joined(args),
        _joined(results),
        f"{_joined(meta) or ''} {_joined(score_atoms) or ''}",
    )
    return fts, list(tools), _numeric_scores(scores)


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
