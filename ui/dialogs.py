"""Dialogs: judge profile, Modify (edit + diff), import with progress, keyboard help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.corrections import apply_edits, check_tool_call, edit_targets, unified_diff
from app.db import Workspace
from ui.render import render_diff
from ui.trace_view import TraceBrowser, palette_colors

# ---------------------------------------------------------------------------------------------
# Judge profile


class ProfileDialog(QDialog):
    """Pick an existing judge profile or create one (name, role)."""

    def __init__(self, names: list[tuple[str, str]], last: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Chambers — who is judging?")
        lay = QFormLayout(self)
        self.combo = QComboBox()
        self.combo.setEditable(True)
        for name, role in names:
            self.combo.addItem(f"{name}", (name, role))
        if last:
            idx = self.combo.findText(last)
            if idx >= 0:
                self.combo.setCurrentIndex(idx)
        self.role = QComboBox()
        self.role.addItems(["judge", "lead"])
        self.combo.currentIndexChanged.connect(self._sync_role)
        self._sync_role()
        lay.addRow("Judge profile", self.combo)
        lay.addRow("Role (new profiles)", self.role)
        hint = QLabel("Type a new name to create a profile.")
        hint.setStyleSheet("color: palette(placeholder-text);")
        lay.addRow(hint)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)

    def _sync_role(self) -> None:
        data = self.combo.currentData()
        if data:
            self.role.setCurrentText(data[1])

    def choice(self) -> tuple[str, str]:
        return self.combo.currentText().strip(), self.role.currentText()


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


# ---------------------------------------------------------------------------------------------
# Import


class ImportWorker(QObject):
    progress = Signal(str, int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, ws_url: str, paths: list[str]):
        super().__init__()
        self.ws_url = ws_url
        self.paths = paths
        self.cancelled = False

    def run(self) -> None:
        from app.db import open_workspace
        from app.errors import ChambersError
        from app.ingest import import_paths

        try:
            ws = open_workspace(self.ws_url)  # a connection of this thread's own
            try:
                report = import_paths(
                    ws,
                    [Path(p) for p in self.paths],
                    progress=lambda f, r, n: self.progress.emit(f, r, n),
                    should_cancel=lambda: self.cancelled,
                )
            finally:
                ws.close()
            self.finished.emit(report)
        except ChambersError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class ImportDialog(QDialog):
    """Runs an import off the UI thread, can be cancelled, lists errors at the end."""

    done = Signal(object)

    def __init__(self, ws: Workspace, paths: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import traces")
        self.resize(720, 420)
        lay = QVBoxLayout(self)
        self.label = QLabel(f"Importing {len(paths)} path(s)…")
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        lay.addWidget(self.bar)
        self.errors = QTextBrowser()
        self.errors.setVisible(False)
        lay.addWidget(self.errors, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        row.addWidget(self.cancel_button)
        self.close_button = QPushButton("Close")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self.accept)
        row.addWidget(self.close_button)
        lay.addLayout(row)
        self.report = None
        self.thread = QThread(self)
        self.worker = ImportWorker(ws.url, paths)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.thread.start()

    def _progress(self, file: str, records: int, imported: int) -> None:
        self.label.setText(
            f"{Path(file).name}: {records:,} records read · {imported:,} traces imported"
        )

    def _cancel(self) -> None:
        self.worker.cancelled = True
        self.label.setText("Cancelling after the current batch…")
        self.cancel_button.setEnabled(False)

    def _stop_thread(self) -> None:
        self.thread.quit()
        self.thread.wait()
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self.close_button.setDefault(True)

    def _finished(self, report) -> None:
        self._stop_thread()
        self.report = report
        verb = "Cancelled" if report.cancelled else "Done"
        self.label.setText(
            f"{verb}: {report.imported:,} imported, {report.duplicates:,} duplicates, {len(report.errors):,} errors."
        )
        if report.errors:
            self.errors.setVisible(True)
            self.errors.setPlainText(
                "\n".join(
                    f"{e['file']}: {e['record'] + ': ' if e['record'] else ''}{e['message']}"
                    for e in report.errors
                )
            )
        self.done.emit(report)

    def _failed(self, message: str) -> None:
        self._stop_thread()
        self.label.setText(f"Import failed: {message}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.thread.isRunning():
            self.worker.cancelled = True
            self.thread.quit()
            self.thread.wait()
        super().closeEvent(event)


# ---------------------------------------------------------------------------------------------
# Keyboard help

SHORTCUTS = [
    ("j / k", "next / previous trace"),
    ("a / m / r", "approve / modify (opens the editor) / reject"),
    ("↓ / ↑  or  ] / [", "next / previous criterion"),
    (
        "0–9",
        "set the current criterion (binary: 1 pass, 0 fail; ordinal: the level; nominal: the n-th category) and move on",
    ),
    ("e", "write the rationale (Esc returns to the trace)"),
    ("Ctrl+Enter", "submit the review"),
    ("Ctrl+Z", "undo the last submission (it becomes your draft again)"),
    ("/", "search the queue"),
    ("Ctrl+F", "find in the trace"),
    ("Ctrl+I", "import trace files"),
    ("?", "this help"),
]


class ShortcutsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QFormLayout(self)
        for keys, what in SHORTCUTS:
            k = QLabel(f"<b>{keys}</b>")
            w = QLabel(what)
            w.setWordWrap(True)
            lay.addRow(k, w)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        close.accepted.connect(self.accept)
        lay.addRow(close)
        self.setMinimumWidth(560)
