"""The full-text index of an import catches up after its traces are stored (SQLite).

An import stores its traces, their tool names and scores (filters work at once), and lists the
new trace ids in `trace_fts_pending`; app.traces.search_index then writes their rows of
`trace_fts` in batches of their own (tokenising was half of an import's time). A pending trace
has no row in the contentless index yet, so the delete and update triggers must not remove one
for it (that would corrupt the index): they skip the index for pending traces, and deleting a
trace takes it off the list, and updating one counts up its `generation` (a catch-up that read
the trace before then does not index it; it stays listed). Every other write indexes at once,
as before.

Downgrading indexes the pending traces with the triggers' SQL first.

Revision ID: 0008_search_catch_up
Revises: 0007_import_index
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008_search_catch_up"
down_revision = "0007_import_index"
branch_labels = None
depends_on = None


def _previous():
    """0007's SQL (migration file names start with a digit: loaded by path)."""
    path = Path(__file__).with_name("0007_import_index.py")
    spec = importlib.util.spec_from_file_location("chambers_migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _not_pending(r: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM trace_fts_pending WHERE trace_id = {r}.id)"


def _triggers(m) -> tuple[str, str]:
    """The delete and update triggers, skipping the index of pending traces."""
    cols = m._FTS_COLUMNS
    unindex = (
        f"INSERT INTO trace_fts (trace_fts, rowid, {cols}) "
        f"SELECT 'delete', old.id, {m.fts_values('old')} WHERE {_not_pending('old')}"
    )
    index = (
        f"INSERT INTO trace_fts (rowid, {cols}) "
        f"SELECT new.id, {m.fts_values('new')} WHERE {_not_pending('new')}"
    )
    drop_filters = [
        "DELETE FROM trace_tools WHERE trace_id = old.id",
        "DELETE FROM trace_scores WHERE trace_id = old.id",
    ]
    delete = "; ".join(
        [unindex, "DELETE FROM trace_fts_pending WHERE trace_id = old.id", *drop_filters]
    )
    # a pending trace changed: a catch-up that read it before must not index the old values
    bump = "UPDATE trace_fts_pending SET generation = generation + 1 WHERE trace_id = new.id"
    update = "; ".join([bump, unindex, *drop_filters, index, m._tools("new"), m._scores("new")])
    return (
        f"CREATE TRIGGER traces_search_delete AFTER DELETE ON traces BEGIN {delete}; END",
        f"CREATE TRIGGER traces_search_update AFTER UPDATE OF {m._WATCHED} ON traces "
        f"BEGIN {update}; END",
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE trace_fts_pending "
        "(trace_id INTEGER PRIMARY KEY NOT NULL, generation INTEGER NOT NULL DEFAULT 0)"
    )
    for name in ("delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS traces_search_{name}")
    for sql in _triggers(_previous()):
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    m = _previous()
    op.execute(
        f"INSERT INTO trace_fts (rowid, {m._FTS_COLUMNS}) "
        f"SELECT traces.id, {m.fts_values('traces')} FROM traces "
        "WHERE traces.id IN (SELECT trace_id FROM trace_fts_pending)"
    )
    for name in ("delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS traces_search_{name}")
    op.execute("DROP TABLE trace_fts_pending")
    body = "; ".join(m._unindex("old"))
    op.execute(f"CREATE TRIGGER traces_search_delete AFTER DELETE ON traces BEGIN {body}; END")
    body = "; ".join(m._unindex("old") + m._index("new"))
    op.execute(
        f"CREATE TRIGGER traces_search_update AFTER UPDATE OF {m._WATCHED} ON traces "
        f"BEGIN {body}; END"
    )
