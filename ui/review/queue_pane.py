"""The queue pane: search, filters, saved views, the queue table, and what to do when the
queue is empty. The window owns the reviewing; this pane only decides which traces show."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator, QIntValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select

from app.review.views import delete_view, list_views, save_view
from app.traces.queries import TraceFilter, facets
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import Judge, Trace
from ui.review.queue_model import QueueModel
from ui.widgets.executor import WorkspaceExecutor

STATUSES = (("todo", "To do"), ("draft", "Drafts"), ("done", "Done"))
NO_VIEW = "All traces"


def _number(edit: QLineEdit, kind: type = float):
    text = edit.text().strip().replace(",", ".")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        return None


def _small_edit(placeholder: str, validator) -> QLineEdit:
    e = QLineEdit()
    e.setPlaceholderText(placeholder)
    e.setValidator(validator)
    e.setClearButtonEnabled(False)
    e.setMaximumWidth(64)
    return e


class EmptyState(QFrame):
    """A message that says what to do next, with the buttons that do it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("empty_state")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 18, 12, 12)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setObjectName("empty_title")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self._layout.addWidget(self.title)
        self._layout.addWidget(self.text)
        self._buttons: list[QPushButton] = []
        self._layout.addStretch(1)

    def show_state(self, title: str, text: str, buttons: list[tuple[str, object]]) -> None:
        self.title.setText(f"<b style='font-size: 13pt'>{title}</b>")
        self.text.setText(text)
        for b in self._buttons:
            b.hide()  # at once: deleteLater waits for the event loop
            b.deleteLater()
        self._buttons = []
        for i, (label, slot) in enumerate(buttons):
            b = QPushButton(label)
            b.clicked.connect(slot)
            self._layout.insertWidget(2 + i, b, 0, Qt.AlignmentFlag.AlignLeft)
            self._buttons.append(b)

    def button(self, label: str) -> QPushButton:
        return next(b for b in self._buttons if b.text() == label)

    def button_labels(self) -> list[str]:
        return [b.text() for b in self._buttons]


