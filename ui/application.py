"""Starting the desktop application: the QApplication, the judge profile, the window.

A window is on screen before anything heavy loads: this module imports only Qt, paints a
placeholder where the bench will be, and only then imports SQLAlchemy and the app's modules,
opens (and if needed migrates) the workspace and builds the bench in its place.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from ui.widgets.settings import APP, ORG
from ui.widgets.theme import apply_theme

# Set by benchmarks/startup_bench.py: print one line on stdout at the first paint.
PROBE = "CHAMBERS_STARTUP_PROBE"


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setStyle("Fusion")
    apply_theme(app)  # light or dark, as the system's colour scheme is (and when it changes)
    return app


def first_paint(app: QApplication) -> QMainWindow:
    """A window where the bench will be, painted now (Qt only: nothing else is loaded yet)."""
    shell = QMainWindow()
    shell.setWindowTitle("Chambers")
    label = QLabel("Opening the workspace…")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    shell.setCentralWidget(label)
    geometry = QSettings(ORG, APP).value("window/geometry")
    if geometry is None or not shell.restoreGeometry(geometry):
        shell.resize(1480, 900)
    shell.show()
    for _ in range(3):
        app.processEvents()
    if os.environ.get(PROBE):
        print("first paint", flush=True)
    return shell


def run_app(db: str | None, screenshot: str | None = None, judge: str | None = None) -> int:
    app = make_app()
    shell = first_paint(app)
    # the heavy part, after the first paint
    from app.review.team import default_judge, named_judge
    from app.workspace.db import open_workspace
    from app.workspace.errors import ChambersError
    from ui.review.profile_dialog import pick_judge
    from ui.review.window import MainWindow

    ws = open_workspace(db)
    if judge:
        with ws.session() as s:
            j = named_judge(s, judge)
    elif screenshot:
        with ws.session() as s:
            j = default_judge(s)
    else:
        j = pick_judge(ws, shell)
        if j is None:
            return 0
    window = MainWindow(ws, j)
    if screenshot:
        window.resize(1500, 920)
        window.show()
        shell.close()
        window.executor.wait_idle()  # the counters and anything else still on its way
        for _ in range(5):
            app.processEvents()
        ok = window.grab().save(screenshot)
        window.dirty = False
        window.close()
        if not ok:
            raise ChambersError(f"could not write the screenshot to {screenshot}")
        print(f"screenshot saved to {screenshot}")
        return 0
    window.show()
    shell.close()
    return app.exec()
