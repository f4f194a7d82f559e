"""Opening a workspace: URL resolution, engine set-up, schema upgrade.

A workspace is a database. `--db` / $CHAMBERS_DB takes a file path (SQLite) or a SQLAlchemy
URL (`postgresql+psycopg://...`); with neither, the default SQLite file under the user's data
directory is used. Opening always brings the schema to the newest Alembic revision in place.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.workspace import paths
from app.workspace.errors import WorkspaceError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Alembic's `context` and `op` are module-level proxies installed for the duration of a
# command: two threads migrating at once would tear them down under each other.
_MIGRATE_THREAD_LOCK = threading.Lock()
# pg_advisory_xact_lock key (any fixed bigint): one migrator per PostgreSQL database at a time.
PG_MIGRATION_LOCK_KEY = 0x6368616D62657273  # "chambers"


def resolve_url(db: str | None) -> str:
    """Turn a --db value (path or URL), $CHAMBERS_DB or nothing into a SQLAlchemy URL."""
    value = db or os.environ.get("CHAMBERS_DB") or str(paths.default_db_path())
    if "://" in value:
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        try:
            make_url(value)
        except ArgumentError as exc:
            raise WorkspaceError(f"--db: not a database URL: {value!r} ({exc})") from None
        return value
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        raise WorkspaceError(f"--db: {path} is a directory, not a database file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _create_private(path: Path) -> None:
    """Create a new workspace file readable by its owner only (0600). SQLite gives the -wal
    and -shm files it creates beside it the same permissions."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


@contextmanager
def _sqlite_file_lock(path: Path | None) -> Iterator[None]:
    """Serialise first opens of one SQLite workspace across processes (flock on its folder:
    no stray lock file, and never a lock on the database file itself, whose POSIX locks
    SQLite owns). Where flock does not exist (Windows) this is a no-op."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    if path is None:
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# How long a SQLite statement waits for another process's lock before "database is locked":
# long enough for a first open's migrations or an import's batch on a loaded 2-core machine.
BUSY_TIMEOUT_S = 30


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # first, so that switching a new file to WAL also waits for another process's lock
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(
        "PRAGMA cache_size=-65536"
    )  # 64 MB: random-key indexes (content hash) outgrow the 2 MB default
    cur.close()


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    json_opts = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}, **json_opts
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkin", _checkin)
        return engine
    return create_engine(url, pool_pre_ping=True, **json_opts)


def alembic_config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in place, keeping every row.

    Takes a lock first, so concurrent first opens (threads, processes, machines) migrate
    once: a thread lock (Alembic's globals), then a flock (SQLite) or a transaction-scoped
    advisory lock (PostgreSQL). Whoever waited finds the schema current and does nothing."""
    with _migration_lock(engine):
        _upgrade(engine, revision)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """A thread lock (Alembic's globals), then, for SQLite, a flock on the workspace's folder;
    always taken in this order."""
    with _MIGRATE_THREAD_LOCK, _sqlite_file_lock(_sqlite_path(str(engine.url))):
        yield


def _upgrade(engine: Engine, revision: str) -> None:
    """The migration itself, under _migration_lock (PostgreSQL adds an advisory lock)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK_KEY})
        _check_not_foreign(conn)
        command.upgrade(alembic_config(conn), revision)


@dataclass
class Workspace:
    """An open workspace: the engine and a session factory. Sessions are per thread."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def display_name(self) -> str:
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite":
            return str(url.database)
        return url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()


def open_workspace(db: str | None = None, *, migrate: bool = True) -> Workspace:
    url = resolve_url(db)
    path = _sqlite_path(url)
    if path is not None:
        _create_private(path)
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    try:
        # Under the migration lock from the first connection on: a new SQLite file becomes WAL
        # and migrates before anyone else connects. A connection that set WAL on the empty
        # file while another was migrating it would rewrite its header mid-transaction, and
        # the migration would fail at once with "database is locked".
        with _migration_lock(engine):
            at_head = current_revision(engine) == head_revision()
            if migrate and not at_head:
                _upgrade(engine, "head")
                at_head = True
        if at_head:  # the batches of killed imports (the columns it reads came with 0007)
            from app.workspace.imports import close_abandoned  # the ORM: not before first paint

            close_abandoned(sessions)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise WorkspaceError(f"cannot open workspace {url_for_display(url)}: {reason}") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise WorkspaceError(f"cannot open workspace {url_for_display(url)}: {exc}") from None
    return Workspace(url=url, engine=engine, sessions=sessions)


def _check_not_foreign(conn) -> None:
    """Refuse to migrate a database that has tables but is not a Chambers workspace."""
    names = set(inspect(conn).get_table_names())
    if names and "alembic_version" not in names:
        raise WorkspaceError(
            f"{url_for_display(str(conn.engine.url))} holds tables ({', '.join(sorted(names)[:5])}) "
            "but is not a Chambers workspace; refusing to change it"
        )


def url_for_display(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


# SQLite, during bulk writes (an import, the search index catching up): the WAL is copied into
# the database by a thread of its own rather than inside the writer's commits, so its reads,
# writes and fsyncs overlap the writer's work (7.0-7.6 s -> 6.4 s of a 100,000-trace import).
# The writer's own automatic checkpoint stays as a backstop at 256 MB, on the connection that
# writes and until that connection goes back to the pool.
BULK_CHECKPOINT_PAGES = 65536
DEFAULT_CHECKPOINT_PAGES = 1000
CHECKPOINT_EVERY_S = 0.25
_BULK = "chambers_bulk_checkpoints"


@contextmanager
def checkpoints_aside(ws: Workspace) -> Iterator[None]:
    """Bulk writes, with the WAL checkpointed beside them (each writing transaction calls
    bulk_checkpoints on its connection)."""
    if ws.dialect != "sqlite":
        yield
        return
    stop = threading.Event()

    def checkpoint() -> None:
        try:
            with ws.engine.connect() as conn:
                while not stop.wait(CHECKPOINT_EVERY_S):
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except SQLAlchemyError:
            pass  # the writer's own automatic checkpoint takes over

    thread = threading.Thread(target=checkpoint, name="chambers-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def bulk_checkpoints(conn: Connection) -> None:
    """SQLite: this connection's commits leave the WAL to checkpoints_aside's thread (up to
    the backstop) until it is returned to the pool, which sets it back."""
    if conn.dialect.name == "sqlite" and not conn.info.get(_BULK):
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
        conn.info[_BULK] = True


def _checkin(dbapi_conn, record) -> None:
    if record.info.pop(_BULK, False):
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={DEFAULT_CHECKPOINT_PAGES}")
