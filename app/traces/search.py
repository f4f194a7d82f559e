"""Full-text search over traces, on the index migration 0005_search keeps (SQLite FTS5, a
PostgreSQL GIN index): task, answers, tool names, tool arguments, tool results, metadata.

A query is words and "quoted phrases"; a trace matches when it holds every one of them. Text
is split on anything that is not a letter or a digit, the same way on both databases, so
`book_reservation` is the phrase `book reservation`; the last token of each word is a prefix
(`refund` also finds `refunded`). A search also finds traces whose external id contains the
text as a plain substring, as it always did.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    union,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.sqltypes import NULLTYPE

from app.workspace.errors import ChambersError
from app.workspace.models import Trace


class FilterError(ChambersError):
    """A queue or list filter the user typed cannot be used (the message says why)."""


_TOKEN = re.compile(r"[^\W_]+")
_WORD = re.compile(r'"([^"]*)"?|(\S+)')
FTS_COLUMNS = ("task", "answer", "steps", "tools", "arguments", "results", "meta")


def phrases(query: str) -> list[list[str]]:
    """The query's words and quoted phrases, each as its list of tokens (empty ones dropped)."""
    out = []
    for quoted, bare in _WORD.findall(query):
        tokens = _TOKEN.findall((quoted or bare).lower())
        if tokens:
            out.append(tokens)
    return out


def fts5_query(groups: list[list[str]], column: str | None = None) -> str:
    """FTS5 syntax: every phrase required, its last token a prefix."""
    scope = f"{column} : " if column else ""
    return " AND ".join(f'{scope}"{" ".join(g)}"*' for g in groups)


def tsquery(groups: list[list[str]]) -> str:
    """PostgreSQL to_tsquery syntax for the same query (tokens are letters and digits only)."""
    return " & ".join(
        "("
        + " <-> ".join(f"'{t}'" for t in g[:-1])
        + (" <-> " if len(g) > 1 else "")
        + f"'{g[-1]}':*)"
        for g in groups
    )


# PostgreSQL: `id IN (SELECT found.id FROM traces AS found WHERE search_document @@ query)`:
# the alias keeps the subquery from correlating with the outer query, and the planner answers
# it from the GIN index. SQLite:
# `id IN (SELECT rowid FROM trace_fts WHERE trace_fts MATCH query)`.
FOUND = Trace.__table__.alias("found")


class TextMatch(ColumnElement[bool]):
    """`ids` is one of the traces the index finds for `groups` (compiled per database)."""

    type = NULLTYPE  # a Boolean type would make SQLite compare it "= 1": no index use
    inherit_cache = False  # the query text is compiled into the statement

    def __init__(
        self,
        groups: list[list[str]],
        column: str | None,
        ids: ColumnElement[int],
        also: Select | None = None,
    ):
        self.groups = groups
        self.column = column
        self.ids = ids
        self.also = also  # more ids (by external id), in the same list: one lookup per hit


def _in(element: TextMatch, hits: Select) -> ColumnElement[bool]:
    return element.ids.in_(hits if element.also is None else union(hits, element.also))


_FTS = table("trace_fts")


@compiles(TextMatch, "sqlite")
def _match_sqlite(element: TextMatch, compiler: Any, **kw: Any) -> str:
    hits = (
        select(literal_column("rowid"))
        .select_from(_FTS)
        .where(literal_column("trace_fts").op("MATCH")(fts5_query(element.groups, element.column)))
    )
    return compiler.process(_in(element, hits), **kw)


_DOCUMENT = literal_column("found.search_document")  # PostgreSQL only (0005_search)


@compiles(TextMatch, "postgresql")
def _match_postgresql(element: TextMatch, compiler: Any, **kw: Any) -> str:
    query = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(element.groups))
    hits = select(FOUND.c.id).where(_DOCUMENT.op("@@")(query))
    return compiler.process(_in(element, hits), **kw)


def search_condition(query: str) -> ColumnElement[bool] | None:
    """The WHERE condition for a search box's text; None when it holds nothing to search."""
    text = query.strip()
    if not text:
        return None
    like = f"%{escape_like(text)}%"
    by_id = select(FOUND.c.id).where(FOUND.c.external_id.ilike(like, escape="\\"))
    groups = phrases(text)
    if not groups:
        return Trace.id.in_(by_id)
    return TextMatch(groups, None, Trace.id, also=by_id)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_meta_value(text: str) -> list[tuple[str, Any]]:
    """What a typed metadata value may be stored as: (JSON type, value) pairs. `3` matches
    the number 3 and the string "3"; `true` the boolean and the string."""
    out: list[tuple[str, Any]] = [("string", text)]
    low = text.strip().lower()
    if low in ("true", "false"):
        out.append(("boolean", low == "true"))
        return out
    try:
        number = float(text)
    except ValueError:
        return out
    if number == number and abs(number) != float("inf"):  # not NaN or infinite
        out.append(("number", int(number) if number.is_integer() else number))
    return out


class MetaEquals(ColumnElement[bool]):
    """FOUND.metadata at the dotted `key` equals one of `candidates` (exact JSON type)."""

    type = NULLTYPE  # a Boolean type would make SQLite compare it "= 1": no index use
    inherit_cache = False

    def __init__(self, keys: list[str], candidates: list[tuple[str, Any]]):
        self.keys = keys
        self.candidates = candidates


_SQLITE_TYPES = {"string": ("text",), "number": ("integer", "real"), "boolean": ("true", "false")}


@compiles(MetaEquals, "sqlite")
def _meta_sqlite(element: MetaEquals, compiler: Any, **kw: Any) -> str:
    path = "$" + "".join(f'."{k}"' for k in element.keys)
    at = FOUND.c.metadata
    tests = []
    for kind, value in element.candidates:
        types = _SQLITE_TYPES[kind]
        if kind == "boolean":
            types = ("true",) if value else ("false",)
        tests.append(
            func.json_type(at, path).in_(types)
            & (func.json_extract(at, path) == (int(value) if kind == "boolean" else value))
        )
    return compiler.process(or_(*tests), **kw)


@compiles(MetaEquals, "postgresql")
def _meta_postgresql(element: MetaEquals, compiler: Any, **kw: Any) -> str:
    tests = []
    for _kind, value in element.candidates:
        doc: Any = value
        for k in reversed(element.keys):
            doc = {k: doc}
        tests.append(FOUND.c.metadata.op("@>")(cast(literal(json.dumps(doc)), JSONB)))
    return compiler.process(or_(*tests), **kw)


def meta_condition(key: str, value: str) -> ColumnElement[bool]:
    """Traces whose metadata has `value` at `key` (dots go into nested objects)."""
    keys = [k for k in key.split(".") if k]
    if not keys or any('"' in k for k in keys):
        raise FilterError(f"metadata filter: {key!r} is not a key (use name or a.b.c)")
    candidates = parse_meta_value(value)
    exact = MetaEquals(keys, candidates)
    hint = phrases(keys[-1]) + phrases(value)
    if not hint:
        return Trace.id.in_(select(FOUND.c.id).where(exact))
    # The index narrows first (on SQLite within the metadata column): no full scan.
    return Trace.id.in_(select(FOUND.c.id).where(TextMatch(hint, "meta", FOUND.c.id), exact))
