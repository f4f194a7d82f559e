"""The review bench's trace side: the task box beside the rubric, outline keys, step labels
and the Modify editor's entry points. A mixin of MainWindow, kept apart from the queue side."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
)

from app.review.word_diff import n_edits
from ui.review.modify_dialog import ModifyDialog
from ui.widgets.render_context import render_task_box
from ui.widgets.trace_view import TraceBrowser, palette_colors, safe_browser

WRONG_REASONS = [
    "wrong tool",
    "wrong arguments",
    "policy violation",
    "acted without confirmation",
    "hallucinated information",
    "wrong or incomplete answer",
    "should have asked the user",
    "should have transferred to a human",
]
TASK_BOX_MAX = 330  # pixels; longer tasks and reference lists scroll inside the box
LABEL_WORDS = {"good": "good", "wrong": "wrong", "first_error": "first error"}


class StepLabelDialog(QDialog):
    """Why a step is wrong: a reason (pick or type) and an optional comment."""

    def __init__(self, step: int, label: str, current: dict[str, Any] | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Step {step}: {LABEL_WORDS[label]}")
        lay = QFormLayout(self)
        self.reason = QComboBox()
        self.reason.setEditable(True)
        self.reason.addItems(WRONG_REASONS)
        self.reason.setCurrentText((current or {}).get("reason") or "")
        self.comment = QLineEdit((current or {}).get("comment") or "")
        self.comment.setPlaceholderText("What went wrong (optional)")
        lay.addRow("Reason", self.reason)
        lay.addRow("Comment", self.comment)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self).activated.connect(self.accept)
        self.reason.setFocus()

    def values(self) -> tuple[str, str]:
        return self.reason.currentText().strip(), self.comment.text().strip()


class TraceBenchMixin:
    """Expects from MainWindow: trace, trace_view, panel, corrected, statusBar(), _action(),
    mark_dirty(), save_draft_if_dirty(), focus_trace()."""

    step_labels: dict[int, dict[str, Any]]
    task_box: TraceBrowser

    def _build_task_box(self) -> TraceBrowser:
        self.task_box = safe_browser()
        self.task_box.setObjectName("task_box")
        self.task_box.document().documentLayout().documentSizeChanged.connect(self._fit_task_box)
        self.task_box.setToolTip("The task, the outcome and the benchmark's expected actions")
        return self.task_box

    def _show_task(self) -> None:
        """Tall enough for the task and the expected actions, up to a limit (then it scrolls)."""
        self.task_box.setHtml(render_task_box(self.trace, palette_colors(self.palette())))

    def _fit_task_box(self, size) -> None:
        """Follows the laid-out text (at the box's real width), up to TASK_BOX_MAX."""
        self.task_box.setFixedHeight(min(max(int(size.height()) + 8, 60), TASK_BOX_MAX))

    def _trace_actions(self, review_menu, view_menu) -> None:
        tv = self.trace_view
        view_menu.addSeparator()
        self._action(view_menu, "Next step", "N", lambda: self._jump("step", 1))
        self._action(view_menu, "Previous step", "P", lambda: self._jump("step", -1))
        self._action(view_menu, "Next tool call", "T", lambda: self._jump("tool", 1))
        self._action(view_menu, "Previous tool call", "Shift+T", lambda: self._jump("tool", -1))
        self._action(view_menu, "Next error", "X", lambda: self._jump("error", 1))
        self._action(view_menu, "Previous error", "Shift+X", lambda: self._jump("error", -1))
        self._action(view_menu, "Find next", "F3", tv.find_next)
        self._action(view_menu, "Find previous", "Shift+F3", tv.find_previous)
        self._action(view_menu, "Policy and tools pane", "S", tv.toggle_context)
        review_menu.addSeparator()
        labels = review_menu.addMenu("Step &labels")
        self._action(labels, "Mark step good", "G", lambda: self.label_step("good"))
        self._action(labels, "Mark step wrong…", "W", lambda: self.label_step("wrong"))
        self._action(
            labels, "Mark step as the first error…", "F", lambda: self.label_step("first_error")
        )
        self._action(review_menu, "Modify this step…", "Shift+M", self.edit_current_step)
        self._action(
            review_menu,
            "Write the answer the agent should have given…",
            "Shift+W",
            self.write_answer,
        )

    def _jump(self, what: str, direction: int) -> None:
        if self.trace is None:
            return
        if not self.trace_view.jump(what, direction):
            names = {"step": "step", "tool": "tool call", "error": "error"}
            where = "after" if direction > 0 else "before"
            self.statusBar().showMessage(f"No {names[what]} {where} this one", 2500)

    # --- step labels ---------------------------------------------------------------------------
    def _load_step_labels(self, stored: list[dict[str, Any]] | None) -> None:
        self.step_labels = {int(x["step"]): dict(x) for x in stored or []}

    def step_labels_input(self) -> list[dict[str, Any]] | None:
        return [self.step_labels[k] for k in sorted(self.step_labels)] or None

    def _agent_step(self) -> int | None:
        """The outline's step when it is the agent's; the status bar says why not otherwise."""
        step = self.trace_view.current_step()
        if step is None:
            self.statusBar().showMessage("Pick a step first: n / t move through the outline", 3000)
            return None
        if self.trace["messages"][step]["role"] != "assistant":
            self.statusBar().showMessage(
                f"Step {step} is not the agent's: labels go on assistant steps", 3000
            )
            return None
        return step

    def label_step(self, label: str) -> None:
        """Mark the outline's step; the same key again removes the label."""
        if self.trace is None or self.version is None:
            return
        step = self._agent_step()
        if step is None:
            return
        current = self.step_labels.get(step)
        if current and current["label"] == label:
            del self.step_labels[step]
            self._labels_changed(f"Label removed from step {step}")
            return
        reason = comment = ""
        if label != "good":
            dlg = StepLabelDialog(step, label, current, self)
            if not dlg.exec():
                return
            reason, comment = dlg.values()
        note = ""
        if label == "first_error":  # one per review: an earlier mark becomes "wrong"
            for k, v in self.step_labels.items():
                if v["label"] == "first_error" and k != step:
                    v["label"] = "wrong"
                    note = f" (step {k} is now marked wrong)"
        self.step_labels[step] = {
            "step": step,
            "label": label,
            "reason": reason,
            "comment": comment,
        }
        self._labels_changed(f"Step {step} marked {LABEL_WORDS[label]}{note}")

    def _labels_changed(self, message: str) -> None:
        self.trace_view.set_labels(self.step_labels)
        self.mark_dirty()
        self.statusBar().showMessage(message, 3000)
        self.focus_trace()

    # --- the editor ----------------------------------------------------------------------------
    def open_editor(self, step: int | None = None) -> None:
        """Open the Modify editor (window-modal, not blocking: the event loop keeps running)."""
        if self.trace is None:
            return
        self.editor = ModifyDialog(self.trace, self.corrected, self, start_step=step)
        self.editor.accepted.connect(self._editor_accepted)
        self.editor.finished.connect(self._editor_finished)
        self.editor.open()

    def edit_current_step(self) -> None:
        if self.trace is None or self.version is None:
            return
        step = self._agent_step()
        if step is not None:
            if self.panel.decision() not in ("modify", "reject"):
                self.panel.set_decision("modify")
            self.open_editor(step)

    def write_answer(self) -> None:
        """The answer the agent should have given: the editor on the final reply."""
        if self.trace is None or self.version is None:
            return
        if self.panel.decision() not in ("modify", "reject"):
            self.panel.set_decision("modify")
        self.open_editor(None)

    def _editor_finished(self, _result: int) -> None:
        self._update_correction_label()
        self.focus_trace()

    def _editor_accepted(self) -> None:
        self.corrected = self.editor.result_messages
        self.mark_dirty()
        self.save_draft_if_dirty()

    def _correction_edits(self) -> int:
        return n_edits(self.trace["messages"], self.corrected)
