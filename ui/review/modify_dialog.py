"""The Modify editor: correct the agent's steps and final answer, with a diff."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.review.corrections import apply_edits, check_tool_call, edit_targets, unified_diff
from ui.widgets.render import render_diff
from ui.widgets.trace_view import TraceBrowser, palette_colors

# ---------------------------------------------------------------------------------------------
# Judge profile


# ---------------------------------------------------------------------------------------------
# Modify


class ModifyDialog(QDialog):
    """Edit assistant texts and tool calls in place; JSON and schema checked; diff shown."""

    def __init__(self, trace: dict[str, Any], corrected: list[dict[str, Any]] | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Modify trace #{trace['id']}")
        self.resize(1000, 680)
        self.trace = trace
        self.original = trace["messages"]
        base = corrected if corrected is not None else self.original
        self.targets = edit_targets(self.original)
        self.values: dict[tuple[int, int], Any] = {}
        for t in self.targets:
            part = base[t.message_index]["parts"][t.part_index]
            if t.kind == "text":
                self.values[(t.message_index, t.part_index)] = part["text"]
            else:
                self.values[(t.message_index, t.part_index)] = {
                    "name": part["name"],
                    "arguments_text": json.dumps(part["arguments"], indent=2, ensure_ascii=False)
                    if not isinstance(part["arguments"], str)
                    else part["arguments"],
                }
        lay = QVBoxLayout(self)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)

        edit = QSplitter()
        self.list = QListWidget()
        for t in self.targets:
            QListWidgetItem(t.label, self.list)
        edit.addWidget(self.list)
        self.stack = QStackedWidget()
        self.text_edit = QPlainTextEdit()
        text_page = QWidget()
        tl = QVBoxLayout(text_page)
        tl.addWidget(QLabel("Assistant text"))
        tl.addWidget(self.text_edit)
        self.stack.addWidget(text_page)
        call_page = QWidget()
        cl = QFormLayout(call_page)
        self.name_edit = QLineEdit()
        self.args_edit = QPlainTextEdit()
        self.args_edit.setStyleSheet("font-family: monospace;")
        self.call_status = QLabel()
        self.call_status.setWordWrap(True)
        cl.addRow("Tool", self.name_edit)
        cl.addRow("Arguments (JSON)", self.args_edit)
        cl.addRow(self.call_status)
        self.stack.addWidget(call_page)
        edit.addWidget(self.stack)
        edit.setSizes([280, 720])
        self.tabs.addTab(edit, "Edit")
        self.diff_view = TraceBrowser()
        self.tabs.addTab(self.diff_view, "Diff")
        self.tabs.currentChanged.connect(self._tab_changed)

        self.errors = QLabel()
        self.errors.setStyleSheet("color: #b42318;")
        self.errors.setWordWrap(True)
        lay.addWidget(self.errors)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Keep correction")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

        self._current: tuple[int, int] | None = None
        self.list.currentRowChanged.connect(self._select)
        self.text_edit.textChanged.connect(self._store)
        self.name_edit.textChanged.connect(self._store)
        self.args_edit.textChanged.connect(self._store)
        if self.targets:
            final = max(
                range(len(self.targets)),
                key=lambda i: (self.targets[i].kind == "text", self.targets[i].message_index),
            )
            self.list.setCurrentRow(final)  # the final answer is the usual edit

    def _tab_changed(self, index: int) -> None:
        if index == 1:
            self._show_diff()

    def _select(self, row: int) -> None:
        self._current = None
        if row < 0:
            return
        t = self.targets[row]
        key = (t.message_index, t.part_index)
        if t.kind == "text":
            self.stack.setCurrentIndex(0)
            self.text_edit.setPlainText(self.values[key])
            self.text_edit.setFocus()
        else:
            self.stack.setCurrentIndex(1)
            self.name_edit.setText(self.values[key]["name"])
            self.args_edit.setPlainText(self.values[key]["arguments_text"])
            self.args_edit.setFocus()
        self._current = key
        self._validate_current()

    def _store(self) -> None:
        if self._current is None:
            return
        if isinstance(self.values[self._current], str):
            self.values[self._current] = self.text_edit.toPlainText()
        else:
            self.values[self._current] = {
                "name": self.name_edit.text(),
                "arguments_text": self.args_edit.toPlainText(),
            }
            self._validate_current()

    def _validate_current(self) -> None:
        if self._current is None or isinstance(self.values[self._current], str):
            return
        v = self.values[self._current]
        _, errors = check_tool_call(v["name"], v["arguments_text"], self.trace.get("tools") or [])
        self.call_status.setText("✓ valid" if not errors else "\n".join(errors))
        self.call_status.setStyleSheet("color: #1f7a3a;" if not errors else "color: #b42318;")

    def corrected(self) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """The corrected trajectory, or (None, errors)."""
        edits: dict[tuple[int, int], Any] = {}
        errors: list[str] = []
        for t in self.targets:
            key = (t.message_index, t.part_index)
            v = self.values[key]
            if t.kind == "text":
                edits[key] = v
            else:
                args, errs = check_tool_call(
                    v["name"], v["arguments_text"], self.trace.get("tools") or []
                )
                errors += [f"{t.label}: {e}" for e in errs]
                edits[key] = {"name": v["name"].strip(), "arguments": args}
        if errors:
            return None, errors
        return apply_edits(self.original, edits), []

    def _show_diff(self) -> None:
        corrected, errors = self.corrected()
        if corrected is None:
            self.diff_view.setHtml(
                "<p>Fix these first:</p><ul>"
                + "".join(f"<li>{_esc(e)}</li>" for e in errors)
                + "</ul>"
            )
            return
        self.diff_view.setHtml(
            render_diff(unified_diff(self.original, corrected), palette_colors(self.palette()))
        )

    def _accept(self) -> None:
        corrected, errors = self.corrected()
        if corrected is None:
            self.errors.setText("\n".join(errors))
            return
        self.result_messages = corrected
        self.accept()


def _esc(s: str) -> str:
    from html import escape

    return escape(s)
