"""Starting the desktop application: the QApplication, the judge profile, the window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import (
    QApplication,
)
from sqlalchemy import select

from app.review.reviews import (
    get_or_create_judge,
)
from app.workspace.db import Workspace, open_workspace
from app.workspace.errors import ChambersError
from app.workspace.models import Judge
from ui.review.profile_dialog import pick_judge
from ui.review.window import MainWindow
from ui.widgets.settings import APP, ORG
from ui.widgets.theme import apply_theme


def _default_judge(ws: Workspace) -> Judge:
    with ws.session() as s:
        j = s.scalar(select(Judge).where(Judge.role == "judge").order_by(Judge.id)) or s.scalar(
            select(Judge).order_by(Judge.id)
        )
        return j or get_or_create_judge(s, "Judge", "judge")


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setStyle("Fusion")
    apply_theme(app)  # light or dark, as the system's colour scheme is (and when it changes)
    return app


def run_app(db: str | None, screenshot: str | None = None, judge: str | None = None) -> int:
    app = make_app()
    ws = open_workspace(db)
    if judge:
        with ws.session() as s:
            j = get_or_create_judge(s, judge)
    elif screenshot:
        j = _default_judge(ws)
    else:
        j = pick_judge(ws)
        if j is None:
            return 0
    window = MainWindow(ws, j)
    if screenshot:
        window.resize(1500, 920)
        window.show()
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
    return app.exec()
