"""Starting the desktop application: the QApplication, the judge profile, the window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import (
    QApplication,
)
from sqlalchemy import select

from app.review.team import acting_judge, create_profile, has_profiles
from app.workspace.db import Workspace, open_workspace
from app.workspace.errors import ChambersError, NotFound
from app.workspace.models import Judge
from ui.review.profile_dialog import pick_judge
from ui.review.window import MainWindow
from ui.widgets.settings import APP, ORG


def _default_judge(ws: Workspace) -> Judge:
    with ws.session() as s:
        mapped = acting_judge(s)
        if mapped is not None:
            return mapped
        j = s.scalar(select(Judge).where(Judge.role == "judge").order_by(Judge.id)) or s.scalar(
            select(Judge).order_by(Judge.id)
        )
        return j or create_profile(s, "Judge", "lead", None)


def _named_judge(ws: Workspace, name: str) -> Judge:
    """`chambers app --judge NAME`: an existing profile (the login's on PostgreSQL team
    mode); only in an empty workspace is it created, as the lead."""
    with ws.session() as s:
        mapped = acting_judge(s)
        if mapped is not None:
            if mapped.name != name:
                raise ChambersError(f"you are logged in as {mapped.name}; --judge {name} refused")
            return mapped
        j = s.scalar(select(Judge).where(Judge.name == name))
        if j is not None:
            return j
        if has_profiles(s):
            raise NotFound(
                f"no profile named {name!r}; a lead creates it (`chambers team add {name} "
                "--as LEAD`, or Switch judge in a lead's window)"
            )
        return create_profile(s, name, "lead", None)


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setStyle("Fusion")  # follows the system's light or dark colour scheme
    return app


def run_app(db: str | None, screenshot: str | None = None, judge: str | None = None) -> int:
    app = make_app()
    ws = open_workspace(db)
    if judge:
        j = _named_judge(ws, judge)
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
