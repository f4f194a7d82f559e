"""Find in trace: live match count, "not found" in red, every match highlighted."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QTextEdit,
    QWidget,
)

MAX_HIGHLIGHTS = 2000  # matches highlighted at once; the count goes on past it


class FindBar(QWidget):
    """Find in trace: live match count, "not found" in red, every match highlighted."""

    def __init__(self, browser: QTextBrowser, parent=None):
        super().__init__(parent)
        self.browser = browser
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setObjectName("find_in_trace")
        self.edit.setPlaceholderText("Find in trace (Ctrl+F)")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMaximumWidth(240)
        self.edit.textChanged.connect(self.refresh)
        self.edit.returnPressed.connect(self.find_next)
        self.edit.installEventFilter(self)
        lay.addWidget(self.edit)
        self.count = QLabel()
        self.count.setObjectName("find_count")
        self.count.setMinimumWidth(80)
        lay.addWidget(self.count)
        self.prev_button = QPushButton("↑")
        self.prev_button.setToolTip("Previous match (Shift+Enter, Shift+F3)")
        self.prev_button.clicked.connect(self.find_previous)
        self.next_button = QPushButton("↓")
        self.next_button.setToolTip("Next match (Enter, F3)")
        self.next_button.clicked.connect(self.find_next)
        for b in (self.prev_button, self.next_button):
            b.setMaximumWidth(30)
            lay.addWidget(b)
        self.matches = 0
        self.position = 0  # 1-based index of the current match, 0 before the first jump

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if (
            obj is self.edit
            and event.type() == QEvent.Type.KeyPress
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.find_previous()
            return True
        return super().eventFilter(obj, event)

    def reset(self) -> None:
        """A new trace: the old search means nothing there."""
        self.edit.blockSignals(True)
        self.edit.clear()
        self.edit.blockSignals(False)
        self.refresh()

    def _cursors(self) -> list[QTextCursor]:
        needle = self.edit.text()
        doc = self.browser.document()
        found: list[QTextCursor] = []
        if not needle:
            return found
        cursor = doc.find(needle, 0)
        while not cursor.isNull():
            found.append(cursor)
            cursor = doc.find(needle, cursor)
        return found

    def refresh(self) -> None:
        """Recount and re-highlight (after typing, or after the trace was re-rendered)."""
        found = self._cursors()
        self.matches = len(found)
        self.position = 0
        sels = []
        for cur in found[:MAX_HIGHLIGHTS]:
            sel = QTextEdit.ExtraSelection()
            sel.cursor = cur
            sel.format.setBackground(QColor("#ffe58f"))
            sel.format.setForeground(QColor("#1d1f23"))
            sels.append(sel)
        self.browser.setExtraSelections(sels)
        self._show_count()

    def _show_count(self) -> None:
        if not self.edit.text():
            self.count.setText("")
            self.edit.setStyleSheet("")
        elif self.matches == 0:
            self.count.setText("not found")
            self.count.setStyleSheet("color: #b42318; font-weight: bold;")
            self.edit.setStyleSheet("background: #fde8e8; color: #3b0d0c;")
        else:
            where = f"{self.position} of " if self.position else ""
            self.count.setText(f"{where}{self.matches} match{'es' if self.matches != 1 else ''}")
            self.count.setStyleSheet("")
            self.edit.setStyleSheet("")

    def _go(self, backward: bool) -> bool:
        needle = self.edit.text()
        if not needle or self.matches == 0:
            self._show_count()
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        ok = self.browser.find(needle, flags)
        if not ok:  # wrap around
            cursor = self.browser.textCursor()
            cursor.movePosition(
                QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start
            )
            self.browser.setTextCursor(cursor)
            ok = self.browser.find(needle, flags)
        if ok:
            start = self.browser.textCursor().selectionStart()
            self.position = 1 + sum(1 for c in self._cursors() if c.selectionStart() < start)
        self._show_count()
        return ok

    def find_next(self) -> bool:
        return self._go(backward=False)

    def find_previous(self) -> bool:
        return self._go(backward=True)
