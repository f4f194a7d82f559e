"""Cold start: the first window paints before anything heavy is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_gui import sample_db  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "matplotlib", "pygments", "alembic", "sqlalchemy", "yaml")


def test_the_app_command_paints_before_loading_heavy_modules():
    code = (
        "import sys, app.cli\n"
        "app.cli.build_parser()\n"  # `chambers app` parses its arguments first
        "from ui.application import first_paint, make_app\n"
        "first_paint(make_app())\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "\n"  # an empty list: none of them loaded


def test_the_startup_probe_prints_at_first_paint(sample_db, tmp_path):  # noqa: F811
    out = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "CHAMBERS_STARTUP_PROBE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--db", sample_db, "app", "--screenshot", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "first paint" and lines[-1].startswith("screenshot saved")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
