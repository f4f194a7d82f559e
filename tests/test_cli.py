"""The `chambers` command line, run in-process and (for --help and the console script) as a
subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.cli import main
from app.workspace.db import head_revision

CHAT = {
    "id": "t1",
    "messages": [
        {"role": "user", "content": "Refund order 7?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "refund", "arguments": '{"order": 7}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
        {"role": "assistant", "content": "Refunded."},
    ],
    "reward": 0.5,
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "ws.sqlite")


def test_init_import_stats_list_show(capsys, db, write):
    code, out, _ = run(capsys, "--db", db, "init")
    assert code == 0 and "workspace ready" in out and f"schema {head_revision()}" in out
    path = write(
        "t.jsonl",
        lines=[CHAT, {**CHAT, "id": "t2", "reward": None, "messages": CHAT["messages"][:1]}],
    )
    code, out, _ = run(capsys, "--db", db, "import", "--json", str(path))
    assert code == 0 and json.loads(out) == {"imported": 2, "duplicates": 0, "errors": []}
    code, out, _ = run(capsys, "--db", db, "traces", "list", "--json")
    rows = json.loads(out)
    assert [
        (r["id"], r["external_id"], r["source"], r["n_messages"], r["n_tool_calls"], r["outcome"])
        for r in rows
    ] == [
        (1, "t1", "benchmark", 4, 1, 0.5),
        (2, "t2", "benchmark", 1, 0, None),
    ]
    code, out, _ = run(
        capsys, "--db", db, "traces", "list", "--json", "--has-outcome", "--search", "refund"
    )
    assert [r["id"] for r in json.loads(out)] == [1]
    code, out, _ = run(capsys, "--db", db, "traces", "show", "t1", "--json")
    shown = json.loads(out)
    assert shown["messages"][1]["parts"][0] == {
        "type": "tool_call",
        "id": "c",
        "name": "refund",
        "arguments": {"order": 7},
    }
    assert shown["final_output"] == "Refunded."
    code, out, _ = run(capsys, "--db", db, "traces", "show", "1")
    assert '-> refund({"order": 7})' in out and "final answer:" in out
    code, out, _ = run(capsys, "--db", db, "stats", "--json")
    stats = json.loads(out)
    assert (
        stats["traces"] == 2
        and stats["traces_by_source"] == {"benchmark": 2}
        and stats["tool_calls"] == 1
    )


def test_sample_builds_a_reviewed_workspace(capsys, db):
    code, out, _ = run(capsys, "--db", db, "sample", "--traces", "60")
    assert code == 0 and "60 traces" in out
    code, out, _ = run(capsys, "--db", db, "stats", "--json")
    stats = json.loads(out)
    assert stats["traces"] == 60 and stats["judges"] == 4 and stats["rubrics"] == 1
    decisions = stats["reviews_by_decision"]
    assert set(decisions) == {"approve", "modify", "reject"} and all(
        n > 0 for n in decisions.values()
    )
    # overlapping reviews: the first traces carry three judges' reviews each
    from sqlalchemy import func, select

    from app.workspace.db import open_workspace
    from app.workspace.models import Assignment, Review

    ws = open_workspace(db)
    with ws.session() as s:
        per_trace = dict(
            s.execute(select(Review.trace_id, func.count()).group_by(Review.trace_id)).all()
        )
        assert max(per_trace.values()) == 3 and min(per_trace.values()) == 1
        assert s.scalar(select(func.count(Assignment.id))) > 0
        mod = s.scalar(select(Review).where(Review.decision == "modify").limit(1))
        assert (
            mod.corrected_output
            and mod.corrected_messages[-1]["parts"][0]["text"] == mod.corrected_output
        )
    ws.close()
    code, _, err = run(capsys, "--db", db, "sample")
    assert code == 2 and "already holds traces" in err


def test_errors_are_one_line(capsys, db):
    code, _, err = run(capsys, "--db", db, "traces", "show", "999")
    assert code == 2 and err.strip() == "chambers: error: no trace '999' in this workspace"
    code, _, err = run(capsys, "--db", "postgresql+psycopg://x@127.0.0.1:1/none", "stats")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot open workspace" in err


def test_help_everywhere_and_console_script():
    for args in (
        [],
        ["import"],
        ["traces", "list"],
        ["traces", "show"],
        ["sample"],
        ["app"],
        ["stats"],
        ["init"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *args, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "usage: chambers" in proc.stdout, args
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "import"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_app_without_a_display_says_so(tmp_path):
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--db", str(tmp_path / "w.sqlite"), "app"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and "no display to open a window on" in proc.stderr
    assert "Traceback" not in proc.stderr
