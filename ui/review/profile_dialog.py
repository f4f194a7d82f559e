"""Pick or create a judge profile at start."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
)

from app.review.reviews import active_judges, get_or_create_judge
from app.workspace.db import Workspace
from app.workspace.models import Judge
from ui.widgets.settings import APP, ORG

# ---------------------------------------------------------------------------------------------
# Judge profile


class ProfileDialog(QDialog):
    """Pick an existing judge profile or create one (name, role)."""

    def __init__(self, names: list[tuple[str, str]], last: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Chambers — who is judging?")
        lay = QFormLayout(self)
        self.combo = QComboBox()
        self.combo.setEditable(True)
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
        lay.addRow("Role (new profiles)", self.role)
        hint = QLabel("Type a new name to create a profile.")
        hint.setStyleSheet("color: palette(placeholder-text);")
        lay.addRow(hint)
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


def pick_judge(ws: Workspace, parent=None) -> Judge | None:
    with ws.session() as s:
        names = [(name, role) for _id, name, role in active_judges(s)]
    last = QSettings(ORG, APP).value("judge/last")
    dlg = ProfileDialog(names, last, parent)
    if not dlg.exec():
        return None
    name, role = dlg.choice()
    if not name:
        return None
    with ws.session() as s:
        return get_or_create_judge(s, name, role)
