"""The queue as a lazily loaded table model: a thin adapter over app.review.queue queries.

A search or filter change runs its count and first page on a worker thread (its own
session), so the window never waits on the database while a judge types; results from an
older query than the latest are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from app.review.queue import QueueRow, queue_count, queue_rows
from app.review.reviews import ReviewChange
from app.traces.queries import TraceFilter
from app.traces.search_index import unseen_by
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import Judge
from ui.widgets.executor import Job, WorkspaceExecutor
from ui.widgets.theme import draft_color

STATUS_LABEL = {"todo": "To do", "draft": "Draft", "done": "Done"}
BATCH = 200

AnyIndex = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_OTHER_ROLES = {_TOOLTIP, _ALIGN, _FOREGROUND, Qt.ItemDataRole.UserRole}
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class QueueModel(QAbstractTableModel):
    COLUMNS = ("Status", "#", "Steps", "Outcome", "Source", "Task")
    loaded = Signal()  # a query() finished and its rows are in
    failed = Signal(str)  # a query() could not run (the message says why)

    def __init__(
        self,
        ws: Workspace,
        judge: Judge,
        version_id: int,
        parent=None,
        executor: WorkspaceExecutor | None = None,
    ):
        super().__init__(parent)
        # Searches, filtered pages and facets run on the window's workspace executor (one
        # worker thread, one long-lived session); a model made without one starts its own
        # the first time it needs it.
        self._executor = executor
        self._owns_executor = False
        self._query_job: Job | None = None
        self._generation = 0
        self.searching = False
        self._fetching = False
        self.ws = ws
        self.judge = judge
        self.version_id = version_id
        self.filter = TraceFilter()
        self.status: str | None = None
        # traces the full-text index has not caught up with, when the filter searches text
        self.unindexed = 0
        self._rows: list[QueueRow] = []
        self._cache: dict[int, tuple[str, ...]] = {}  # row -> display cells
        self._total = 0
        if judge.role == "lead":
            self.COLUMNS = (*QueueModel.COLUMNS[:4], "Reviews", "Source", "Task")
        self.reload()

    # --- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        self.beginResetModel()
        self._cache.clear()
        with self.ws.session() as s:
            self._total = queue_count(s, self.judge, self.version_id, self.filter, self.status)
            self._rows = queue_rows(s, self.judge, self.version_id, self.filter, self.status, BATCH)
            self.unindexed = unseen_by(s, self.filter)
        self.endResetModel()

    def set_version(self, version_id: int, then: Callable[[], None] | None = None) -> None:
        self.version_id = version_id
        self.refresh(then)

    def set_filter(self, search: str | None = None, status: str | None = None) -> None:
        """Filter at once, on this thread (scripts and tests); the window uses query()."""
        self.filter = TraceFilter(search=search or None)
        self.status = status
        self.reload()

    def refresh(self, then: Callable[[], None] | None = None) -> None:
        """Re-read the count and the first page of the current filter on the executor (an
        import, a new round, another version); `then()` once they are in."""
        self.query(self.filter, self.status, then)

    def query(
        self, flt: TraceFilter, status: str | None, then: Callable[[], None] | None = None
    ) -> None:
        """Count and load the first page for a new filter on the worker thread; `loaded`
        (or `then()`, when given) follows, or `failed`. The rows shown stay until the new
        ones are in."""
        self._generation += 1
        generation = self._generation
        self.searching = True
        judge, version_id = self.judge, self.version_id

        def run(s) -> tuple[int, list[QueueRow], int]:
            total = queue_count(s, judge, version_id, flt, status)
            rows = queue_rows(s, judge, version_id, flt, status, BATCH)
            return total, rows, unseen_by(s, flt)

        if self._query_job is not None:
            self._query_job.cancel()  # a newer query replaces it
        self._query_job = self.executor.submit(
            run,
            lambda result: self._on_finished(generation, result, None, then),
            lambda error: self._on_finished(generation, None, error, then),
            "queue",
        )
        self.filter, self.status = flt, status

    def _on_finished(
        self,
        generation: int,
        result: Any,
        error: BaseException | None,
        then: Callable[[], None] | None = None,
    ) -> None:
        if generation != self._generation:
            return  # a newer query is on its way
        self.searching = False
        if error is not None:
            self.failed.emit(str(error) if isinstance(error, ChambersError) else repr(error))
            return
        self.beginResetModel()
        self._cache.clear()
        self._total, self._rows, self.unindexed = result
        self.endResetModel()
        if then is not None:
            then()
        else:
            self.loaded.emit()

    @property
    def executor(self) -> WorkspaceExecutor:
        if self._executor is None:
            self._executor = WorkspaceExecutor(self.ws, self)
            self._owns_executor = True
        return self._executor

    def run_later(self, fn, callback) -> None:
        """Run `fn(session)` on the executor, then `callback(result)` on this thread."""
        self.executor.submit(fn, callback, label="queue")

    def close(self) -> None:
        """Drop queued queries; stop the executor if this model owns it."""
        self._generation += 1
        if self._query_job is not None:
            self._query_job.cancel()
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown()

    @property
    def total(self) -> int:
        return self._total

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._fetching and len(self._rows) < self._total

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        """Qt asks for more rows as the judge scrolls. The plain queue's next page takes a
        few milliseconds; a searched or filtered one is read on the worker thread."""
        if parent.isValid() or self._fetching:
            return
        if not self.filter.as_json():
            self.fetch_more_now()
            return
        self._fetching = True
        generation = self._generation
        after = self._rows[-1].sort_key if self._rows else None
        judge, version_id, flt, status = self.judge, self.version_id, self.filter, self.status

        def run(s) -> list[QueueRow]:
            return queue_rows(s, judge, version_id, flt, status, BATCH, after)

        self.executor.submit(
            run,
            lambda rows: self._on_more(generation, rows, None),
            lambda error: self._on_more(generation, [], error),
            "queue page",
        )

    def _on_more(self, generation: int, more: list[QueueRow], error: Exception | None) -> None:
        self._fetching = False
        if generation == self._generation and error is None:
            last = self._rows[-1].sort_key if self._rows else None
            self._append([r for r in more if last is None or r.sort_key > last])

    def fetch_more_now(self) -> None:
        """The next page, on this thread (stepping past the last loaded row)."""
        with self.ws.session() as s:
            after = self._rows[-1].sort_key if self._rows else None
            more = queue_rows(
                s, self.judge, self.version_id, self.filter, self.status, BATCH, after
            )
        self._append(more)

    def _append(self, more: list[QueueRow]) -> None:
        more = more[: self._total - len(self._rows)]
        if not more:
            self._total = len(self._rows)
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(more) - 1)
        self._rows.extend(more)
        self.endInsertRows()

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
            return draft_color(QApplication.palette()) if r.status == "draft" else None
        return r.trace_id  # UserRole
