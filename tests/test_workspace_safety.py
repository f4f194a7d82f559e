"""Opening workspaces concurrently, and the workspace file's permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.workspace.db import current_revision, head_revision, open_workspace

ROOT = Path(__file__).resolve().parent.parent

OPEN_AT = """
import sys, time
from app.workspace.db import open_workspace
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
ws = open_workspace(sys.argv[1])
ws.close()
print("ok")
"""


def _open_in_processes(url: str, n: int) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.time() + 3.0  # every process imports first, then all open at this instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, url, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _assert_migrated_once(url: str) -> None:
    ws = open_workspace(url, migrate=False)
    try:
        assert current_revision(ws.engine) == head_revision()
        with ws.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        ws.close()


def test_six_concurrent_first_opens_of_a_new_postgresql_workspace(pg_url):
    results = _open_in_processes(pg_url, 6)
    failures = [r.stderr[-800:] for r in results if r.returncode != 0]
    assert not failures, failures
    _assert_migrated_once(pg_url)


def test_concurrent_first_opens_of_a_new_sqlite_workspace(tmp_path):
    path = str(tmp_path / "new.sqlite")
    results = _open_in_processes(path, 4)
    failures = [r.stderr[-800:] for r in results if r.returncode != 0]
    assert not failures, failures
    _assert_migrated_once(path)


def test_two_threads_open_one_workspace_at_once(db_url):
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it():
        barrier.wait()
        try:
            open_workspace(db_url).close()
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _assert_migrated_once(db_url)


def test_new_sqlite_workspace_and_its_wal_files_are_private(tmp_path):
    from app.review.reviews import get_or_create_judge

    path = tmp_path / "private.sqlite"
    ws = open_workspace(str(path))
    try:
        with ws.session() as s:
            get_or_create_judge(s, "Ada")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        for f in files:
            assert f.exists(), f
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
    finally:
        ws.close()


def test_default_data_directory_is_private(tmp_path, monkeypatch):
    from app.workspace import paths

    monkeypatch.delenv("CHAMBERS_HOME")
    monkeypatch.setattr(paths.platformdirs, "user_data_dir", lambda *a: str(tmp_path / "d"))
    d = paths.data_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


@pytest.mark.parametrize("n", [2])
def test_opening_an_existing_workspace_skips_the_migration_lock(tmp_path, monkeypatch, n):
    """Opening a workspace that is current takes no lock (a judge's role may not migrate)."""
    from app.workspace import db

    path = str(tmp_path / "ws.sqlite")
    open_workspace(path).close()
    calls = []
    monkeypatch.setattr(db, "upgrade", lambda *a, **k: calls.append(a))
    for _ in range(n):
        open_workspace(path).close()
    assert calls == []
