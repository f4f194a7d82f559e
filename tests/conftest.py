"""Shared fixtures. Storage tests run on SQLite and on PostgreSQL.

PostgreSQL: CHAMBERS_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test gets a fresh database created from that server. If the server cannot be reached the
PostgreSQL tests FAIL with the reason; set CHAMBERS_SKIP_PG=1 to skip them explicitly (the
skip is then listed in the summary).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PG_URL = os.environ.get("CHAMBERS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's real data directory or workspace."""
    monkeypatch.setenv("CHAMBERS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHAMBERS_DB", raising=False)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    return CORPUS


def _pg_admin():
    import psycopg

    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(plain, autocommit=True, connect_timeout=5)


@pytest.fixture
def pg_url():
    if os.environ.get("CHAMBERS_SKIP_PG") == "1":
        pytest.skip("PostgreSQL tests skipped on request (CHAMBERS_SKIP_PG=1)")
    try:
        admin = _pg_admin()
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported loudly
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL}: {exc}. Start it or set CHAMBERS_SKIP_PG=1."
        )
    name = f"chambers_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh workspace URL on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "ws.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ws(tmp_path):
    """A fresh SQLite workspace (for tests where the backend does not matter)."""
    from app.workspace.db import open_workspace

    w = open_workspace(str(tmp_path / "ws.sqlite"))
    yield w
    w.close()


@pytest.fixture
def write(tmp_path):
    """write(name, obj) -> path: JSON for objects/arrays, JSONL for a list passed as lines=."""

    def _write(name: str, obj=None, *, lines=None, raw: bytes | None = None) -> Path:
        path = tmp_path / name
        if raw is not None:
            path.write_bytes(raw)
        elif lines is not None:
            path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        else:
            path.write_text(json.dumps(obj))
        return path

    return _write


@pytest.fixture(autouse=True)
def _no_executor_left_running():
    """A test that leaves a workspace executor's thread running fails (napari's QThread
    check): every screen that starts one must stop it when it closes."""
    import threading

    before = {t for t in threading.enumerate() if t.name == "chambers-db"}
    yield
    left = [t for t in threading.enumerate() if t.name == "chambers-db" and t not in before]
    for t in left:
        t.join(5)
    assert not [t for t in left if t.is_alive()], "a workspace executor thread was left running"