class QueuePane(QWidget):
    """Emits `apply_requested` when the judge changes what the queue shows; the window then
    calls `model.query(*pane.query())` (after saving their draft)."""

    apply_requested = Signal()
    import_requested = Signal()
    switch_judge_requested = Signal()
    rubric_editor_requested = Signal()
    rounds_requested = Signal()

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
        self.judge = judge
        self.has_rubric = version_id >= 0
        self.has_traces = False
        self.model = QueueModel(ws, judge, version_id, self, executor)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.addLayout(self._search_row())
        layout.addLayout(self._views_row())
        self.filters = self._filter_panel()
        self.filters.setVisible(False)
        layout.addWidget(self.filters)
        self.version_row = QHBoxLayout()
        layout.addLayout(self.version_row)
        self.stack = QStackedWidget()
        self.table = self._table()
        self.empty = EmptyState()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        layout.addWidget(self.stack, 1)
        self.queue_label = QLabel()
        self.queue_label.setStyleSheet("color: palette(placeholder-text);")
        self.queue_label.setWordWrap(True)
        layout.addWidget(self.queue_label)
        self.model.modelReset.connect(self.update_empty_state)
        self.model.failed.connect(self._failed)
        self.load_facets()
        self.fill_views()

    # --- building -----------------------------------------------------------------------
    def _search_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tasks, tools, arguments, results, metadata  ( / )")
        self.search.setToolTip(
            'Words and "phrases" anywhere in the trace: task, answers, tool names and '
            "arguments, tool results, metadata, automated scores. Every word must match; the "
            "last letters may be left off (refund finds refunded). Part of an external id "
            "also finds the trace. Enter to search."
        )
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.apply_requested)
        row.addWidget(self.search, 1)
        self.filter_button = QToolButton()
        self.filter_button.setText("Filters")
        self.filter_button.setCheckable(True)
        self.filter_button.setToolTip("Outcome, source, tool, steps, automated score, metadata")
        self.filter_button.toggled.connect(lambda on: self.filters.setVisible(on))
        row.addWidget(self.filter_button)
        self.status_filter = QComboBox()
        self.status_filter.addItem("All", None)
        for key, label in STATUSES:
            self.status_filter.addItem(label, key)
        self.status_filter.currentIndexChanged.connect(self.apply_requested)
        row.addWidget(self.status_filter)
        return row

    def _views_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("View"))
        self.views = QComboBox()
        self.views.setToolTip("Your saved views: a search with its filters, by name")
        self.views.activated.connect(self._view_chosen)
        row.addWidget(self.views, 1)
        self.save_button = QToolButton()
        self.save_button.setText("Save…")
        self.save_button.setToolTip("Save this search and these filters as a named view")
        self.save_button.clicked.connect(self.save_current_view)
        row.addWidget(self.save_button)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.setToolTip("Delete the chosen view (the traces stay)")
        self.delete_button.clicked.connect(self.delete_current_view)
        row.addWidget(self.delete_button)
        return row

    def _filter_panel(self) -> QFrame:
        box = QFrame()
        box.setObjectName("queue_filters")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        g = QGridLayout(box)
        g.setContentsMargins(6, 4, 6, 4)
        g.setVerticalSpacing(3)
        number = QDoubleValidator()
        integer = QIntValidator(0, 10**9)
        self.min_outcome = _small_edit("min", number)
        self.max_outcome = _small_edit("max", number)
        self.min_steps = _small_edit("min", integer)
        self.max_steps = _small_edit("max", integer)
        self.min_score = _small_edit("min", number)
        self.max_score = _small_edit("max", number)
        self.source = QComboBox()
        self.tool = QComboBox()
        self.score = QComboBox()
        for combo, any_text in (
            (self.source, "any source"),
            (self.tool, "any tool"),
            (self.score, "no score filter"),
        ):
            combo.addItem(any_text, None)
            combo.setMinimumContentsLength(10)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.activated.connect(self.apply_requested)
        self.meta = QLineEdit()
        self.meta.setPlaceholderText("key=value, user.tier=gold")
        self.meta.setToolTip("Metadata equal to a value; a.b for nested keys; comma-separated")
        rows = (
            (
                "Outcome",
                [self.min_outcome, QLabel("–"), self.max_outcome],
                "Steps",
                [self.min_steps, QLabel("–"), self.max_steps],
            ),
            ("Source", [self.source], "Tool", [self.tool]),
            ("Score", [self.score], "", [self.min_score, QLabel("–"), self.max_score]),
        )
        for r, (l1, w1, l2, w2) in enumerate(rows):
            g.addWidget(QLabel(l1), r, 0)
            g.addLayout(self._hbox(w1), r, 1)
            g.addWidget(QLabel(l2), r, 2)
            g.addLayout(self._hbox(w2), r, 3)
        g.addWidget(QLabel("Metadata"), 3, 0)
        g.addWidget(self.meta, 3, 1, 1, 3)
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.clicked.connect(self.clear_filters)
        g.addWidget(self.clear_button, 4, 3, Qt.AlignmentFlag.AlignRight)
        g.setColumnStretch(1, 1)
        g.setColumnStretch(3, 1)
        for e in (
            self.min_outcome,
            self.max_outcome,
            self.min_steps,
            self.max_steps,
            self.min_score,
            self.max_score,
            self.meta,
        ):
            e.returnPressed.connect(self.apply_requested)
        return box

    @staticmethod
    def _hbox(widgets: list[QWidget]) -> QHBoxLayout:
        h = QHBoxLayout()
        h.setSpacing(3)
        for w in widgets:
            h.addWidget(w, 1 if isinstance(w, QComboBox) else 0)
        return h

    def _table(self) -> QTableView:
        table = QTableView()
        table.setObjectName("queue")
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(24)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        hh = table.horizontalHeader()
        hh.setStretchLastSection(True)
        hh.setMinimumSectionSize(24)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        fm = table.fontMetrics()
        widths = {
            "Status": fm.horizontalAdvance("To do") + 14,
            "#": fm.horizontalAdvance("000000") + 12,
            "Steps": fm.horizontalAdvance("Steps") + 14,
            "Outcome": fm.horizontalAdvance("Outcome") + 14,
            "Reviews": fm.horizontalAdvance("Reviews") + 14,
            "Source": fm.horizontalAdvance("benchmark") + 14,
        }
        for col, name in enumerate(self.model.COLUMNS):
            if name in widths:
                table.setColumnWidth(col, widths[name])
        return table

    # --- filters --------------------------------------------------------------------------
    def load_facets(self) -> None:
        """Sources, tools and score names for the combos, read on the worker thread (the
        sources are a scan of the traces)."""
        with self.ws.session() as s:
            self.has_traces = s.scalar(select(Trace.id).limit(1)) is not None

        self.model.run_later(facets, self._show_facets)

    def _show_facets(self, f: dict[str, list[str]]) -> None:
        for combo, values in (
            (self.source, f["sources"]),
            (self.tool, f["tools"]),
            (self.score, f["scores"]),
        ):
            current = combo.currentData()
            while combo.count() > 1:
                combo.removeItem(1)
            for v in values:
                combo.addItem(v, v)
            combo.setCurrentIndex(max(combo.findData(current), 0))
        # One source everywhere says nothing per row: give its room to the task.
        source_col = self.model.COLUMNS.index("Source")
        self.table.setColumnHidden(source_col, len(f["sources"]) <= 1)

    def trace_filter(self) -> TraceFilter:
        meta = []
        for item in self.meta.text().split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                meta.append((key.strip(), value.strip()))
        return TraceFilter(
            search=self.search.text().strip() or None,
            min_outcome=_number(self.min_outcome),
            max_outcome=_number(self.max_outcome),
            source=self.source.currentData(),
            tools=[self.tool.currentData()] if self.tool.currentData() else [],
            min_steps=_number(self.min_steps, int),
            max_steps=_number(self.max_steps, int),
            score_name=self.score.currentData(),
            min_score=_number(self.min_score) if self.score.currentData() else None,
            max_score=_number(self.max_score) if self.score.currentData() else None,
            meta=meta,
        )

    def query(self) -> tuple[TraceFilter, str | None]:
        return self.trace_filter(), self.status_filter.currentData()

    def set_filter(self, flt: TraceFilter, status: str | None) -> None:
        """Show a saved view's filter in the fields (without applying it)."""
        widgets = [self.search, self.status_filter, self.source, self.tool, self.score]
        for w in widgets:
            w.blockSignals(True)
        self.search.setText(flt.search or "")
        self.status_filter.setCurrentIndex(max(self.status_filter.findData(status), 0))
        for edit, value in (
            (self.min_outcome, flt.min_outcome),
            (self.max_outcome, flt.max_outcome),
            (self.min_steps, flt.min_steps),
            (self.max_steps, flt.max_steps),
            (self.min_score, flt.min_score),
            (self.max_score, flt.max_score),
        ):
            edit.setText("" if value is None else f"{value:g}")
        for combo, value in (
            (self.source, flt.source),
            (self.score, flt.score_name),
            (self.tool, flt.tools[0] if flt.tools else None),
        ):
            i = combo.findData(value)
            if i < 0 and value is not None:  # e.g. a tool no trace calls any more
                combo.addItem(value, value)
                i = combo.count() - 1
            combo.setCurrentIndex(max(i, 0))
        self.meta.setText(", ".join(f"{k}={v}" for k, v in flt.meta))
        for w in widgets:
            w.blockSignals(False)
        self._show_filter_count()

    def clear_filters(self) -> None:
        self.set_filter(
            TraceFilter(search=self.search.text().strip() or None), self.status_filter.currentData()
        )
        self.views.setCurrentIndex(0)
        self.apply_requested.emit()

    def _show_filter_count(self) -> None:
        flt = self.trace_filter()
        n = sum(
            1
            for on in (
                flt.min_outcome is not None or flt.max_outcome is not None,
                flt.min_steps is not None or flt.max_steps is not None,
                bool(flt.source),
                bool(flt.tools),
                bool(flt.score_name),
                bool(flt.meta),
            )
            if on
        )
        self.filter_button.setText(f"Filters ({n})" if n else "Filters")
        if n and not self.filter_button.isChecked():
            self.filter_button.setChecked(True)

    # --- saved views ----------------------------------------------------------------------
    def fill_views(self, select: str | None = None) -> None:
        with self.ws.session() as s:
            self._views = {v.name: v for v in list_views(s, self.judge.id)}
        self.views.blockSignals(True)
        self.views.clear()
        self.views.addItem(NO_VIEW, None)
        for name in self._views:
            self.views.addItem(name, name)
        self.views.setCurrentIndex(max(self.views.findData(select), 0) if select else 0)
        self.views.blockSignals(False)
        self.delete_button.setEnabled(bool(select))

    def _view_chosen(self, _index: int) -> None:
        name = self.views.currentData()
        self.delete_button.setEnabled(name is not None)
        if name is None:
            self.set_filter(TraceFilter(), None)
        else:
            view = self._views[name]
            self.set_filter(view.filter, view.status)
        self.apply_requested.emit()

    def save_current_view(self, _checked: bool = False, name: str | None = None) -> None:
        if name is None:
            current = self.views.currentData() or ""
            name, ok = QInputDialog.getText(self, "Save view", "Name of this view:", text=current)
            if not ok:
                return
        flt, status = self.query()
        try:
            with self.ws.session() as s:
                view = save_view(s, self.judge.id, name, flt, status)
        except ChambersError as exc:
            QMessageBox.warning(self, "Save view", str(exc))
            return
        self.fill_views(select=view.name)

    def delete_current_view(self) -> None:
        name = self.views.currentData()
        if name is None:
            return
        with self.ws.session() as s:
            delete_view(s, self.judge.id, name)
        self.fill_views()

    # --- what the queue says --------------------------------------------------------------
    def _failed(self, message: str) -> None:
        self.queue_label.setText(f"Search failed: {message}")

    def is_filtered(self) -> bool:
        flt, status = self.query()
        return bool(flt.as_json()) or status is not None

    def update_empty_state(self) -> None:
        """The table when there are rows; otherwise what to do next, with the buttons."""
        self._show_filter_count()
        total = self.model.total
        lead = self.judge.role == "lead"
        self.queue_label.setText(
            f"{total:,} trace{'s' if total != 1 else ''}"
            + (" in the workspace" if lead else " assigned to you")
            + (" match" if self.is_filtered() else "")
            + (
                f" · {self.model.unindexed:,} just imported are still being indexed for search"
                if self.model.unindexed
                else ""
            )
        )
        if total:
            self.stack.setCurrentWidget(self.table)
            return
        self.stack.setCurrentWidget(self.empty)
        if self.is_filtered() and self.model.unindexed:
            self.empty.show_state(
                "Still indexing",
                f"{self.model.unindexed:,} traces just imported are still being indexed for "
                "search (the status bar shows how far it is); they are searched as soon as it "
                "finishes, and the queue shows them then.",
                [("Clear search and filters", self._clear_all)],
            )
        elif self.is_filtered():
            self.empty.show_state(
                "Nothing matches",
                "No trace in your queue matches this search and these filters.",
                [("Clear search and filters", self._clear_all)],
            )
        elif not self.has_traces:
            self._first_run(lead)
        elif not self.has_rubric:
            self._no_rubric(lead)
        elif not lead:
            self.empty.show_state(
                "No traces assigned to you",
                f"<p>You are signed in as <b>{self.judge.name}</b> (judge). A lead assigns "
                "traces to judges in a review round under this rubric version.</p><p>Ask your "
                "lead to add you to a round, pick another rubric version above, or switch to "
                "another profile.</p>",
                [("Switch profile…", self.switch_judge_requested.emit)],
            )
        else:
            self.empty.show_state("No traces", "", [("Import traces…", self.import_requested.emit)])

    def _clear_all(self) -> None:
        self.set_filter(TraceFilter(), None)
        self.views.setCurrentIndex(0)
        self.apply_requested.emit()

    def _first_run(self, lead: bool) -> None:
        steps = [
            "<li><b>Import traces</b>: agent runs as JSON or JSONL from OpenAI, Anthropic, "
            "OpenTelemetry, Langfuse, LangSmith, ShareGPT, OpenHands or benchmark dumps (or drop "
            "the files on this window).</li>",
            "<li><b>Write a rubric</b>: the criteria judges score against (lead).</li>",
            "<li><b>Start a review round</b>: which traces, which judges, how many judges per "
            "trace (lead).</li>",
            "<li><b>Review</b>: j/k to move, a/m/r to decide, Ctrl+Enter to submit.</li>",
        ]
        text = (
            "<p>This workspace is empty. Four steps to a first review:</p><ol>"
            + "".join(steps)
            + "</ol><p>To look around first: <code>chambers sample</code> on the command line "
            "fills a workspace with 300 example traces, a rubric and reviews.</p>"
        )
        buttons = [("Import traces…", self.import_requested.emit)]
        if lead:
            buttons += [
                ("Open the rubric editor…", self.rubric_editor_requested.emit),
                ("Create a review round…", self.rounds_requested.emit),
            ]
        self.empty.show_state("Welcome to Chambers", text, buttons)

    def _no_rubric(self, lead: bool) -> None:
        if lead:
            self.empty.show_state(
                "No rubric yet",
                "Traces are reviewed against a rubric. Write one (criteria, scales, anchors) or "
                "import it from YAML in the rubric editor; then start a review round.",
                [("Open the rubric editor…", self.rubric_editor_requested.emit)],
            )
        else:
            self.empty.show_state(
                "No rubric yet",
                "Traces are reviewed against a rubric, and your lead has not written one yet. "
                "Ask them to create a rubric and a review round for you, or switch to a lead "
                "profile if that is you.",
                [("Switch profile…", self.switch_judge_requested.emit)],
            )
