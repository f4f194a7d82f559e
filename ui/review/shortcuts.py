"""The keyboard shortcuts sheet (`?`)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
)

# ---------------------------------------------------------------------------------------------
# Judge profile


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
