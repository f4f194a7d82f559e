"""A read-only table model that hands rows to the view in batches (canFetchMore/fetchMore).

The rows are plain tuples an app query returned on the workspace executor's thread; the model
only shows them. A QTableWidget builds an item per cell up front (50,000 pairs took seconds on
the UI thread); here Qt asks for BATCH more rows as the user scrolls, and cells are formatted
when painted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

BATCH = 200
AnyIndex = QModelIndex | QPersistentModelIndex
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


@dataclass(frozen=True)
class Column:
    """A header and how to show one row's cell (`text(row) -> str`)."""

    title: str
    text: Callable[[Any], str]
    numeric: bool = False
    tooltip: Callable[[Any], str | None] | None = None


class LazyTableModel(QAbstractTableModel):
    def __init__(self, columns: Sequence[Column], parent=None, batch: int = BATCH):
        super().__init__(parent)
        self.columns = list(columns)
        self.batch = batch
        self._all: list[Any] = []
        self._shown = 0

    # --- content -----------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[Any]) -> None:
        """Replace everything (a new query result); the first batch is shown at once."""
        self.beginResetModel()
        self._all = list(rows)
        self._shown = min(len(self._all), self.batch)
        self.endResetModel()

    def replace_row(self, i: int, row: Any) -> None:
        """One row changed (e.g. a run's status): repaint that row only."""
        if 0 <= i < len(self._all):
            self._all[i] = row
            if i < self._shown:
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.columns) - 1))

    def row(self, i: int) -> Any:
        return self._all[i]

    def find(self, pred: Callable[[Any], bool]) -> int | None:
        """The first row matching `pred`, fetching as far as needed."""
        i = next((k for k, r in enumerate(self._all) if pred(r)), None)
        if i is not None:
            while i >= self._shown:
                self.fetchMore()
        return i

    @property
    def total(self) -> int:
        """Rows in the result, shown or not yet."""
        return len(self._all)

    # --- lazy loading ------------------------------------------------------------------------
    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and self._shown < len(self._all)

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if parent.isValid() or self._shown >= len(self._all):
            return
        last = min(self._shown + self.batch, len(self._all))
        self.beginInsertRows(QModelIndex(), self._shown, last - 1)
        self._shown = last
        self.endInsertRows()

    # --- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else self._shown

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.columns)
        ):
            return self.columns[section].title
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < self._shown):
            return None
        col = self.columns[index.column()]
        row = self._all[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.text(row)
        if role == Qt.ItemDataRole.ToolTipRole and col.tooltip is not None:
            return col.tooltip(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and col.numeric:
            return _RIGHT
        return None
