"""The layer directions hold: app/ imports no Qt, no ML stack and no ui/ (import-linter
contract in pyproject.toml, plus a runtime check of what importing app/ loads)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: " in proc.stdout and " broken" in proc.stdout and "0 broken" in proc.stdout


def test_importing_the_core_and_cli_loads_no_qt_or_ml():
    code = (
        "import sys, app.cli, app.workspace.db, app.traces.ingest, app.sample, app.review.reviews, app.review.rounds, app.traces.queries, "
        "app.agreement.coefficients, app.agreement.reliability, app.agreement.charts, app.agreement.report, app.training.pairs, app.training.runs, app.training.graders; "
        "bad = [m for m in ('PySide6', 'torch', 'transformers', 'trl', 'peft', 'ui') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
