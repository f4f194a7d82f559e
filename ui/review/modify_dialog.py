"""The Modify editor: correct the agent's steps, see the conversation around them, and the
word-level diff. Editing step k ends the corrected history at k (app.review.corrections)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.review.corrections import REPLY, TOOL_CALL, CorrectionDraft, check_tool_call, tool_calls_of
from app.review.word_diff import word_diff
from app.traces.display import printable
from app.traces.outline import cut_at_word
from ui.review.shortcuts import EDITOR_SHORTCUTS
from ui.widgets.trace_view import palette_colors, safe_browser
from ui.widgets.word_diff_view import render_word_diff

CONTEXT_BEFORE, CONTEXT_AFTER = 3, 2


@dataclass(frozen=True)
class Row:
    step: int
    kind: str  # reply | tool_call | user | tool | system


def _summary(m: dict[str, Any]) -> str:
    calls = tool_calls_of(m)
    if calls:
        return "→ " + ", ".join(c["name"] or "(no name)" for c in calls)
    results = [p for p in m["parts"] if p["type"] == "tool_result"]
    if results:
        return "← " + " ".join(results[0]["content"].split())
    return " ".join(" ".join(p.get("text", "") for p in m["parts"]).split()) or "(empty)"


class ModifyDialog(QDialog):
    """Edit the agent's steps (reply text, tool name and JSON arguments, kind), insert and
    delete steps; JSON and schema checked; the conversation around the step and the diff shown."""

    def __init__(
        self,
        trace: dict[str, Any],
        corrected: list[dict[str, Any]] | None,
        parent=None,
        start_step: int | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(f"Modify trace #{trace['id']}")
        self.resize(1180, 760)
        self.trace = trace
        self.original = trace["messages"]
        self.tools = trace.get("tools") or []
        self.draft = CorrectionDraft(self.original, corrected, self.tools)
        self.targets: list[Row] = []
        self.pending: dict[tuple[int, int], str] = {}  # arguments that are not JSON yet
        self.result_messages: list[dict[str, Any]] | None = None
        self._current: int | None = None
        self._loading = False
        self._build()
        self._keys()
        self._fill_list()
        first = start_step if start_step is not None else self._final_reply()
        self.select_step(first)

    # --- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)
        edit = QSplitter()
        self.list = QListWidget()
        self.list.setObjectName("steps")
        edit.addWidget(self.list)
        right = QSplitter(Qt.Orientation.Vertical)
        self.context_view = safe_browser()
        self.context_view.setObjectName("around")
        right.addWidget(self.context_view)
        right.addWidget(self._editor())
        right.setSizes([300, 380])
        edit.addWidget(right)
        edit.setSizes([330, 820])
        self.tabs.addTab(edit, "Edit")
        self.diff_view = safe_browser()
        self.tabs.addTab(self.diff_view, "Diff (Ctrl+Shift+D)")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.errors = QLabel()
        self.errors.setStyleSheet("color: #b42318;")
        self.errors.setWordWrap(True)
        lay.addWidget(self.errors)
        hint = QLabel(" · ".join(f"{k} {v.split(' (')[0]}" for k, v in EDITOR_SHORTCUTS[:4]))
        hint.setStyleSheet("color: palette(placeholder-text);")
        hint.setWordWrap(True)
        lay.addWidget(hint)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Keep correction  (Ctrl+Enter)")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.list.currentRowChanged.connect(self._select)

    def _editor(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.step_title = QLabel()
        row.addWidget(self.step_title, 1)
        self.kind_combo = QComboBox()
        self.kind_combo.addItem("Reply", REPLY)
        self.kind_combo.addItem("Tool call", TOOL_CALL)
        self.kind_combo.setToolTip("What the agent should have done at this step (Ctrl+T)")
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        row.addWidget(self.kind_combo)
        self.insert_button = QPushButton("Insert step after")
        self.insert_button.setToolTip("Ctrl+N")
        self.insert_button.clicked.connect(self.insert_step)
        row.addWidget(self.insert_button)
        self.delete_button = QPushButton("Delete step")
        self.delete_button.setToolTip("Ctrl+Shift+Delete")
        self.delete_button.clicked.connect(self.delete_step)
        row.addWidget(self.delete_button)
        v.addLayout(row)
        self.stack = QStackedWidget()
        text_page = QWidget()
        tl = QVBoxLayout(text_page)
        tl.setContentsMargins(0, 0, 0, 0)
        self.text_edit = QPlainTextEdit()
        self.text_edit.setPlaceholderText("What the agent should have said")
        tl.addWidget(self.text_edit)
        self.stack.addWidget(text_page)
        call_page = QWidget()
        cl = QFormLayout(call_page)
        cl.setContentsMargins(0, 0, 0, 0)
        self.call_combo = QComboBox()
        self.call_combo.currentIndexChanged.connect(lambda _i: self._show_call())
        self.name_edit = QLineEdit()
        names = [t["name"] for t in self.tools]
        self.name_edit.setCompleter(QCompleter(names, self.name_edit))
        self.args_edit = QPlainTextEdit()
        self.args_edit.setStyleSheet("font-family: monospace;")
        self.call_status = QLabel()
        self.call_status.setWordWrap(True)
        cl.addRow("Call", self.call_combo)
        cl.addRow("Tool", self.name_edit)
        cl.addRow("Arguments (JSON)", self.args_edit)
        cl.addRow(self.call_status)
        self.stack.addWidget(call_page)
        self.readonly = QLabel()
        self.readonly.setWordWrap(True)
        self.readonly.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.stack.addWidget(self.readonly)
        v.addWidget(self.stack, 1)
        self.text_edit.textChanged.connect(self._text_changed)
        self.name_edit.textChanged.connect(self._call_changed)
        self.args_edit.textChanged.connect(self._call_changed)
        return box

    def _keys(self) -> None:
        def key(seqs: list[str], slot) -> None:
            for s in seqs:
                sc = QShortcut(QKeySequence(s), self)
                # the editor is modal: its keys are the only ones that may act while it is open
                sc.setContext(Qt.ShortcutContext.ApplicationShortcut)
                sc.activated.connect(slot)

        key(["Ctrl+Return", "Ctrl+Enter"], self._accept)
        key(["Alt+Down"], lambda: self.move(1))
        key(["Alt+Up"], lambda: self.move(-1))
        key(["Ctrl+T"], self.toggle_kind)
        key(["Ctrl+N"], self.insert_step)
        key(["Ctrl+Shift+Delete"], self.delete_step)
        key(["Ctrl+Shift+D"], lambda: self.tabs.setCurrentIndex(1 - self.tabs.currentIndex()))

    # --- the list of steps -----------------------------------------------------------------
    def _fill_list(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self.targets = []
        end = self.draft.end()
        muted = QColor(palette_colors(self.palette()).muted)
        for i, s in enumerate(self.draft.steps):
            kind = self.draft.kind(i)
            self.targets.append(Row(i, kind))
            changed = self.draft.is_changed(i)
            mark = "✎ " if changed else ""
            after = end >= 0 and i > end
            text = f"{i:>3} {s.message['role']}: {mark}{cut_at_word(_summary(s.message), 70)}"
            if after:
                text += "  (original only)"
            item = QListWidgetItem(printable(text))
            if s.message["role"] != "assistant" or after:
                item.setForeground(muted)
            if changed:
                f = item.font()
                f.setBold(True)
                item.setFont(f)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def _final_reply(self) -> int:
        """The usual edit: the agent's last reply (or its last step)."""
        agent = [i for i in range(len(self.draft.steps)) if self.draft.is_editable(i)]
        replies = [i for i in agent if self.draft.kind(i) == REPLY and self.draft.text(i)]
        return (replies or agent or [0])[-1]

    def select_step(self, step: int) -> None:
        if 0 <= step < self.list.count():
            self.list.setCurrentRow(step)
            self._select(step)

    def move(self, delta: int) -> None:
        """Next / previous step of the agent."""
        i = (self._current if self._current is not None else -1) + delta
        while 0 <= i < len(self.draft.steps) and not self.draft.is_editable(i):
            i += delta
        if 0 <= i < len(self.draft.steps):
            self.select_step(i)

    def _select(self, row: int) -> None:
        if row < 0 or row >= len(self.draft.steps):
            return
        self._current = row
        self._loading = True
        m = self.draft.steps[row].message
        editable = self.draft.is_editable(row)
        for w in (self.kind_combo, self.insert_button, self.delete_button):
            w.setEnabled(editable)
        self.step_title.setText(f"<b>Step {row}</b> · {escape(m['role'])}")
        if not editable:
            self.stack.setCurrentIndex(2)
            self.readonly.setText(
                f"Step {row} is a {escape(m['role'])} step: only the agent's steps can be "
                "edited. Insert a step after it (Ctrl+N) to add what the agent should have done."
            )
            self.insert_button.setEnabled(True)
        elif self.draft.kind(row) == REPLY:
            self.kind_combo.setCurrentIndex(0)
            self.stack.setCurrentIndex(0)
            self.text_edit.setPlainText(self.draft.text(row))
            self.text_edit.setFocus()
        else:
            self.kind_combo.setCurrentIndex(1)
            self.stack.setCurrentIndex(1)
            self.call_combo.blockSignals(True)
            self.call_combo.clear()
            for ci, c in enumerate(tool_calls_of(m)):
                self.call_combo.addItem(f"{ci + 1}. {c['name']}", ci)
            self.call_combo.setEnabled(self.call_combo.count() > 1)
            self.call_combo.blockSignals(False)
            self._show_call()
            self.args_edit.setFocus()
        self._loading = False
        self._show_context()

    def _show_call(self) -> None:
        if self._current is None:
            return
        ci = max(self.call_combo.currentIndex(), 0)
        calls = tool_calls_of(self.draft.steps[self._current].message)
        if not calls:
            return
        call = calls[ci]
        pending = self.pending.get((self._current, ci))
        args = call["arguments"]
        loading, self._loading = self._loading, True
        self.name_edit.setText(call["name"])
        self.args_edit.setPlainText(
            pending
            if pending is not None
            else args
            if isinstance(args, str)
            else json.dumps(args, indent=2, ensure_ascii=False)
        )
        self._loading = loading
        self._validate(call["name"], self.args_edit.toPlainText())

    # --- edits -----------------------------------------------------------------------------
    def _text_changed(self) -> None:
        if self._loading or self._current is None:
            return
        self.draft.set_text(self._current, self.text_edit.toPlainText())
        self._refresh_row_marks()

    def _call_changed(self) -> None:
        if self._loading or self._current is None:
            return
        ci = max(self.call_combo.currentIndex(), 0)
        name, text = self.name_edit.text().strip(), self.args_edit.toPlainText()
        args, errors = self._validate(name, text)
        if args is None:
            self.pending[(self._current, ci)] = text
        else:
            self.pending.pop((self._current, ci), None)
            self.draft.set_call(self._current, ci, name, args)
        self._refresh_row_marks()

    def _validate(self, name: str, text: str) -> tuple[Any, list[str]]:
        args, errors = check_tool_call(name, text, self.tools)
        self.call_status.setText("✓ valid" if not errors else "\n".join(errors))
        self.call_status.setStyleSheet("color: #1f7a3a;" if not errors else "color: #b42318;")
        return args, errors

    def _kind_changed(self, _index: int) -> None:
        if self._loading or self._current is None:
            return
        self.draft.set_kind(self._current, self.kind_combo.currentData())
        self._fill_list()
        self.select_step(self._current)

    def toggle_kind(self) -> None:
        if self._current is not None and self.draft.is_editable(self._current):
            self.kind_combo.setCurrentIndex(1 - self.kind_combo.currentIndex())

    def insert_step(self) -> None:
        if self._current is None:
            return
        new = self.draft.insert_after(self._current, REPLY)
        # arguments still being typed belong to their step, which moved down by one
        self.pending = {(i + (i >= new), c): v for (i, c), v in self.pending.items()}
        self._fill_list()
        self.select_step(new)

    def delete_step(self) -> None:
        if self._current is None or not self.draft.is_editable(self._current):
            return
        at = self._current
        self.draft.delete(at)
        self.pending = {k: v for k, v in self.pending.items() if k[0] < at}
        self._fill_list()
        self.select_step(max(at - 1, 0))
        self.errors.setText(
            f"Step {at} deleted: the corrected history now ends before it. Insert what the "
            "agent should have done (Ctrl+N) or keep the correction as it is."
        )

    def _refresh_row_marks(self) -> None:
        row = self._current
        self._fill_list()
        self.list.blockSignals(True)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self._show_context()

    # --- the conversation around the step, the diff ------------------------------------------
    def _show_context(self) -> None:
        if self._current is None:
            return
        c = palette_colors(self.palette())
        end = self.draft.end()
        lo = max(0, self._current - CONTEXT_BEFORE)
        hi = min(len(self.draft.steps), self._current + CONTEXT_AFTER + 1)
        out = [f'<div style="color:{c.text}">']
        for i in range(lo, hi):
            m = self.draft.steps[i].message
            color = c.muted if (end >= 0 and i > end) else c.text
            weight = "font-weight:bold;" if i == self._current else ""
            note = " (original only: after the corrected step)" if end >= 0 and i > end else ""
            out.append(
                f'<p style="color:{color};{weight}margin:3px 0">#{i} {escape(m["role"])}{note}: '
                f"{escape(printable(cut_at_word(_summary(m), 400)))}</p>"
            )
        out.append("</div>")
        self.context_view.setHtml("".join(out))

    def _tab_changed(self, index: int) -> None:
        if index == 1:
            self._show_diff()

    def corrected(self) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """The corrected history, or (None, errors)."""
        errors = [f"Step {i}: arguments are not valid JSON yet" for (i, _c) in sorted(self.pending)]
        errors += self.draft.problems()
        if errors:
            return None, errors
        return self.draft.result(), []

    def _show_diff(self) -> None:
        corrected, errors = self.corrected()
        if errors:
            self.diff_view.setHtml(
                "<p>Fix these first:</p><ul>"
                + "".join(f"<li>{escape(e)}</li>" for e in errors)
                + "</ul>"
            )
            return
        blocks = word_diff(self.original, corrected or self.original)
        self.diff_view.setHtml(render_word_diff(blocks, palette_colors(self.palette())))

    def _accept(self) -> None:
        corrected, errors = self.corrected()
        if errors:
            self.errors.setText("\n".join(errors))
            return
        self.result_messages = corrected
        self.accept()
