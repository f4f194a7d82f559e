"""Offline, proven: the main flows run with every outbound connection recorded.

A sitecustomize on PYTHONPATH (inherited by every subprocess, the trainer included) wraps
socket.socket.connect/connect_ex and logs each address. The test fails on any connection
other than the configured database. (libpq, PostgreSQL's client, connects in C: it is the
configured database by construction; this run uses SQLite, so nothing at all may connect
over the network.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny-qwen2"

HOOK = textwrap.dedent(
    """
    import json, os, socket

    _LOG = os.environ["CHAMBERS_NET_LOG"]
    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _record(sock, address):
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"family": int(sock.family), "address": repr(address),
                                "pid": os.getpid()}) + "\\n")

    def connect(self, address):
        _record(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _record(self, address)
        return _connect_ex(self, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    """
)


@pytest.fixture
def recorded(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "connections.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)]),
        "CHAMBERS_NET_LOG": str(log),
        "CHAMBERS_HOME": str(tmp_path / "home"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    # Not the offline switches: the flows must not need them to stay off the network.
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE"):
        env.pop(key, None)

    def chambers(*argv: str, timeout: int = 300) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout

    return chambers, log


def _inet(log: Path) -> list[dict]:
    if not log.exists():
        return []
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    import socket

    return [r for r in rows if r["family"] in (socket.AF_INET, socket.AF_INET6)]


def test_main_flows_make_no_outbound_connection(recorded, tmp_path):
    chambers, log = recorded
    db = str(tmp_path / "ws.sqlite")
    # The hook works: a deliberate connection attempt is recorded (to a closed local port).
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.socket().connect_ex(('127.0.0.1', 9))"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "hook"), "CHAMBERS_NET_LOG": str(log)},
        check=True,
    )
    assert probe.returncode == 0 and len(_inet(log)) == 1
    log.unlink()

    chambers("--db", db, "sample", "--traces", "80")
    traces = tmp_path / "more.jsonl"
    traces.write_text(
        json.dumps(
            {
                "id": "extra-1",
                "messages": [
                    {"role": "user", "content": "see https://example.com/a.png"},
                    {"role": "assistant", "content": "![img](https://example.com/a.png)"},
                ],
            }
        )
        + "\n"
    )
    chambers("--db", db, "import", str(traces))
    chambers("--db", db, "agreement", "--json", "--bootstrap", "50")
    chambers(
        "--db", db, "report", "agreement", "--out", str(tmp_path / "r.html"), "--bootstrap", "20"
    )
    chambers("--db", db, "snapshot", "create", "all")
    chambers("--db", db, "export", "pairs", "--snapshot", "all", "--out", str(tmp_path / "p.jsonl"))
    chambers("demo-model", str(tmp_path / "demo-model"), "--steps", "2")  # pre-training too
    chambers(
        "--db",
        db,
        "train",
        "dpo",
        "--snapshot",
        "all",
        "--model",
        str(TINY),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        "--quiet",
        timeout=600,
    )
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").exists()
    chambers("--db", db, "app", "--screenshot", str(tmp_path / "shot.png"))
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    outbound = _inet(log)
    assert outbound == [], outbound
