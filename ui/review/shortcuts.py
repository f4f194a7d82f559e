"""The keyboard shortcuts sheet (`?`)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
)

# ---------------------------------------------------------------------------------------------
# Keyboard help

SHORTCUTS = [
    ("j / k", "next / previous trace"),
    ("a / m / r", "approve / modify (opens the editor) / reject"),
    ("↓ / ↑  or  ] / [", "next / previous criterion"),
    (
        "0–9",
        "set the criterion (binary: 1 pass, 0 fail; ordinal: the level; nominal: the n-th category), move on",
    ),
    ("e", "write the rationale (Esc returns to the trace)"),
    ("Ctrl+Enter", "submit the review"),
    ("Ctrl+Z", "undo the last submission (it becomes your draft again)"),
    ("n / p", "next / previous step of the trace (the outline follows)"),
    ("t / Shift+T", "next / previous tool call"),
    ("x / Shift+X", "next / previous error result"),
    ("s", "show / hide the policy and tool schemas beside the trace"),
    (
        "g / w / f",
        "mark the outline's agent step good / wrong (reason) / the first error; again to clear",
    ),
    ("Shift+M", "modify the outline's agent step in the editor"),
    ("Shift+W", "write the answer the agent should have given"),
    ("/", "search the queue"),
    ("Ctrl+F", "find in the trace"),
    ("Enter / Shift+Enter, F3 / Shift+F3", "next / previous match"),
    ("Ctrl+I", "import trace files"),
    ("?", "this help"),
]


EDITOR_SHORTCUTS = [  # the Modify editor's own keys (ui.review.modify_dialog)
    ("Ctrl+Enter", "keep the correction and close the editor"),
    ("Esc", "close the editor without keeping changes"),
    ("Alt+↓ / Alt+↑", "next / previous step of the agent"),
    ("Ctrl+T", "turn the step into a tool call or a reply"),
    ("Ctrl+N", "insert a step of the agent after this one"),
    ("Ctrl+Shift+Delete", "delete this step (and the results of its calls)"),
    ("Ctrl+Shift+D", "show the word diff / back to editing"),
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
        lay.addRow(QLabel("<b>In the Modify editor</b>"))
        for keys, what in EDITOR_SHORTCUTS:
            w = QLabel(what)
            w.setWordWrap(True)
            lay.addRow(QLabel(f"<b>{keys}</b>"), w)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        close.accepted.connect(self.accept)
        lay.addRow(close)
        self.setMinimumWidth(860)  # rows on one line: wrapped labels get clipped in a form
