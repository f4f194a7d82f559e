"""The outline beside the trace: a lazy list model over app.traces.outline's entries."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QListView

from app.traces.display import printable
from app.traces.outline import OutlineEntry
from ui.widgets.render import STEP_BADGE, Colors

KIND_ICON_COLOR = {"error": "error", "final": "final", "tool_call": "accent"}


class OutlineModel(QAbstractListModel):
    """The outline's rows, computed when Qt asks (a 1,500-message trace opens at once)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[OutlineEntry] = []
        self.labels: dict[int, Any] = {}
        self.colors = Colors()

    def reset(self, entries: list[OutlineEntry], labels: dict[int, Any], c: Colors) -> None:
        self.beginResetModel()
        self.entries, self.labels, self.colors = entries, labels, c
        self.endResetModel()

    def set_labels(self, labels: dict[int, Any]) -> None:
        self.labels = labels
        if self.entries:
            self.dataChanged.emit(self.index(0), self.index(len(self.entries) - 1))

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt API
        return 0 if parent is not None and parent.isValid() else len(self.entries)

    def text(self, row: int) -> str:
        e = self.entries[row]
        text = printable(f"{e.step:>3}  {e.label}")
        lab = self.labels.get(e.step)
        if lab and e.kind in ("assistant", "final", "tool_call"):
            text += f"   [{STEP_BADGE.get(lab['label'], lab['label'])}]"
        return text

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.entries):
            return None
        e = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row())
        if role == Qt.ItemDataRole.ForegroundRole and e.kind in KIND_ICON_COLOR:
            return QColor(getattr(self.colors, KIND_ICON_COLOR[e.kind]))
        if role == Qt.ItemDataRole.FontRole and e.kind in ("user", "system"):
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.UserRole:
            return e.step
        return None


class OutlineView(QListView):
    """The outline: a list view with the few QListWidget-like calls the bench uses."""

    currentRowChanged = Signal(int)  # noqa: N815 - Qt naming

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("outline")
        self.outline_model = OutlineModel(self)
        self.setModel(self.outline_model)
        self.setUniformItemSizes(True)
        self.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.currentRowChanged.emit(cur.row())
        )

    def count(self) -> int:
        return self.outline_model.rowCount()

    def currentRow(self) -> int:  # noqa: N802 - Qt naming
        return self.currentIndex().row()

    def setCurrentRow(self, row: int) -> None:  # noqa: N802 - Qt naming
        self.setCurrentIndex(self.outline_model.index(row))

    def current_text(self) -> str:
        row = self.currentRow()
        return self.outline_model.text(row) if row >= 0 else ""
