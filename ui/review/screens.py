"""The window's menus and the screens it opens: the lead's (rubrics, rounds, agreement,
adjudication), training (pairs, runs, models), blind comparisons, import, shortcuts."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
)

from ui.review.shortcuts import ShortcutsDialog
from ui.traces.import_dialog import ImportDialog

AUTOSAVE_MS = 1500


class ScreensMixin:
    """Menus, shortcuts and the screens the review window opens (mixed into MainWindow)."""

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
        self._trace_actions(r, v)
        if self.judge.role == "lead":
            lead = mb.addMenu("&Lead")
            self._action(lead, "&Rubrics…", "Ctrl+Shift+R", self.open_rubrics)
            self._action(lead, "Review &rounds…", "Ctrl+Shift+N", self.open_rounds)
            self._action(lead, "&Agreement dashboard…", "Ctrl+Shift+A", self.open_agreement)
            self._action(lead, "A&djudicate this trace…", "Ctrl+Shift+D", self.adjudicate_current)
        t = mb.addMenu("&Training")
        self._action(t, "Preference &pairs…", "Ctrl+Shift+P", self.open_pairs)
        self._action(t, "Training &runs…", "Ctrl+Shift+T", self.open_runs)
        self._action(t, "&Models…", "Ctrl+Shift+M", self.open_models)
        self._action(r, "Blind &comparisons…", "Ctrl+Shift+B", self.open_comparisons)
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
        dlg.saved.connect(self._rubric_saved)
        dlg.open()
        self.rubric_editor = dlg

    def _rubric_saved(self, *_args) -> None:
        self._fill_versions()
        if self.version is None and self.version_combo.count():
            self.switch_version(self.version_combo.itemData(0))

    def open_rounds(self) -> None:
        from ui.lead.rounds import RoundDialog

        dlg = RoundDialog(self.ws, self.judge, self, executor=self.executor)
        dlg.created.connect(self._round_created)
        dlg.open()
        self.round_dialog = dlg

    def _round_created(self) -> None:
        self.model.refresh(self._queue_refreshed)
        self._recount()

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
        dlg = PairsDialog(self.ws, self.judge, self, executor=self.executor)
        dlg.show()
        self.pairs_dialog = dlg

    def open_runs(self) -> None:
        from ui.training.runs_screen import RunsDialog

        dlg = RunsDialog(self.ws, self.judge, self, executor=self.executor)
        dlg.show()
        self.runs_dialog = dlg

    def open_models(self) -> None:
        from ui.training.models_screen import ModelsDialog

        dlg = ModelsDialog(self.ws, self.judge, self)
        dlg.show()
        self.models_dialog = dlg

    def open_comparisons(self) -> None:
        from ui.review.comparison_view import ComparisonDialog

        self.save_draft_if_dirty()
        dlg = ComparisonDialog(self.ws, self.judge, self)
        dlg.show()
        self.comparison_dialog = dlg

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def import_dialog(self, paths: list[str] | None = None) -> None:
        if not paths:
            paths, _ = QFileDialog.getOpenFileNames(
                self,
                "Import traces",
                str(Path.home()),
                "Trace files (*.json *.jsonl *.ndjson *.traj *.eval);;All files (*)",
            )
        if not paths:
            return
        dlg = ImportDialog(self.ws, list(paths), self)
        dlg.done.connect(self._imported)
        dlg.exec()

    def _imported(self, _report) -> None:
        self.queue_pane.load_facets()
        self.model.refresh(self._queue_refreshed)
        self._recount()
        self.indexer.start()  # the full-text index of what was stored, in the background

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_dialog(paths)
