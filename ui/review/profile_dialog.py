"""Pick or create a judge profile at start."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
)

from app.review.reviews import active_judges
from app.review.team import acting_judge, open_profile
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import Judge
from ui.widgets.settings import APP, ORG

# ---------------------------------------------------------------------------------------------
# Judge profile


class ProfileDialog(QDialog):
    """Pick an existing judge profile, or create one where allowed.

    `first`: the workspace has no profile yet; the one created is its lead. `can_create`:
    a lead is acting (Switch judge from a lead's window). Otherwise only existing profiles
    can be picked: only a lead creates profiles."""

    def __init__(
        self,
        names: list[tuple[str, str]],
        last: str | None = None,
        parent=None,
        *,
        can_create: bool = False,
        first: bool = False,
    ):
        super().__init__(parent)
        self.setWindowTitle("Chambers — who is judging?")
        self.can_create = can_create or first
        lay = QFormLayout(self)
        self.combo = QComboBox()
        self.combo.setEditable(self.can_create)
        for name, role in names:
            self.combo.addItem(f"{name}", (name, role))
        if last:
            idx = self.combo.findText(last)
            if idx >= 0:
                self.combo.setCurrentIndex(idx)
        self.role = QComboBox()
        self.role.addItems(["judge", "lead"])
        self.combo.currentIndexChanged.connect(self._sync_role)
        self._sync_role()
        lay.addRow("Judge profile", self.combo)
        if first:
            self.role.setCurrentText("lead")
            self.role.setEnabled(False)
            text = "Type your name: the first profile of a workspace is its lead."
        elif can_create:
            text = "Type a new name to create a profile (you are a lead)."
        else:
            text = (
                "Only a lead creates profiles: a lead adds you from Switch judge, "
                "or with `chambers team add NAME --as LEAD`."
            )
        if self.can_create:
            lay.addRow("Role (new profiles)", self.role)
        self.hint = QLabel(text)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        lay.addRow(self.hint)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)

    def _sync_role(self) -> None:
        data = self.combo.currentData()
        if data:
            self.role.setCurrentText(data[1])

    def choice(self) -> tuple[str, str]:
        return self.combo.currentText().strip(), self.role.currentText()


def pick_judge(ws: Workspace, parent=None, acting: Judge | None = None) -> Judge | None:
    """The profile to work as. On PostgreSQL with a mapped login role, that profile (no
    choice); else the picker. `acting` is the profile switching (a lead may create)."""
    with ws.session() as s:
        mapped = acting_judge(s)
        if mapped is not None:
            return mapped
        names = [(name, role) for _id, name, role in active_judges(s)]
    last = QSettings(ORG, APP).value("judge/last")
    lead_acting = acting is not None and acting.role == "lead"
    dlg = ProfileDialog(names, last, parent, can_create=lead_acting, first=not names)
    if not dlg.exec():
        return None
    name, role = dlg.choice()
    if not name:
        return None
    try:
        with ws.session() as s:
            return open_profile(s, name, role, acting)
    except ChambersError as exc:
        QMessageBox.warning(parent, "Judge profile", str(exc))
        return None
