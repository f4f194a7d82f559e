"""The queue as a lazily loaded table model: a thin adapter over app.review.queue queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.review.queue import QueueRow, queue_count, queue_rows
from app.review.reviews import ReviewChange
from app.traces.queries import TraceFilter
from app.workspace.db import Workspace
from app.workspace.models import Judge
from ui.widgets.executor import Job, WorkspaceExecutor

STATUS_LABEL = {"todo": "To do", "draft": "Draft", "done": "Done"}
BATCH = 200

AnyIndex = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_OTHER_ROLES = {_TOOLTIP, _ALIGN, _FOREGROUND, Qt.ItemDataRole.UserRole}
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_DRAFT_COLOR = QColor("#b26a00")


class QueueModel(QAbstractTableModel):
    COLUMNS = ("Status", "#", "Source", "Steps", "Outcome", "Task")
    filtered = Signal()  # a search / status filter's rows have landed
    failed = Signal(str)

    def __init__(
        self,
        ws: Workspace,
        judge: Judge,
        version_id: int,
        parent=None,
        executor: WorkspaceExecutor | None = None,
    ):
        super().__init__(parent)
        self.ws = ws
        self.executor = executor  # searches run there when given (the window gives one)
        self._search_job: Job | None = None
        self.judge = judge
        self.version_id = version_id
        self.filter = TraceFilter()
        self.status: str | None = None
        self._rows: list[QueueRow] = []
        self._cache: dict[int, tuple[str, ...]] = {}  # row -> display cells
        self._total = 0
        if judge.role == "lead":
            self.COLUMNS = (*QueueModel.COLUMNS[:5], "Reviews", "Task")
        self.reload()

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self.beginResetModel()
        self._cache.clear()
        with self.ws.session() as s:
            self._total = queue_count(s, self.judge, self.version_id, self.filter, self.status)
            self._rows = queue_rows(s, self.judge, self.version_id, self.filter, self.status, BATCH)
        self.endResetModel()

    def set_version(self, version_id: int, then: Callable[[], None] | None = None) -> None:
        self.version_id = version_id
        self.refresh(then)

    def set_filter(self, search: str | None = None, status: str | None = None) -> None:
        """Filter the queue; `filtered` fires when the rows are in (at once without an
        executor; with one, when its count and first page land)."""
        self.filter = TraceFilter(search=search or None)
        self.status = status
        self.refresh(self.filtered.emit)

    def refresh(self, then: Callable[[], None] | None = None) -> None:
        """Re-read the count and the first page: on the executor when the model has one (a
        newer refresh drops an older one's result), else now; then `then()`."""
        if self.executor is None:
            self.reload()
            if then is not None:
                then()
            return
        if self._search_job is not None:
            self._search_job.cancel()
        judge, vid, flt, st = self.judge, self.version_id, self.filter, self.status

        def first_page(s) -> tuple[int, list[QueueRow]]:
            return queue_count(s, judge, vid, flt, st), queue_rows(s, judge, vid, flt, st, BATCH)

        self._search_job = self.executor.submit(
            first_page,
            lambda page: self._page_landed(page, then),
            lambda e: self.failed.emit(str(e)),
            "queue",
        )

    @property
    def searching(self) -> bool:
        """A refresh (search, filter, another version) is on its way from the executor."""
        return self._search_job is not None and not self._search_job.finished

    def _page_landed(
        self, page: tuple[int, list[QueueRow]], then: Callable[[], None] | None
    ) -> None:
        self.beginResetModel()
        self._cache.clear()
        self._total, self._rows = page
        self.endResetModel()
        if then is not None:
            then()

    @property
    def total(self) -> int:
        return self._total

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and len(self._rows) < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        with self.ws.session() as s:
            after = self._rows[-1].sort_key if self._rows else None
            more = queue_rows(
                s, self.judge, self.version_id, self.filter, self.status, BATCH, after
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
            fresh = queue_rows(s, self.judge, self.version_id, flt, None, 1)
        if fresh:
            self._rows[row] = fresh[0]
            self._cache.pop(row, None)
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def apply_change(self, change: ReviewChange) -> None:
        """A review written from this window: its row's status and review count, locally."""
        row = self.row_of(change.trace_id)
        if row is None:
            return
        r = self._rows[row]
        self._rows[row] = r._replace(
            status=change.after, n_reviews=r.n_reviews + change.submitted_delta
        )
        self._cache.pop(row, None)
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

    def _cells(self, r: QueueRow) -> tuple[str, ...]:
        values = {
            "Status": STATUS_LABEL[r.status],
            "#": str(r.trace_id),
            "Source": r.source,
            "Steps": str(r.n_messages),
            "Outcome": "—" if r.outcome is None else f"{r.outcome:g}",
            "Reviews": str(r.n_reviews),
            "Task": r.task,
        }
        return tuple(values[c] for c in self.COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called thousands of times per repaint: cheap checks first, no allocation.
        if role == _DISPLAY:
            row = index.row()
            if 0 <= row < len(self._rows):
                cells = self._cache.get(row)
                if cells is None:
                    cells = self._cache[row] = self._cells(self._rows[row])
                return cells[index.column()]
            return None
        if (
            role not in _OTHER_ROLES
            or not index.isValid()
            or not (0 <= index.row() < len(self._rows))
        ):
            return None
        r = self._rows[index.row()]
        col = self.COLUMNS[index.column()]
        if role == _TOOLTIP:
            return r.task if col == "Task" else None
        if role == _ALIGN:
            return _RIGHT if col in ("#", "Steps", "Outcome", "Reviews") else None
        if role == _FOREGROUND:
            if r.status == "done":
                return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)
            return _DRAFT_COLOR if r.status == "draft" else None
        return r.trace_id  # UserRole
