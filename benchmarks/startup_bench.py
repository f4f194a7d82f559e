"""Cold start, whole process: `chambers app --screenshot` against a bare PySide6 window.

    QT_QPA_PLATFORM=offscreen python benchmarks/startup_bench.py [--runs 7] [--traces 300]

Each run is a fresh interpreter, so imports, the workspace opening and the first paint all
count. Two times per run: until the first paint (the line each process prints when its first
window has painted; Chambers prints it with CHAMBERS_STARTUP_PROBE=1) and until the process
has saved its PNG and exited. The two commands alternate (bare, chambers, bare, ...) so a busy machine slows both
alike; the medians and their ratio are printed. The bare window is what a user sees first
in any Qt app: a QMainWindow with a list (as many rows as the queue) and a text view, painted
once and saved as a PNG, the same last step as `--screenshot`.

It also lists which heavy modules the app's window module loads before the first paint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "matplotlib", "pygments", "alembic", "sqlalchemy.orm", "yaml", "krippendorff")

BARE = """
import sys
from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import QApplication, QListView, QMainWindow, QSplitter, QTextBrowser
app = QApplication(sys.argv[:1])
w = QMainWindow()
split = QSplitter(Qt.Orientation.Horizontal)
view = QListView()
view.setModel(QStringListModel([f"Task {i}" for i in range(int(sys.argv[2]))], w))
split.addWidget(view)
text = QTextBrowser()
text.setPlainText("The agent's trace would be here.")
split.addWidget(text)
w.setCentralWidget(split)
w.resize(1500, 920)
w.show()
for _ in range(3):
    app.processEvents()
print("first paint", flush=True)
for _ in range(2):
    app.processEvents()
assert w.grab().save(sys.argv[1])
"""

LOADED = f"""
import sys
import app.cli
app.cli.build_parser()  # what `chambers app` has imported when it paints its first window
import ui.application
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first paint, seconds to exit) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    painted = None
    for line in proc.stdout:
        if painted is None and line.startswith("first paint"):
            painted = time.perf_counter() - t0
    err = proc.stderr.read()
    code = proc.wait(timeout=300)
    elapsed = time.perf_counter() - t0
    if code != 0 or painted is None:
        raise SystemExit(f"{' '.join(cmd[:4])}… failed ({code}):\n{err[-2000:]}")
    return painted, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--traces", type=int, default=300)
    args = ap.parse_args()
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
        "PYTHONPATH": str(ROOT),
        "CHAMBERS_STARTUP_PROBE": "1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["CHAMBERS_HOME"] = tmp
        db = Path(tmp) / "sample.sqlite"
        sys.path.insert(0, str(ROOT))
        from app.sample import build_sample
        from app.workspace.db import open_workspace

        ws = open_workspace(str(db))
        build_sample(ws, n_traces=args.traces)
        ws.close()
        png = str(Path(tmp) / "shot.png")
        ours_cmd = [sys.executable, "-m", "app.cli", "--db", str(db), "app", "--screenshot", png]
        bare_cmd = [sys.executable, "-c", BARE, png, str(args.traces)]
        run(bare_cmd, env)  # warm the file cache for both before timing
        run(ours_cmd, env)
        bare, ours = [], []
        for _ in range(args.runs):
            bare.append(run(bare_cmd, env))
            ours.append(run(ours_cmd, env))
        loaded = subprocess.run(
            [sys.executable, "-c", LOADED], cwd=ROOT, env=env, capture_output=True, text=True
        ).stdout.strip()
    print(f"cold start, median of {args.runs} alternating runs ({args.traces}-trace workspace):")
    print(f"{'':42}{'first paint':>12}{'whole process':>15}")
    bp, bw = (statistics.median(x[k] for x in bare) for k in (0, 1))
    op, ow = (statistics.median(x[k] for x in ours) for k in (0, 1))
    print(f"  {'bare PySide6 window (list + text view)':40}{bp * 1000:9.0f} ms{bw * 1000:12.0f} ms")
    print(f"  {'chambers app --screenshot':40}{op * 1000:9.0f} ms{ow * 1000:12.0f} ms")
    print(f"ratio chambers / bare window: first paint {op / bp:.2f}x, whole process {ow / bw:.2f}x")
    print(f"heavy modules loaded before the first paint: {loaded or 'none'}")


if __name__ == "__main__":
    main()
