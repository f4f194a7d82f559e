"""Team mode under load (a short run of benchmarks/team_load.py) and kill -9 of a reviewer."""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("team_load", ROOT / "benchmarks" / "team_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_short_team_load_loses_and_overwrites_nothing(pg_url, load):
    """3 judge processes (two windows each) and a lead process (two leads), 8 s of work."""
    result = load.run(pg_url, n_judges=3, seconds=8, n_traces=24, overlap=2)
    for key in (*load.MUST_BE_ZERO, "processes_failed"):
        assert result[key] == 0, (key, result)
    assert result["reviews_written"] > 30 and result["adjudications_written"] > 0, result
    # The windows did race: every refused write was shown and audited, none slipped through.
    assert result["conflicts_detected"] > 0
    assert result["conflict_audit_entries"] == result["conflicts_detected"]


def test_the_verifier_sees_a_silent_overwrite_and_a_lost_write(tmp_path, load):
    """The checks can fail: two writers acknowledging the same version of a row is an
    overwrite; an acknowledged write missing from the final state is lost."""
    url = str(tmp_path / "v.sqlite")
    load.setup(url, 1, 2, 1)
    acks = [
        {
            "entity": "review",
            "id": 999,
            "version": 1,
            "replaced": 0,
            "kind": "draft",
            "rationale": "a",
            "status": "draft",
        },
        {
            "entity": "review",
            "id": 999,
            "version": 1,
            "replaced": 0,
            "kind": "draft",
            "rationale": "b",
            "status": "draft",
        },
    ]
    result = load.verify(url, acks)
    assert result["overwritten"] == 1 and result["lost"] == 1


@pytest.mark.parametrize("kills", [3])
def test_kill_9_of_a_process_submitting_reviews_loses_nothing_acknowledged(
    db_url, tmp_path, load, kills
):
    info = load.setup(db_url, 1, 12, 1)
    log = tmp_path / "acks.jsonl"
    rng = random.Random(5)
    for k in range(kills):
        before = len(load.read_logs([log]))
        gate = tmp_path / f"gate{k}"
        gate.mkdir()
        args = [db_url, info["judges"][0], str(info["version_id"]), str(gate), str(log)]
        proc = load.spawn_worker(["judge", *args, str(rng.randrange(1000))])
        load.start(gate, 1, 120)
        deadline = time.time() + 60
        target = before + rng.randint(10, 40)  # a random moment, mid-stream
        while len(load.read_logs([log])) < target and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    acks = load.read_logs([log])
    assert len(acks) > 3 * 10
    result = load.verify(db_url, acks)
    for key in ("lost", "duplicated", "overwritten", "audit_missing"):
        assert result[key] == 0, (key, result)
    # A kill between COMMIT and the log line leaves at most one committed write per kill that
    # the process never saw acknowledged (it is in the database, nothing is lost).
    assert result["unaccounted"] <= kills
