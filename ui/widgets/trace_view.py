"""The conversation view: safe rich text, collapsible parts, find-in-trace."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.render import Colors, ViewState, render_trace

STEP_WINDOW_INCREMENT = 60


class TraceBrowser(QTextBrowser):
    """A QTextBrowser that never loads anything: no images, no remote resources."""

    def loadResource(self, _type: int, _name: QUrl) -> Any:  # noqa: N802 - Qt API
        return None


def palette_colors(palette: QPalette) -> Colors:
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    c = Colors(
        text=palette.color(QPalette.ColorRole.Text).name(),
        muted=palette.color(QPalette.ColorRole.PlaceholderText).name(),
        base=palette.color(QPalette.ColorRole.Base).name(),
        card=palette.color(QPalette.ColorRole.AlternateBase).name(),
        border=palette.color(QPalette.ColorRole.Mid).name(),
        accent=palette.color(QPalette.ColorRole.Link).name(),  # text: 4.5:1 on both schemes
    )
    if dark:
        c.error_bg, c.error, c.final_bg, c.final = "#3a1f1f", "#ff8a80", "#1d3324", "#7ee2a0"
        c.mark = "#6b5300"  # find highlights: light text stays readable
    return c


class TraceView(QWidget):
    found = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.trace: dict[str, Any] | None = None
        self.state = ViewState()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.title = QLabel()
        self.title.setWordWrap(True)
        bar.addWidget(self.title, 1)
        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText("Find in trace (Ctrl+F)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.setMaximumWidth(260)
        self.find_edit.returnPressed.connect(self.find_next)
        bar.addWidget(self.find_edit)
        self.find_button = QPushButton("Next")
        self.find_button.clicked.connect(self.find_next)
        bar.addWidget(self.find_button)
        lay.addLayout(bar)
        self.browser = TraceBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setOpenExternalLinks(False)
        self.browser.anchorClicked.connect(self._anchor)
        lay.addWidget(self.browser, 1)

    def show_trace(self, trace: dict[str, Any] | None) -> None:
        self.trace = trace
        self.state = ViewState()
        self._render(keep_scroll=False)

    def _render(self, keep_scroll: bool = True) -> None:
        sb = self.browser.verticalScrollBar()
        pos = sb.value()
        if self.trace is None:
            self.title.setText("")
            self.browser.setHtml("<p style='color:gray'>No trace selected.</p>")
            return
        t = self.trace
        task = (t.get("task") or "").replace("\n", " ")
        from html import escape

        self.title.setText(
            f"<b>#{t['id']}</b> · {escape(t['source'])} · {t['n_messages']} steps · {escape(task[:120])}"
        )
        self.browser.setHtml(render_trace(t, self.state, palette_colors(self.palette())))
        if keep_scroll:
            sb.setValue(pos)

    def _anchor(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("toggle:"):
            key = text[len("toggle:") :]
            self.state.expanded ^= {key}
            self._render()
        elif text == "more:steps":
            self.state.steps_shown += STEP_WINDOW_INCREMENT
            self._render()
        elif text.startswith("more:"):
            self.state.show_more(text[len("more:") :])
            self._render()
        elif text.startswith("less:"):
            self.state.show_less(text[len("less:") :])
            self._render()

    def find_next(self) -> bool:
        needle = self.find_edit.text()
        if not needle:
            return False
        ok = self.browser.find(needle)
        if not ok:  # wrap around
            cursor = self.browser.textCursor()
            cursor.movePosition(cursor.MoveOperation.Start)
            self.browser.setTextCursor(cursor)
            ok = self.browser.find(needle)
        self.found.emit(ok)
        return ok

    def plain_text(self) -> str:
        return self.browser.document().toPlainText()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.PaletteChange and self.trace is not None:
            self._render()
        super().changeEvent(event)
