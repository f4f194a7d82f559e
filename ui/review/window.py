"""The review bench: queue, trace, rubric panel; keyboard first, never loses work."""

from __future__ import annotations

import gc
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QElapsedTimer, QItemSelectionModel, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select

from app.review.corrections import final_answer
from app.review.queue import default_version_id, queue_progress
from app.review.reviews import (
    ReviewError,
    ReviewInput,
    record_conflict,
    save_draft,
    submit_review,
    visible_reviews,
    withdraw_submission,
)
from app.review.rubrics import CriterionSpec
from app.traces.queries import get_trace, trace_dict
from app.workspace.db import Workspace
from app.workspace.errors import ConflictError
from app.workspace.models import Judge, Review, RubricVersion
from ui.review.modify_dialog import ModifyDialog
from ui.review.profile_dialog import pick_judge
from ui.review.queue_model import QueueModel
from ui.review.shortcuts import ShortcutsDialog
from ui.traces.import_dialog import ImportDialog
from ui.widgets.conflict_dialog import ConflictDialog
from ui.widgets.render import render_side_panel
from ui.widgets.rubric_panel import RubricPanel
from ui.widgets.settings import APP, ORG
from ui.widgets.trace_view import TraceView, palette_colors

AUTOSAVE_MS = 1500


class MainWindow(QMainWindow):
    def __init__(self, ws: Workspace, judge: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.judge = judge
        self.version: RubricVersion | None = None
        self.specs: list[CriterionSpec] = []
        self.rubric_title = ""
        with ws.session() as s:
            vid = default_version_id(s, judge)
            if vid is not None:
                self._set_version(s.get(RubricVersion, vid))
        self.trace: dict[str, Any] | None = None
        self.editor: ModifyDialog | None = None
        self._judge_names: dict[int, str] | None = None  # for leads' "All reviews", read once
        self.corrected: list[dict[str, Any]] | None = None
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
        self._update_status()
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
        with self.ws.session() as s:
            for v in s.scalars(
                select(RubricVersion).order_by(
                    RubricVersion.rubric_id, RubricVersion.version.desc()
                )
            ):
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
        self.model.set_version(version_id)
        self._update_status()
        if self.model.rowCount() > 0:
            self.select_row(self._first_open_row())
        else:
            self.open_row(-1)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.focus_trace()  # keys go to the bench, not into the search box

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
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(6, 6, 0, 6)
        filters = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tasks and answers  ( / )")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.apply_filter)
        filters.addWidget(self.search, 1)
        self.status_filter = QComboBox()
        self.status_filter.addItem("All", None)
        for key, label in (("todo", "To do"), ("draft", "Drafts"), ("done", "Done")):
            self.status_filter.addItem(label, key)
        self.status_filter.currentIndexChanged.connect(self.apply_filter)
        filters.addWidget(self.status_filter)
        ll.addLayout(filters)
        vrow = QHBoxLayout()
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
        ll.addLayout(vrow)
        self.table = QTableView()
        self.table.setObjectName("queue")
        self.model = QueueModel(self.ws, self.judge, self.version.id if self.version else -1, self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        hh.setStretchLastSection(True)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        widths = {"Status": 54, "#": 44, "Source": 78, "Steps": 44, "Outcome": 58, "Reviews": 58}
        for col, name in enumerate(self.model.COLUMNS):
            if name in widths:
                self.table.setColumnWidth(col, widths[name])
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.open_row(cur.row())
        )
        ll.addWidget(self.table, 1)
        self.queue_label = QLabel()
        self.queue_label.setStyleSheet("color: palette(placeholder-text);")
        ll.addWidget(self.queue_label)

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
            msg = QLabel(
                "<b>No rubric in this workspace yet.</b><br><br>Reviews are scored against a rubric. "
                "A lead creates one; until then traces can be read but not reviewed."
            )
            msg.setWordWrap(True)
            msg.setAlignment(Qt.AlignmentFlag.AlignTop)
            self.tabs.addTab(msg, "Review")
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.tabs.addTab(self.details, "Details")
        self.others = QTextBrowser()
        self.others.setOpenLinks(False)
        if self.judge.role == "lead":
            self.tabs.addTab(self.others, "All reviews")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 6, 6, 6)
        rl.addWidget(self.tabs)

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
        self.statusBar().addWidget(self.status_workspace, 1)
        self.statusBar().addPermanentWidget(self.status_progress)
        self.statusBar().addPermanentWidget(self.status_judge)

    def _action(
        self, menu, text: str, shortcut: str | QKeySequence | None, slot, tip: str = ""
    ) -> QAction:
        act = QAction(text, self)
        if shortcut:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(s) for s in seqs])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            keys = " or ".join(
                QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in seqs
            )
            act.setToolTip(f"{tip or text.replace('&', '')} ({keys})")
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)
        return act

    def _actions(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&Import traces…", "Ctrl+I", self.import_dialog)
        self._action(f, "&Switch judge…", None, self.switch_judge)
        f.addSeparator()
        self._action(f, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        r = mb.addMenu("&Review")
        self.act_next = self._action(r, "&Next trace", "J", lambda: self.step(1))
        self.act_prev = self._action(r, "&Previous trace", "K", lambda: self.step(-1))
        r.addSeparator()
        self._action(r, "&Approve", "A", lambda: self.decide("approve"))
        self._action(r, "&Modify…", "M", lambda: self.decide("modify"))
        self._action(r, "&Reject", "R", lambda: self.decide("reject"))
        self._action(r, "Next criterion", ["Down", "]"], lambda: self.panel.move(1))
        self._action(r, "Previous criterion", ["Up", "["], lambda: self.panel.move(-1))
        for d in range(10):  # window-wide, not in the menu (a hidden action's shortcut is off)
            act = QAction(f"Set criterion to {d}", self)
            act.setShortcut(QKeySequence(str(d)))
            act.triggered.connect(partial(self._digit, d))
            self.addAction(act)
        self._action(r, "Write &rationale", "E", lambda: self.panel.rationale.setFocus())
        r.addSeparator()
        self._action(r, "&Submit", ["Ctrl+Return", "Ctrl+Enter"], self.submit)
        self._action(
            r, "&Undo last submission", QKeySequence.StandardKey.Undo, self.undo_submission
        )
        v = mb.addMenu("&View")
        self._action(v, "&Search queue", "/", self.focus_search)
        self._action(
            v,
            "&Find in trace",
            QKeySequence.StandardKey.Find,
            lambda: self.trace_view.find_edit.setFocus(),
        )
        self._action(v, "Back to the trace", "Esc", self.focus_trace)
        if self.judge.role == "lead":
            lead = mb.addMenu("&Lead")
            self._action(lead, "&Rubrics…", "Ctrl+Shift+R", self.open_rubrics)
            self._action(lead, "Review &rounds…", "Ctrl+Shift+N", self.open_rounds)
            self._action(lead, "&Agreement dashboard…", "Ctrl+Shift+A", self.open_agreement)
            self._action(lead, "A&djudicate this trace…", "Ctrl+Shift+D", self.adjudicate_current)
        t = mb.addMenu("&Training")
        self._action(t, "Preference &pairs…", "Ctrl+Shift+P", self.open_pairs)
        self._action(t, "Training &runs…", "Ctrl+Shift+T", self.open_runs)
        h = mb.addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", "?", self.show_shortcuts)
        self._action(
            h,
            "&About Chambers",
            None,
            lambda: QMessageBox.about(
                self,
                "Chambers",
                "Chambers: judge agent traces, keep the corrections.\nEverything stays on this machine.",
            ),
        )

    # --- lead screens --------------------------------------------------------------------
    def open_rubrics(self) -> None:
        from ui.lead.rubric_editor import RubricEditor

        self.save_draft_if_dirty()
        dlg = RubricEditor(self.ws, self.judge, self)
        dlg.saved.connect(self._fill_versions)
        dlg.open()
        self.rubric_editor = dlg

    def open_rounds(self) -> None:
        from ui.lead.rounds import RoundDialog

        dlg = RoundDialog(self.ws, self.judge, self)
        dlg.created.connect(self.model.reload)
        dlg.open()
        self.round_dialog = dlg

    def open_agreement(self) -> None:
        from ui.lead.agreement_dashboard import AgreementDashboard

        dlg = AgreementDashboard(self.ws, self.judge, self)
        if self.version is not None:
            dlg.version.setCurrentIndex(max(dlg.version.findData(self.version.id), 0))
        dlg.adjudicate_requested.connect(self.open_adjudication)
        dlg.show()
        dlg.refresh()
        self.dashboard = dlg

    def adjudicate_current(self) -> None:
        if self.trace is not None and self.version is not None:
            self.open_adjudication(self.trace["id"], self.version.id)

    def open_adjudication(self, trace_id: int, version_id: int) -> None:
        from ui.lead.adjudication import AdjudicationDialog

        self.save_draft_if_dirty()
        dlg = AdjudicationDialog(self.ws, self.judge, trace_id, version_id, self)
        dlg.show()
        self.adjudication = dlg

    def open_pairs(self) -> None:
        from ui.training.pairs_screen import PairsDialog

        self.save_draft_if_dirty()
        dlg = PairsDialog(self.ws, self.judge, self)
        dlg.show()
        self.pairs_dialog = dlg

    def open_runs(self) -> None:
        from ui.training.runs_screen import RunsDialog

        dlg = RunsDialog(self.ws, self.judge, self)
        dlg.show()
        self.runs_dialog = dlg

    # --- settings ------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = QSettings(ORG, APP)
        geo = st.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1480, 900)
        split = st.value("window/splitter")
        if split is not None:
            self.splitter.restoreState(split)

    def _save_settings(self) -> None:
        st = QSettings(ORG, APP)
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/splitter", self.splitter.saveState())
        st.setValue("judge/last", self.judge.name)

    # --- queue ---------------------------------------------------------------------------
    def apply_filter(self) -> None:
        self.save_draft_if_dirty()
        current = self.trace["id"] if self.trace else None
        self.model.set_filter(self.search.text().strip(), self.status_filter.currentData())
        row = self.model.row_of(current) if current else None
        self.select_row(row if row is not None else 0)
        self._update_status()

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
        while row >= self.model.rowCount() and self.model.canFetchMore():
            self.model.fetchMore()
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
            return
        with self.ws.session() as s:
            self.trace = trace_dict(get_trace(s, trace_id))
            review = self._my_review(s, trace_id)
            others = visible_reviews(s, trace_id, self.judge) if self.judge.role == "lead" else []
            other_rows = [
                (r.judge_id, r.decision, r.scores, r.rationale, r.corrected_output) for r in others
            ]
            if other_rows and self._judge_names is None:
                self._judge_names = {j.id: j.name for j in s.scalars(select(Judge))}
        names = self._judge_names or {}
        self.trace_view.show_trace(self.trace)
        self.details.setHtml(render_side_panel(self.trace, palette_colors(self.palette())))
        self._render_others(other_rows, names)
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

    def _my_review(self, s, trace_id: int) -> dict[str, Any] | None:
        if self.version is None:
            return None
        r = s.scalar(
            select(Review).where(
                Review.trace_id == trace_id,
                Review.judge_id == self.judge.id,
                Review.rubric_version_id == self.version.id,
            )
        )
        if r is None:
            return None
        return {
            "decision": r.decision,
            "scores": dict(r.scores),
            "rationale": r.rationale,
            "corrected_messages": r.corrected_messages,
            "time_on_task_s": r.time_on_task_s,
            "status": r.status,
            "id": r.id,
            "version": r.version,
        }

    def _render_others(self, rows, names) -> None:
        from html import escape

        if self.judge.role != "lead":
            return
        if not rows:
            self.others.setHtml("<i>No submitted reviews of this trace yet.</i>")
            return
        html = []
        for judge_id, decision, scores, rationale, corrected in rows:
            sc = ", ".join(f"{escape(k)}={escape(str(v))}" for k, v in scores.items())
            html.append(
                f"<p><b>{escape(names.get(judge_id, '?'))}</b>: {escape(decision or '')}<br><span style='color:gray'>{sc}</span>"
            )
            if rationale:
                html.append(f"<br>{escape(rationale)}")
            if corrected:
                html.append(f"<br><i>Correction:</i> {escape(corrected[:600])}")
            html.append("</p>")
        self.others.setHtml("".join(html))

    # --- reviewing -----------------------------------------------------------------------
    def current_input(self) -> ReviewInput:
        elapsed = self.clock.elapsed() / 1000 if self.clock.isValid() else 0.0
        corrected = self.corrected if self.panel.decision() in ("modify", "reject") else None
        return ReviewInput(
            decision=self.panel.decision(),
            scores=self.panel.scores(),
            rationale=self.panel.rationale.toPlainText(),
            corrected_messages=corrected,
            corrected_output=final_answer(corrected) if corrected else None,
            time_on_task_s=round(self.base_seconds + elapsed, 1),
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
            with self.ws.session() as s:
                review = save_draft(
                    s, self.trace["id"], self.judge.id, self.version.id, data, self.review_version
                )
                submitted = review.status == "submitted"
                self.review_version = review.version
        except ConflictError as exc:
            self._on_conflict(exc, "draft", self.trace["id"], self.version.id, data)
            return
        self.dirty = False
        self.panel.saved_label.setText(
            "Not saved: submitted reviews change on Submit" if submitted else "Draft saved"
        )
        self.model.refresh_row(self.trace["id"])
        self._update_status()

    def decide(self, decision: str) -> None:
        if self.version is None or self.trace is None:
            return
        self.panel.set_decision(decision)
        if decision == "modify":
            self.open_editor()

    def _decision_changed(self, decision: str) -> None:
        self._update_correction_label()

    def open_editor(self) -> None:
        """Open the Modify editor (window-modal, not blocking: the event loop keeps running)."""
        if self.trace is None:
            return
        self.editor = ModifyDialog(self.trace, self.corrected, self)
        self.editor.accepted.connect(self._editor_accepted)
        self.editor.finished.connect(self._editor_finished)
        self.editor.open()

    def _editor_finished(self, _result: int) -> None:
        self._update_correction_label()
        self.focus_trace()

    def _editor_accepted(self) -> None:
        self.corrected = self.editor.result_messages
        self.mark_dirty()
        self.save_draft_if_dirty()

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
        from app.review.corrections import unified_diff

        n = sum(
            1
            for line in unified_diff(self.trace["messages"], self.corrected)
            if line.startswith("+") and not line.startswith("+++")
        )
        self.panel.set_correction_summary(n)

    def submit(self) -> None:
        if self.version is None or self.trace is None:
            return
        data = self.current_input()
        try:
            with self.ws.session() as s:  # validated once, inside submit_review
                review = submit_review(
                    s, self.trace["id"], self.judge.id, self.version.id, data, self.review_version
                )
                self.review_version = review.version
                self.undo_stack.append((review.id, self.trace["id"], review.version))
        except ConflictError as exc:
            self._on_conflict(exc, "submit", self.trace["id"], self.version.id, data)
            return
        except ReviewError as exc:
            self.panel.show_problems(exc.problems)
            return
        self.dirty = False
        trace_id = self.trace["id"]
        self.model.refresh_row(trace_id)
        self.focus_trace()
        self._update_status()
        self.statusBar().showMessage(f"Submitted review of #{trace_id} — Ctrl+Z to undo", 5000)
        self._advance_to_next_todo()

    def _advance_to_next_todo(self) -> None:
        """Next trace not done, after this one, wrapping to the top of the queue."""
        start = self.current_row()
        row = start + 1
        while True:
            while row >= self.model.rowCount() and self.model.canFetchMore():
                self.model.fetchMore()
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
                withdraw_submission(s, review_id, self.judge.id, version)
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
        self.model.refresh_row(trace_id)
        row = self.model.row_of(trace_id)
        if row is not None:
            if row == self.current_row():
                self.open_row(row)
            else:
                self.select_row(row)
        self._update_status()
        self.statusBar().showMessage(
            f"Submission of #{trace_id} undone: it is your draft again", 5000
        )

    # --- conflicts (the same review changed in another window or on another machine) -------
    def _on_conflict(
        self, exc: ConflictError, action: str, trace_id: int, version_id: int, data: ReviewInput
    ) -> None:
        """Nothing was written: audit both versions, show them, let the judge choose."""
        with self.ws.session() as s:
            theirs = record_conflict(s, exc, self.judge.id)
        self.dirty = False  # the autosave must not retry while the judge decides
        what = "review" if action == "submit" else "draft"
        dlg = ConflictDialog(exc.mine, theirs, what, self)
        dlg.finished.connect(
            partial(self._conflict_resolved, dlg, action, trace_id, version_id, data, theirs)
        )
        self.conflict_dialog = dlg
        dlg.open()

    def _conflict_resolved(
        self, dlg, action, trace_id, version_id, data, theirs, _result: int = 0
    ) -> None:
        self.conflict_dialog = None
        expected = theirs["version"] if theirs else 0
        if dlg.choice == "mine":
            try:
                with self.ws.session() as s:
                    write = submit_review if action == "submit" else save_draft
                    review = write(s, trace_id, self.judge.id, version_id, data, expected)
                    if action == "submit":
                        self.undo_stack.append((review.id, trace_id, review.version))
            except ConflictError as exc:  # changed yet again meanwhile
                self._on_conflict(exc, action, trace_id, version_id, data)
                return
            except ReviewError as exc:
                self.panel.show_problems(exc.problems)
            msg = "Your version was kept; the replaced one is in the audit log"
        else:
            msg = "The stored version was kept; yours is in the audit log"
        self._reopen(trace_id)
        self.statusBar().showMessage(msg, 6000)

    def _reopen(self, trace_id: int) -> None:
        """Show a trace's review as stored now (after a conflict or a refused undo)."""
        self.model.refresh_row(trace_id)
        row = self.model.row_of(trace_id)
        if self.trace is not None and self.trace["id"] == trace_id and row is not None:
            self.dirty = False
            self.open_row(row)
        self._update_status()

    # --- other ---------------------------------------------------------------------------
    def _update_status(self) -> None:
        self.status_workspace.setText(f"Workspace: {self.ws.display_name}")
        self.status_judge.setText(f"  {self.judge.name} ({self.judge.role})  ")
        if self.version is not None:
            with self.ws.session() as s:
                p = queue_progress(s, self.judge, self.version.id)
            self.status_progress.setText(
                f"To do {p['todo']} · Drafts {p['draft']} · Done {p['done']}  "
            )
        shown = self.model.total
        self.queue_label.setText(
            f"{shown:,} trace{'s' if shown != 1 else ''}"
            + (" assigned to you" if self.judge.role != "lead" else " in the workspace")
        )

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def import_dialog(self, paths: list[str] | None = None) -> None:
        if not paths:
            paths, _ = QFileDialog.getOpenFileNames(
                self,
                "Import traces",
                str(Path.home()),
                "Trace files (*.json *.jsonl *.ndjson);;All files (*)",
            )
        if not paths:
            return
        dlg = ImportDialog(self.ws, list(paths), self)
        dlg.done.connect(self._imported)
        dlg.exec()

    def _imported(self, _report) -> None:
        self.model.reload()
        self._update_status()

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

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_dialog(paths)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.save_draft_if_dirty()
        self.autosave.stop()
        self._save_settings()
        super().closeEvent(event)
