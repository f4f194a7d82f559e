"""Import speed and abandoned imports: the importer writes the search index itself, and an
import batch records which process runs it.

SQLite: the insert trigger of 0005_search read every trace's messages five times with
json_each/json_tree (four fifths of an import's time). It now stands aside while the table
`trace_fts_bulk` holds a row, which the importer inserts and deletes inside each batch's
transaction, writing the batch's index rows from values computed in Python
(app.traces.index_text, exactly these expressions). Every other write still goes through the
triggers. The meta column now keeps the scores when the metadata is empty (0005 made the
whole column NULL then), so the index is rebuilt once with the new expressions: the delete
trigger must supply the values each row was indexed with.

Both databases: `import_batches.importer_host` and `importer_pid`, so that opening a workspace
can close the batches of imports whose process is gone (app.workspace.imports).

Revision ID: 0007_import_index
Revises: 0006_models
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_import_index"
down_revision = "0006_models"
branch_labels = None
depends_on = None

_FTS_COLUMNS = "task, answer, steps, tools, arguments, results, meta"
_PARTS = "json_each({r}.messages) AS m, json_each(m.value, '$.parts') AS p"
_PTYPE = "json_extract(p.value, '$.type')"
_LEAF = "CASE WHEN typeof(t.key) = 'text' THEN t.key || ' ' ELSE '' END || t.atom"


def _parts(expr: str, where: str, r: str) -> str:
    return f"(SELECT group_concat({expr}, ' ') FROM {_PARTS.format(r=r)} WHERE {where})"


def fts_values(r: str) -> str:
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
            f"coalesce((SELECT group_concat({_LEAF}, ' ') FROM json_tree({r}.metadata) AS t "
            "WHERE t.atom IS NOT NULL), '') || ' ' || coalesce((SELECT group_concat(t.atom, ' ') "
            f"FROM json_tree({r}.scores) AS t WHERE t.key IN ('name', 'value', 'comment') "
            "AND t.atom IS NOT NULL), '')",
        )
    )


def _tools(r: str) -> str:
    return (
        f"INSERT OR IGNORE INTO trace_tools (trace_id, name) "
        f"SELECT {r}.id, substr(json_extract(p.value, '$.name'), 1, 200) "
        f"FROM {_PARTS.format(r=r)} WHERE {_PTYPE} = 'tool_call' "
        "AND json_type(p.value, '$.name') = 'text'"
    )


def _scores(r: str) -> str:
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


def _index(r: str) -> list[str]:
    return [
        f"INSERT INTO trace_fts (rowid, {_FTS_COLUMNS}) VALUES ({r}.id, {fts_values(r)})",
        _tools(r),
        _scores(r),
    ]


def _unindex(r: str) -> list[str]:
    return [
        f"INSERT INTO trace_fts (trace_fts, rowid, {_FTS_COLUMNS}) "
        f"VALUES ('delete', {r}.id, {fts_values(r)})",
        f"DELETE FROM trace_tools WHERE trace_id = {r}.id",
        f"DELETE FROM trace_scores WHERE trace_id = {r}.id",
    ]


_WATCHED = "task, final_output, messages, metadata, scores"
_TRIGGERS = ("insert", "delete", "update")


def _sqlite_upgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS traces_search_{name}")
    op.execute("CREATE TABLE trace_fts_bulk (importer INTEGER NOT NULL)")
    body = "; ".join(_index("new"))
    op.execute(
        "CREATE TRIGGER traces_search_insert AFTER INSERT ON traces "
        f"WHEN NOT EXISTS (SELECT 1 FROM trace_fts_bulk) BEGIN {body}; END"
    )
    body = "; ".join(_unindex("old"))
    op.execute(f"CREATE TRIGGER traces_search_delete AFTER DELETE ON traces BEGIN {body}; END")
    body = "; ".join(_unindex("old") + _index("new"))
    op.execute(
        f"CREATE TRIGGER traces_search_update AFTER UPDATE OF {_WATCHED} ON traces "
        f"BEGIN {body}; END"
    )
    # Rows indexed by 0005's expressions: indexed again with these (contentless: delete-all).
    op.execute("INSERT INTO trace_fts (trace_fts) VALUES ('delete-all')")
    op.execute(
        f"INSERT INTO trace_fts (rowid, {_FTS_COLUMNS}) SELECT traces.id, {fts_values('traces')} "
        "FROM traces"
    )


def upgrade() -> None:
    op.add_column("import_batches", sa.Column("importer_host", sa.String(255), nullable=True))
    op.add_column("import_batches", sa.Column("importer_pid", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS traces_search_insert")
        body = "; ".join(_index("new"))
        op.execute(f"CREATE TRIGGER traces_search_insert AFTER INSERT ON traces BEGIN {body}; END")
        op.execute("DROP TABLE IF EXISTS trace_fts_bulk")
    op.drop_column("import_batches", "importer_pid")
    op.drop_column("import_batches", "importer_host")
