"""The queue as a lazily loaded table model: a thin adapter over app.queue queries."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.db import Workspace
from app.models import Judge
from app.queue import QueueRow, queue_count, queue_rows
from app.traces import TraceFilter

STATUS_LABEL = {"todo": "To do", "draft": "Draft", "done": "Done"}
BATCH = 200

AnyIndex = QModelIndex | QPersistentModelIndex


class QueueModel(QAbstractTableModel):
    COLUMNS = ("Status", "#", "Source", "Steps", "Outcome", "Task")

    def __init__(self, ws: Workspace, judge: Judge, version_id: int, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.judge = judge
        self.version_id = version_id
        self.filter = TraceFilter()
        self.status: str | None = None
        self._rows: list[QueueRow] = []
        self._total = 0
        if judge.role == "lead":
            self.COLUMNS = (*QueueModel.COLUMNS[:5], "Reviews", "Task")
        self.reload()

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self.beginResetModel()
        with self.ws.session() as s:
            self._total = queue_count(s, self.judge, self.version_id, self.filter, self.status)
            self._rows = queue_rows(
                s, self.judge, self.version_id, self.filter, self.status, BATCH, 0
            )
        self.endResetModel()

    def set_filter(self, search: str | None = None, status: str | None = None) -> None:
        self.filter = TraceFilter(search=search or None)
        self.status = status
        self.reload()

    @property
    def total(self) -> int:
        return self._total

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and len(self._rows) < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        with self.ws.session() as s:
            more = queue_rows(
                s, self.judge, self.version_id, self.filter, self.status, BATCH, len(self._rows)
            )
        more = more[: self._total - len(self._rows)]
        if not more:
            self._total = len(self._rows)
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(more) - 1)
        self._rows.extend(more)
        self.endInsertRows()

    def refresh_row(self, trace_id: int) -> None:
        """Re-read one row (its status changed) without resetting the view."""
        row = self.row_of(trace_id)
        if row is None:
            return
        with self.ws.session() as s:
            flt = TraceFilter(ids=[trace_id])
            fresh = queue_rows(s, self.judge, self.version_id, flt, None, 1, 0)
        if fresh:
            self._rows[row] = fresh[0]
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    # --- access --------------------------------------------------------------------------
    def row_of(self, trace_id: int) -> int | None:
        return next((i for i, r in enumerate(self._rows) if r.trace_id == trace_id), None)

    def trace_id(self, row: int) -> int | None:
        return self._rows[row].trace_id if 0 <= row < len(self._rows) else None

    def queue_row(self, row: int) -> QueueRow:
        return self._rows[row]

    # --- Qt model API --------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        r = self._rows[index.row()]
        col = self.COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                "Status": STATUS_LABEL[r.status],
                "#": str(r.trace_id),
                "Source": r.source,
                "Steps": str(r.n_messages),
                "Outcome": "—" if r.outcome is None else f"{r.outcome:g}",
                "Reviews": str(r.n_reviews),
                "Task": r.task,
            }[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == "Task":
            return r.task
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (
            "#",
            "Steps",
            "Outcome",
            "Reviews",
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and r.status != "todo":
            from PySide6.QtGui import QColor, QPalette
            from PySide6.QtWidgets import QApplication

            pal = QApplication.palette()
            return (
                pal.color(QPalette.ColorRole.PlaceholderText)
                if r.status == "done"
                else QColor("#b26a00")
            )
        if role == Qt.ItemDataRole.UserRole:
            return r.trace_id
        return None
