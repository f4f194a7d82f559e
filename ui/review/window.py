"""The review bench: queue, trace, rubric panel; keyboard first, never loses work."""

from __future__ import annotations

import gc
from typing import Any

from PySide6.QtCore import (
    QElapsedTimer,
    QEvent,
    QItemSelectionModel,
    QSettings,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.review.corrections import corrected_answer
from app.review.queue import default_version_id, queue_progress
from app.review.reviews import (
    OtherReview,
    ReviewChange,
    ReviewError,
    ReviewInput,
    other_reviews,
    own_review,
    record_conflict,
    save_draft_changes,
    submit_review_changes,
    withdraw_changes,
)
from app.review.rubrics import CriterionSpec, version_choices
from app.traces.queries import get_trace, trace_dict
from app.traces.search_index import pending
from app.workspace.db import Workspace
from app.workspace.errors import ConflictError
from app.workspace.models import Judge, RubricVersion
from ui.review.all_reviews import render_all_reviews
from ui.review.conflicts import ConflictsMixin
from ui.review.modify_dialog import ModifyDialog
from ui.review.profile_dialog import pick_judge
from ui.review.queue_pane import QueuePane
from ui.review.screens import ScreensMixin
from ui.review.trace_bench import TraceBenchMixin
from ui.traces.search_indexer import SearchIndexer
from ui.widgets.conflict_dialog import ConflictDialog
from ui.widgets.executor import Job, WorkspaceExecutor
from ui.widgets.render import render_side_panel
from ui.widgets.rubric_panel import RubricPanel
from ui.widgets.settings import APP, ORG
from ui.widgets.trace_view import TraceView, palette_colors

AUTOSAVE_MS = 1500


class MainWindow(TraceBenchMixin, ScreensMixin, ConflictsMixin, QMainWindow):
    version_loaded = Signal()  # another rubric version's queue landed

    def __init__(self, ws: Workspace, judge: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.judge = judge
        # database work that grows with the workspace runs here, off the UI thread
        self.executor = WorkspaceExecutor(ws, self)
        self._others_job: Job | None = None
        self._keep_trace: int | None = None  # the trace to stay on when a search lands
        self._count_job: Job | None = None
        self._count_stale = False
        self.progress: dict[str, int] = {}
        self.version: RubricVersion | None = None
        self.specs: list[CriterionSpec] = []
        self.rubric_title = ""
        with ws.session() as s:
            vid = default_version_id(s, judge)
            if vid is not None:
                self._set_version(s.get(RubricVersion, vid))
        self.trace: dict[str, Any] | None = None
        self.editor: ModifyDialog | None = None
        self.corrected: list[dict[str, Any]] | None = None
        self.step_labels: dict[int, dict[str, Any]] = {}
        self.base_seconds = 0.0
        self.clock = QElapsedTimer()
        self.dirty = False
        self.loading = False
        self.undo_stack: list[tuple[int, int, int]] = []  # (review id, trace id, version)
        # The version of my review this window read (0: none yet). Every write names it, so
        # a second window or machine cannot be overwritten silently (ConflictError instead).
        self.review_version = 0
        self.conflict_dialog: ConflictDialog | None = None
        self.setWindowTitle(f"Chambers — {ws.display_name}")
        self.setAcceptDrops(True)
        self._build()
        self._actions()
        self.autosave = QTimer(self)
        self.autosave.setInterval(AUTOSAVE_MS)
        self.autosave.timeout.connect(self.save_draft_if_dirty)
        self.autosave.start()
        self._restore_settings()
        self._recount()
        self.indexer = SearchIndexer(ws.url, self)
        self.indexer.progress.connect(self._indexing)
        self.indexer.finished.connect(self._indexed)
        self.executor.submit(pending, self._index_if_pending, label="search index")
        if self.model.rowCount() > 0:
            self.select_row(self._first_open_row())
        # Everything alive now (Qt wrappers, SQLAlchemy mappers, modules) lives as long as the
        # app: move it out of the collector's reach, so full collections stay short and never
        # stall scrolling (they took 90 ms with a large queue loaded; see benchmarks/ui_bench.py).
        gc.freeze()

    def _set_version(self, v: RubricVersion) -> None:
        self.version = v
        self.specs = [CriterionSpec.from_row(c) for c in v.criteria]
        self.rubric_title = f"{v.rubric.name} · v{v.version}"

    def _fill_versions(self) -> None:
        self.version_combo.blockSignals(True)
        self.version_combo.clear()
        with self.ws.session() as s:  # a handful of rubric versions
            for _label, v in version_choices(s):
                self.version_combo.addItem(f"{v.rubric.name} · v{v.version}", v.id)
        if self.version is not None:
            self.version_combo.setCurrentIndex(self.version_combo.findData(self.version.id))
        self.version_combo.blockSignals(False)

    def switch_version(self, version_id: int) -> None:
        """Review under another rubric version: its queue and its criteria."""
        if self.version is not None and version_id == self.version.id:
            return
        self.save_draft_if_dirty()
        with self.ws.session() as s:
            v = s.get(RubricVersion, version_id)
            if v is None:
                return
            self._set_version(v)
            s.expunge(v)
        self.panel.set_rubric(self.rubric_title, self.specs)
        if self.tabs.widget(0) is not self.panel:  # the first rubric: reviewing can start
            self.tabs.removeTab(0)
            self.tabs.insertTab(0, self.panel, "Review")
            self.tabs.setCurrentIndex(0)
            self.queue_pane.has_rubric = True
        self.open_row(-1)  # nothing open (or autosaved) under the wrong version meanwhile
        self.table.setEnabled(False)
        self.queue_label.setText("Loading…")
        self.model.set_version(version_id, then=self._version_loaded)
        self._recount()

    def _version_loaded(self) -> None:
        """The other version's queue has landed: start where its work is."""
        self.table.setEnabled(True)
        if self.model.rowCount() > 0:
            self.select_row(self._first_open_row())
        else:
            self.open_row(-1)
        self._update_status()
        self.version_loaded.emit()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            if not getattr(self, "_splitter_restored", False):
                self._proportional_panes()
            self.focus_trace()  # keys go to the bench, not into the search box

    def _proportional_panes(self) -> None:
        """First start: queue, trace and review share the width 32 : 42 : 26, so the trace
        keeps its room on a 1366-pixel laptop screen as on a wide monitor."""
        width = self.splitter.width()
        queue, trace = int(width * 0.32), int(width * 0.42)
        self.splitter.setSizes([queue, trace, width - queue - trace])

    def _digit(self, d: int) -> None:
        # Slots return None: PySide6 mishandles a bool returned from a slot (refcount).
        self.panel.digit(d)

    def _first_open_row(self) -> int:
        """Start where the work is: the first trace not done yet."""
        return next(
            (i for i in range(self.model.rowCount()) if self.model.queue_row(i).status != "done"), 0
        )

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        left = self.queue_pane = QueuePane(
            self.ws, self.judge, self.version.id if self.version else -1, self, self.executor
        )
        self.search, self.status_filter = left.search, left.status_filter
        self.table, self.model, self.queue_label = left.table, left.model, left.queue_label
        left.apply_requested.connect(self.apply_filter)
        left.import_requested.connect(self.import_dialog)
        left.switch_judge_requested.connect(self.switch_judge)
        left.rubric_editor_requested.connect(self.open_rubrics)
        left.rounds_requested.connect(self.open_rounds)
        self.model.loaded.connect(self._filter_applied)
        self.model.failed.connect(self._queue_failed)
        vrow = left.version_row
        vrow.addWidget(QLabel("Rubric"))
        self.version_combo = QComboBox()
        self.version_combo.setToolTip("Review under this rubric version (its rounds' traces)")
        self._fill_versions()
        self.version_combo.currentIndexChanged.connect(
            lambda _i: (
                self.switch_version(self.version_combo.currentData())
                if self.version_combo.currentData() is not None
                else None
            )
        )
        vrow.addWidget(self.version_combo, 1)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.open_row(cur.row())
        )

        self.trace_view = TraceView()
        center = QWidget()
        cl = QVBoxLayout(center)
        cl.setContentsMargins(0, 6, 0, 6)
        cl.addWidget(self.trace_view)

        self.tabs = QTabWidget()
        self.panel = RubricPanel()
        self.panel.changed.connect(self.mark_dirty)
        self.panel.submit_requested.connect(self.submit)
        self.panel.modify_requested.connect(self.open_editor)
        self.panel.decision_changed.connect(self._decision_changed)
        if self.version is not None:
            self.panel.set_rubric(self.rubric_title, self.specs)
            self.tabs.addTab(self.panel, "Review")
        else:
            self.tabs.addTab(self._no_rubric_tab(), "Review")
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.tabs.addTab(self.details, "Details")
        self.others = QTextBrowser()
        self.others.setOpenLinks(False)
        self.others.anchorClicked.connect(lambda _url: self._render_others(full=True))
        self._others: list[OtherReview] = []
        self._version_names: dict[int, str] = {}
        if self.judge.role == "lead":
            others_tab = QWidget()
            ol = QVBoxLayout(others_tab)
            ol.setContentsMargins(0, 0, 0, 0)
            ol.addWidget(self.others, 1)
            self.tabs.addTab(others_tab, "All reviews")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 6, 6, 6)
        rl.addWidget(self._build_task_box())
        rl.addWidget(self.tabs, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(center)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([430, 640, 430])
        self.setCentralWidget(self.splitter)
        self.status_workspace = QLabel()
        self.status_judge = QLabel()
        self.status_progress = QLabel()
        for label in (self.status_workspace, self.status_judge):  # names are never markup
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_index = QLabel()  # the full-text index catching up after an import
        self.status_index.setVisible(False)
        self.statusBar().addWidget(self.status_workspace, 1)
        self.statusBar().addPermanentWidget(self.status_index)
        self.statusBar().addPermanentWidget(self.status_progress)
        self.statusBar().addPermanentWidget(self.status_judge)

    def _no_rubric_tab(self) -> QWidget:
        """What to do when there is no rubric: the lead gets the button that makes one."""
        page = QWidget()
        lay = QVBoxLayout(page)
        lead = self.judge.role == "lead"
        msg = QLabel(
            "<b>No rubric in this workspace yet.</b><br><br>Reviews are scored against a rubric. "
            + (
                "Write one in the rubric editor (or import it from YAML), then start a review "
                "round; until then traces can be read but not reviewed."
                if lead
                else "Your lead writes it; until then traces can be read but not reviewed."
            )
        )
        msg.setWordWrap(True)
        lay.addWidget(msg)
        if lead:
            self.no_rubric_button = QPushButton("Open the rubric editor…")
            self.no_rubric_button.clicked.connect(self.open_rubrics)
            lay.addWidget(self.no_rubric_button, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addStretch(1)
        return page

    # --- settings ------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = QSettings(ORG, APP)
        geo = st.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1480, 900)
        split = st.value("window/splitter")
        self._splitter_restored = split is not None and self.splitter.restoreState(split)

    def _save_settings(self) -> None:
        st = QSettings(ORG, APP)
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/splitter", self.splitter.saveState())
        st.setValue("judge/last", self.judge.name)

    # --- queue ---------------------------------------------------------------------------
    def apply_filter(self) -> None:
        """Search and filter on the worker thread; _filter_applied shows the result."""
        self.save_draft_if_dirty()
        self._keep = self.trace["id"] if self.trace else None
        self.model.query(*self.queue_pane.query())
        self.queue_label.setText("Searching…")

    def _filter_applied(self) -> None:
        self.table.setEnabled(True)
        current = getattr(self, "_keep", None)
        row = self.model.row_of(current) if current else None
        self.select_row(row if row is not None else 0)

    def select_row(self, row: int) -> None:
        if row < 0 or row >= self.model.rowCount():
            if self.model.rowCount() == 0:
                self.open_row(-1)
            return
        idx = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(idx)

    def current_row(self) -> int:
        return self.table.selectionModel().currentIndex().row()

    def step(self, delta: int) -> None:
        row = self.current_row() + delta
        while row >= self.model.rowCount() and self.model.rowCount() < self.model.total:
            self.model.fetch_more_now()
        self.select_row(max(0, min(row, self.model.rowCount() - 1)))

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def focus_trace(self) -> None:
        self.trace_view.browser.setFocus()

    # --- one trace -----------------------------------------------------------------------
    def open_row(self, row: int) -> None:
        self.save_draft_if_dirty()
        trace_id = self.model.trace_id(row) if row >= 0 else None
        if trace_id is None:
            self.trace = None
            self.trace_view.show_trace(None)
            self.details.clear()
            self._show_task()
            return
        with self.ws.session() as s:  # one trace and one review: constant work
            self.trace = trace_dict(get_trace(s, trace_id))
            review = (
                own_review(s, trace_id, self.judge.id, self.version.id)
                if self.version is not None
                else None
            )
        self._load_step_labels(review["step_labels"] if review else None)
        self.trace_view.show_trace(self.trace, self.step_labels)
        self._show_task()
        self.details.setHtml(render_side_panel(self.trace, palette_colors(self.palette())))
        self._load_others(trace_id)
        self.loading = True
        self.review_version = review["version"] if review is not None else 0
        if review is not None:
            self.panel.load(review["decision"], review["scores"], review["rationale"])
            self.corrected = review["corrected_messages"]
            self.base_seconds = review["time_on_task_s"]
            status = "submitted" if review["status"] == "submitted" else "draft"
            self.panel.saved_label.setText(
                "Submitted — changes amend it" if status == "submitted" else "Draft restored"
            )
        else:
            self.panel.load(None, {}, "")
            self.corrected = None
            self.base_seconds = 0.0
            self.panel.saved_label.setText("")
        self.loading = False
        self.dirty = False
        self._update_correction_label()
        self.clock.restart()

    def _load_others(self, trace_id: int) -> None:
        """Leads: every submitted review of this trace, read on the executor."""
        if self.judge.role != "lead":
            return
        if self._others_job is not None:
            self._others_job.cancel()  # the lead moved on: only the last trace's reviews
        judge = self.judge
        self._others_job = self.executor.submit(
            lambda s: other_reviews(s, trace_id, judge), self._show_others, label="reviews"
        )

    def _show_others(self, result) -> None:
        self._others, self._version_names = result
        self._render_others()

    def _render_others(self, full: bool = False) -> None:
        if self.judge.role == "lead":
            current = self.version.id if self.version else None
            versions = self._version_names
            self.others.setHtml(render_all_reviews(self._others, versions, current, full))

    # --- reviewing -----------------------------------------------------------------------
    def current_input(self) -> ReviewInput:
        elapsed = self.clock.elapsed() / 1000 if self.clock.isValid() else 0.0
        corrected = self.corrected if self.panel.decision() in ("modify", "reject") else None
        return ReviewInput(
            decision=self.panel.decision(),
            scores=self.panel.scores(),
            rationale=self.panel.rationale.toPlainText(),
            corrected_messages=corrected,
            corrected_output=corrected_answer(corrected) if corrected else None,
            time_on_task_s=round(self.base_seconds + elapsed, 1),
            step_labels=self.step_labels_input(),
        )

    def mark_dirty(self) -> None:
        if not self.loading:
            self.dirty = True
            self.panel.saved_label.setText("Unsaved changes…")

    def save_draft_if_dirty(self) -> None:
        if not self.dirty or self.trace is None or self.version is None:
            return
        data = self.current_input()
        try:
            with self.ws.session() as s:  # one review, by its unique key: constant work
                change = save_draft_changes(
                    s, self.trace["id"], self.judge.id, self.version.id, data, self.review_version
                )
        except ConflictError as exc:
            self._on_conflict(exc, "draft", self.trace["id"], self.version.id, data)
            return
        self.review_version = change.version
        self.dirty = False
        self.panel.saved_label.setText(
            "Not saved: submitted reviews change on Submit"
            if change.after == "done"
            else "Draft saved"
        )
        self._apply_change(change)

    def decide(self, decision: str) -> None:
        if self.version is None or self.trace is None:
            return
        self.panel.set_decision(decision)
        if decision == "modify":
            self.open_editor()

    def _decision_changed(self, decision: str) -> None:
        self._update_correction_label()

    def _update_correction_label(self) -> None:
        d = self.panel.decision()
        if d not in ("modify", "reject"):
            self.panel.set_correction_summary(None)
            return
        if self.corrected is None or self.trace is None:
            text = (
                "edit the agent's output (m)"
                if d == "modify"
                else "optionally write the answer the agent should have given"
            )
            self.panel.correction_label.setText(f"<a href='edit'>{text}</a>")
            return
        self.panel.set_correction_summary(self._correction_edits())

    def submit(self) -> None:
        if self.version is None or self.trace is None:
            return
        data = self.current_input()
        try:
            with self.ws.session() as s:  # validated once, inside submit_review
                change = submit_review_changes(
                    s, self.trace["id"], self.judge.id, self.version.id, data, self.review_version
                )
                self.review_version = change.version
                self.undo_stack.append((change.review_id, self.trace["id"], change.version))
        except ConflictError as exc:
            self._on_conflict(exc, "submit", self.trace["id"], self.version.id, data)
            return
        except ReviewError as exc:
            self.panel.show_problems(exc.problems)
            return
        self.dirty = False
        trace_id = self.trace["id"]
        self._apply_change(change)
        self.focus_trace()
        self.statusBar().showMessage(f"Submitted review of #{trace_id} — Ctrl+Z to undo", 5000)
        self._advance_to_next_todo()

    def _advance_to_next_todo(self) -> None:
        """Next trace not done, after this one, wrapping to the top of the queue."""
        start = self.current_row()
        row = start + 1
        while True:
            while row >= self.model.rowCount() and self.model.rowCount() < self.model.total:
                self.model.fetch_more_now()
            if row >= self.model.rowCount():
                row = 0
            if row == start:
                self.open_row(start)  # all done: stay, shown as submitted
                self.statusBar().showMessage("Queue complete: every trace is done", 5000)
                return
            if self.model.queue_row(row).status != "done":
                self.select_row(row)
                return
            row += 1

    def undo_submission(self) -> None:
        if not self.undo_stack:
            self.statusBar().showMessage("Nothing to undo", 3000)
            return
        review_id, trace_id, version = self.undo_stack.pop()
        self.save_draft_if_dirty()
        try:
            with self.ws.session() as s:
                change = withdraw_changes(s, review_id, self.judge.id, version)
        except ConflictError as exc:
            with self.ws.session() as s:
                record_conflict(s, exc, self.judge.id)
            self.statusBar().showMessage(
                f"Not undone: the review of #{trace_id} was changed elsewhere since you "
                "submitted it; it is shown as stored now",
                8000,
            )
            self._reopen(trace_id)
            return
        self._apply_change(change)
        row = self.model.row_of(trace_id)
        if row is not None:
            if row == self.current_row():
                self.open_row(row)
            else:
                self.select_row(row)
        self.statusBar().showMessage(
            f"Submission of #{trace_id} undone: it is your draft again", 5000
        )

    # --- other ---------------------------------------------------------------------------
    def _recount(self) -> None:
        """Count the queue on the executor (opening, another version, an import, a new
        round); a review written here moves the counters through `_apply_change` instead.
        A write while a count is on its way may or may not be in it: count once more."""
        if self.version is None:
            self._update_status()
            return
        judge, vid = self.judge, self.version.id
        self._count_stale = False
        self._count_job = self.executor.submit(
            lambda s: queue_progress(s, judge, vid), self._counted, label="count"
        )

    def _counted(self, progress: dict[str, int]) -> None:
        if self._count_stale:
            self._recount()
            return
        self.progress = progress
        self._update_status()

    @property
    def counting(self) -> bool:
        return self._count_job is not None and not self._count_job.finished

    def _apply_change(self, change: ReviewChange) -> None:
        """Repaint the one row a write touched and move the counters: no recount."""
        if self.counting:
            self._count_stale = True
        if change.before != change.after and self.progress:
            self.progress[change.before] -= 1
            self.progress[change.after] += 1
        self.model.apply_change(change)
        self._update_status()

    def _update_status(self) -> None:
        self.status_workspace.setText(f"Workspace: {self.ws.display_name}")
        self.status_judge.setText(f"  {self.judge.name} ({self.judge.role})  ")
        if self.version is not None and self.progress:
            p = self.progress
            self.status_progress.setText(
                f"To do {p['todo']} · Drafts {p['draft']} · Done {p['done']}  "
            )
        self.queue_pane.update_empty_state()

    def _queue_refreshed(self) -> None:
        self.table.setEnabled(True)
        self._update_status()

    def _queue_failed(self, message: str) -> None:
        self.table.setEnabled(True)
        self._update_status()
        self.statusBar().showMessage(f"Could not read the queue: {message}", 8000)

    def switch_judge(self) -> None:
        self.save_draft_if_dirty()
        judge = pick_judge(self.ws, self, acting=self.judge)
        if judge is None:
            return
        self.judge = judge
        self._save_settings()
        self.close()
        w = MainWindow(self.ws, judge)
        w.show()
        QApplication.instance().setProperty("main_window", w)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The system switched light/dark: redraw the HTML views in the new colours."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and getattr(self, "trace", None):
            self.trace_view._render()
            self.details.setHtml(render_side_panel(self.trace, palette_colors(self.palette())))

    # --- the full-text index after an import ------------------------------------------------
    def _index_if_pending(self, n: int) -> None:
        if n:
            self.indexer.start()

    def _indexing(self, done: int, total: int) -> None:
        self.status_index.setText(f"Indexing for search: {done:,} of {total:,} traces")
        self.status_index.setVisible(True)

    def _indexed(self, done: int, error: str) -> None:
        self.status_index.setVisible(False)
        if error:
            self.statusBar().showMessage(f"The search index could not catch up: {error}", 8000)
            return
        if done:
            self.statusBar().showMessage(f"Search index up to date ({done:,} traces added)", 5000)
        if self.model.filter.search or self.model.filter.meta:  # the results may grow
            self.model.refresh(self._queue_refreshed)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.indexer.stop()
        self.save_draft_if_dirty()
        self.autosave.stop()
        self.model.close()
        self._save_settings()
        self.executor.shutdown()
        super().closeEvent(event)
