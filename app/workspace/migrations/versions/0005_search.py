"""Search index over traces, tool and score facets, saved queue views.

SQLite: a contentless FTS5 table `trace_fts` (columns task, answer, steps, tools, arguments,
results, meta) filled from the JSON columns by triggers on `traces`. PostgreSQL: a stored
generated tsvector column `traces.search_document` with a GIN index, computed by
`chambers_search_document(...)`, an immutable function that builds it from the same parts. Both split text on anything that is not a letter or digit (so `book_reservation`
is the tokens `book reservation`) and fold case; the query side (app.traces.search) does the
same. `trace_tools` and `trace_scores` are kept in step by triggers on both databases. The
upgrade indexes every existing trace.

Revision ID: 0005_search
Revises: 0004_versions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_search"
down_revision = "0004_versions"
branch_labels = None
depends_on = None

# --- SQLite ---------------------------------------------------------------------------------
_FTS_COLUMNS = "task, answer, steps, tools, arguments, results, meta"
_PARTS = "json_each({r}.messages) AS m, json_each(m.value, '$.parts') AS p"
_PTYPE = "json_extract(p.value, '$.type')"
_LEAF = "CASE WHEN typeof(t.key) = 'text' THEN t.key || ' ' ELSE '' END || t.atom"


def _parts(expr: str, where: str, r: str) -> str:
    return f"(SELECT group_concat({expr}, ' ') FROM {_PARTS.format(r=r)} WHERE {where})"


def _fts_values(r: str) -> str:
    """The seven FTS columns of row `r` (new, old or traces), in _FTS_COLUMNS order."""
    return ", ".join(
        (
            f"{r}.task",
            f"{r}.final_output",
            _parts("json_extract(p.value, '$.text')", f"{_PTYPE} IN ('text', 'reasoning')", r),
            _parts("json_extract(p.value, '$.name')", f"{_PTYPE} = 'tool_call'", r),
            f"(SELECT group_concat({_LEAF}, ' ') FROM {_PARTS.format(r=r)}, "
            f"json_tree(p.value, '$.arguments') AS t "
            f"WHERE {_PTYPE} = 'tool_call' AND t.atom IS NOT NULL)",
            _parts("json_extract(p.value, '$.content')", f"{_PTYPE} = 'tool_result'", r),
            f"(SELECT group_concat({_LEAF}, ' ') FROM json_tree({r}.metadata) AS t "
            "WHERE t.atom IS NOT NULL) || ' ' || coalesce((SELECT group_concat(t.atom, ' ') "
            f"FROM json_tree({r}.scores) AS t WHERE t.key IN ('name', 'value', 'comment') "
            "AND t.atom IS NOT NULL), '')",
        )
    )


def _sqlite_tools(r: str) -> str:
    return (
        f"INSERT OR IGNORE INTO trace_tools (trace_id, name) "
        f"SELECT {r}.id, substr(json_extract(p.value, '$.name'), 1, 200) "
        f"FROM {_PARTS.format(r=r)} WHERE {_PTYPE} = 'tool_call' "
        "AND json_type(p.value, '$.name') = 'text'"
    )


def _sqlite_scores(r: str) -> str:
    return (
        "INSERT INTO trace_scores (trace_id, name, value) "
        f"SELECT {r}.id, substr(json_extract(s.value, '$.name'), 1, 200), "
        "CASE json_type(s.value, '$.value') WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 "
        "ELSE json_extract(s.value, '$.value') END "
        f"FROM json_each(CASE json_type({r}.scores) WHEN 'array' THEN {r}.scores "
        "ELSE '[]' END) AS s "
        "WHERE json_type(s.value, '$.name') = 'text' "
        "AND json_type(s.value, '$.value') IN ('integer', 'real', 'true', 'false')"
    )


def _sqlite_index(r: str) -> list[str]:
    return [
        f"INSERT INTO trace_fts (rowid, {_FTS_COLUMNS}) VALUES ({r}.id, {_fts_values(r)})",
        _sqlite_tools(r),
        _sqlite_scores(r),
    ]


def _sqlite_unindex(r: str) -> list[str]:
    return [
        f"INSERT INTO trace_fts (trace_fts, rowid, {_FTS_COLUMNS}) "
        f"VALUES ('delete', {r}.id, {_fts_values(r)})",
        f"DELETE FROM trace_tools WHERE trace_id = {r}.id",
        f"DELETE FROM trace_scores WHERE trace_id = {r}.id",
    ]


_WATCHED = "task, final_output, messages, metadata, scores"


def _sqlite_upgrade() -> None:
    op.execute(
        f"CREATE VIRTUAL TABLE trace_fts USING fts5({_FTS_COLUMNS}, content='', "
        "tokenize='unicode61 remove_diacritics 0')"
    )
    body = "; ".join(_sqlite_index("new"))
    op.execute(f"CREATE TRIGGER traces_search_insert AFTER INSERT ON traces BEGIN {body}; END")
    body = "; ".join(_sqlite_unindex("old"))
    op.execute(f"CREATE TRIGGER traces_search_delete AFTER DELETE ON traces BEGIN {body}; END")
    body = "; ".join(_sqlite_unindex("old") + _sqlite_index("new"))
    op.execute(
        f"CREATE TRIGGER traces_search_update AFTER UPDATE OF {_WATCHED} ON traces "
        f"BEGIN {body}; END"
    )
    op.execute(
        f"INSERT INTO trace_fts (rowid, {_FTS_COLUMNS}) SELECT traces.id, {_fts_values('traces')} "
        "FROM traces"
    )
    op.execute(_sqlite_tools("traces").replace("FROM json_each", "FROM traces, json_each", 1))
    op.execute(_sqlite_scores("traces").replace("FROM json_each", "FROM traces, json_each", 1))


# --- PostgreSQL -----------------------------------------------------------------------------
# jsonb::text keeps JSON escapes (\n, \", \u0001): they are blanked before the text parser
# sees them, and the characters the parser would join into URL, host, e-mail, file or
# version tokens become spaces, so tokens match SQLite's unicode61 ones. A tsvector is
# limited to 1 MB: the document is cut at 250,000 characters (task, answer, tools,
# arguments, metadata and scores come first; message text and tool results last).
_PG_PATH = "jsonb_path_query_array(messages, '$[*].parts[*] ? (@.type == \"{t}\").{f}')::text"
_PG_JSON_PARTS = ", ".join(
    (
        _PG_PATH.format(t="tool_call", f="name"),
        _PG_PATH.format(t="tool_call", f="arguments"),
        "meta::text",
        "jsonb_path_query_array(scores, '$[*].name')::text",
        "jsonb_path_query_array(scores, '$[*].value')::text",
        "jsonb_path_query_array(scores, '$[*].comment')::text",
        _PG_PATH.format(t="text", f="text"),
        _PG_PATH.format(t="reasoning", f="text"),
        _PG_PATH.format(t="tool_result", f="content"),
    )
)
_PUNCT = "-_./@:+<>&~"
_PG_DOCUMENT = f"""
CREATE FUNCTION chambers_search_document(
    task text, answer text, messages jsonb, meta jsonb, scores jsonb
) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT to_tsvector('simple'::regconfig, translate(left(concat_ws(' ', task, answer,
    regexp_replace(concat_ws(' ', {_PG_JSON_PARTS}), '\\\\(u[0-9a-fA-F]{{4}}|.)', ' ', 'g')
), 250000), '{_PUNCT}', '{" " * len(_PUNCT)}'))
$$
"""
_PG_FACETS = """
CREATE FUNCTION chambers_trace_facets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM trace_tools WHERE trace_id = NEW.id;
        DELETE FROM trace_scores WHERE trace_id = NEW.id;
    END IF;
    INSERT INTO trace_tools (trace_id, name)
    SELECT DISTINCT NEW.id, left(n #>> '{}', 200)
    FROM jsonb_path_query(NEW.messages, '$[*].parts[*] ? (@.type == "tool_call").name') AS n
    WHERE jsonb_typeof(n) = 'string';
    INSERT INTO trace_scores (trace_id, name, value)
    SELECT NEW.id, left(e->>'name', 200),
           CASE jsonb_typeof(e->'value') WHEN 'boolean' THEN
               CASE WHEN (e->'value')::text = 'true' THEN 1.0 ELSE 0.0 END
           ELSE (e->>'value')::float END
    FROM jsonb_array_elements(
        CASE jsonb_typeof(NEW.scores) WHEN 'array' THEN NEW.scores ELSE '[]'::jsonb END
    ) AS e
    WHERE jsonb_typeof(e->'name') = 'string' AND jsonb_typeof(e->'value') IN ('number', 'boolean');
    RETURN NULL;
END; $$
"""


def _pg_upgrade() -> None:
    op.execute(_PG_DOCUMENT)
    # Stored, not only indexed: phrase and prefix matches are rechecked against the row's
    # tsvector, which must not be rebuilt from the JSON for every candidate.
    op.execute(
        "ALTER TABLE traces ADD COLUMN search_document tsvector GENERATED ALWAYS AS "
        "(chambers_search_document(task, final_output, messages, metadata, scores)) STORED"
    )
    op.execute("CREATE INDEX ix_traces_search ON traces USING gin (search_document)")
    op.execute(_PG_FACETS)
    op.execute(
        "CREATE TRIGGER traces_facets AFTER INSERT OR UPDATE OF messages, scores ON traces "
        "FOR EACH ROW EXECUTE FUNCTION chambers_trace_facets()"
    )
    op.execute(
        "INSERT INTO trace_tools (trace_id, name) SELECT DISTINCT t.id, left(n #>> '{}', 200) "
        "FROM traces AS t, jsonb_path_query(t.messages, "
        "'$[*].parts[*] ? (@.type == \"tool_call\").name') AS n WHERE jsonb_typeof(n) = 'string'"
    )
    op.execute(
        "INSERT INTO trace_scores (trace_id, name, value) "
        "SELECT t.id, left(e->>'name', 200), CASE jsonb_typeof(e->'value') WHEN 'boolean' THEN "
        "CASE WHEN (e->'value')::text = 'true' THEN 1.0 ELSE 0.0 END "
        "ELSE (e->>'value')::float END "
        "FROM traces AS t, jsonb_array_elements(CASE jsonb_typeof(t.scores) WHEN 'array' "
        "THEN t.scores ELSE '[]'::jsonb END) AS e "
        "WHERE jsonb_typeof(e->'name') = 'string' "
        "AND jsonb_typeof(e->'value') IN ('number', 'boolean')"
    )


# --- both ------------------------------------------------------------------------------------
def _create_tables() -> None:
    op.create_table(
        "trace_tools",
        sa.Column("trace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["trace_id"],
            ["traces.id"],
            name=op.f("fk_trace_tools_trace_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trace_id", "name", name=op.f("pk_trace_tools")),
    )
    op.create_index("ix_trace_tools_name", "trace_tools", ["name", "trace_id"])
    op.create_table(
        "trace_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trace_id"],
            ["traces.id"],
            name=op.f("fk_trace_scores_trace_id_traces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_scores")),
    )
    op.create_index("ix_trace_scores_name", "trace_scores", ["name", "value"])
    op.create_index(op.f("ix_trace_scores_trace_id"), "trace_scores", ["trace_id"])
    op.create_table(
        "queue_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judge_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "filters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["judge_id"],
            ["judges.id"],
            name=op.f("fk_queue_views_judge_id_judges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_views")),
        sa.UniqueConstraint("judge_id", "name", name="queue_view"),
    )


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _pg_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS traces_search_{name}")
        op.execute("DROP TABLE IF EXISTS trace_fts")
    else:
        op.execute("DROP TRIGGER IF EXISTS traces_facets ON traces")
        op.execute("DROP FUNCTION IF EXISTS chambers_trace_facets()")
        op.execute("DROP INDEX IF EXISTS ix_traces_search")
        op.execute("ALTER TABLE traces DROP COLUMN IF EXISTS search_document")
        op.execute(
            "DROP FUNCTION IF EXISTS chambers_search_document(text, text, jsonb, jsonb, jsonb)"
        )
    op.drop_table("queue_views")
    op.drop_table("trace_scores")
    op.drop_table("trace_tools")
