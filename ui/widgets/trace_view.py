"""The conversation view: an outline of steps beside safe rich text, find-in-trace with a
match count, and a side pane with the policy (system prompt) and the tool schemas."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, QUrl
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.traces.display import printable
from app.traces.outline import OutlineEntry, outline
from ui.widgets.find_bar import FindBar
from ui.widgets.outline_view import OutlineView
from ui.widgets.render import Colors, ViewState, render_trace
from ui.widgets.render_context import render_policy, render_tools
from ui.widgets.settings import APP, ORG

STEP_WINDOW_INCREMENT = 60
CONTEXT_KEY = "trace/context_pane"


def _setting(key: str, default: bool) -> bool:
    value = QSettings(ORG, APP).value(key, default)
    return value in (True, "true", "1", 1)


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


def safe_browser() -> TraceBrowser:
    b = TraceBrowser()
    b.setOpenLinks(False)
    b.setOpenExternalLinks(False)
    return b


class ContextPane(QTabWidget):
    """The policy (system prompt) and the tool schemas, beside the trace; rendered only while
    shown (a closed pane costs nothing when the judge moves through the queue)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("context_pane")
        self.policy = safe_browser()
        self.tools = safe_browser()
        self.addTab(self.policy, "Policy")
        self.addTab(self.tools, "Tools")
        self._pending: tuple[dict[str, Any] | None, Colors] | None = None

    def show_trace(self, trace: dict[str, Any] | None, c: Colors) -> None:
        self._pending = (trace, c)
        if not self.isHidden():
            self._render()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._render()
        super().showEvent(event)

    def _render(self) -> None:
        if self._pending is None:
            return
        trace, c = self._pending
        self._pending = None
        if trace is None:
            self.policy.clear()
            self.tools.clear()
            return
        self.policy.setHtml(render_policy(trace, c))
        self.tools.setHtml(render_tools(trace, c))
        self.setTabText(1, f"Tools ({len(trace.get('tools') or [])})")


class TraceView(QWidget):
    def __init__(self, parent=None, with_context: bool = True):
        super().__init__(parent)
        self.trace: dict[str, Any] | None = None
        self.state = ViewState()
        self.entries: list[OutlineEntry] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.title = QLabel()
        self.title.setObjectName("trace_title")
        bar.addWidget(self.title, 1)
        self.browser = safe_browser()
        self.browser.anchorClicked.connect(self._anchor)
        self.finder = FindBar(self.browser)
        self.find_edit = self.finder.edit
        bar.addWidget(self.finder)
        lay.addLayout(bar)
        self.outline = OutlineView()
        self.outline.setToolTip(
            "Steps (U user, A agent, → tool call, ← result, ✗ error): n / p next / previous "
            "step, t / Shift+T tool call, x / Shift+X error; g / w / f label the agent's step"
        )
        self.outline.currentRowChanged.connect(self._outline_moved)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("trace_splitter")
        self.split.addWidget(self.outline)
        self.split.addWidget(self.browser)
        self.context = ContextPane()
        self.split.addWidget(self.context)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([160, 600, 330])
        # the side pane stays as the judge left it, across traces and sessions
        self.with_context = with_context
        self.context.setVisible(with_context and _setting(CONTEXT_KEY, False))
        lay.addWidget(self.split, 1)

    # --- showing ---------------------------------------------------------------------------
    def show_trace(
        self, trace: dict[str, Any] | None, labels: dict[int, Any] | None = None
    ) -> None:
        self.trace = trace
        self.state = ViewState()
        self.state.labels = dict(labels or {})
        self.finder.reset()
        self._fill_outline()
        self.context.show_trace(trace, self.colors())
        self._render(keep_scroll=False)

    def colors(self) -> Colors:
        return palette_colors(self.palette())

    def set_labels(self, labels: dict[int, Any]) -> None:
        self.state.labels = dict(labels)
        self._label_outline()
        self._render()

    def _fill_outline(self) -> None:
        self.outline.blockSignals(True)
        self.entries = outline(self.trace["messages"]) if self.trace else []
        self.outline.outline_model.reset(self.entries, self.state.labels, self.colors())
        self.outline.blockSignals(False)

    def _label_outline(self) -> None:
        self.outline.outline_model.set_labels(self.state.labels)

    def _render(self, keep_scroll: bool = True) -> None:
        sb = self.browser.verticalScrollBar()
        pos = sb.value()
        if self.trace is None:
            self.title.setText("")
            self.browser.setHtml("<p style='color:gray'>No trace selected.</p>")
            return
        t = self.trace
        errors = sum(1 for e in self.entries if e.kind == "error")
        self.title.setText(
            f"<b>#{t['id']}</b> · {escape(printable(t['source']))} · {t['n_messages']} steps · "
            f"{t['n_tool_calls']} tool calls"
            + (
                f" · <span style='color:{self.colors().error}'>{errors} error{'s' * (errors != 1)}</span>"
                if errors
                else ""
            )
        )
        self.browser.setHtml(render_trace(t, self.state, self.colors()))
        if keep_scroll:
            sb.setValue(pos)
        if self.find_edit.text():
            self.finder.refresh()

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

    # --- the outline and its keys ----------------------------------------------------------
    def current_step(self) -> int | None:
        row = self.outline.currentRow()
        return self.entries[row].step if 0 <= row < len(self.entries) else None

    def _outline_moved(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            self.scroll_to_step(self.entries[row].step)

    def scroll_to_step(self, step: int) -> None:
        if step >= self.state.steps_shown:
            self.state.steps_shown = step + STEP_WINDOW_INCREMENT
            self._render()
        self.browser.scrollToAnchor(f"step-{step}")

    def go_to_step(self, step: int) -> None:
        row = next((r for r, e in enumerate(self.entries) if e.step == step), None)
        if row is not None:
            self.outline.setCurrentRow(row)

    def jump(self, what: str, direction: int) -> bool:
        """Move the outline to the next (1) or previous (-1) step, tool call or error.
        Returns False (and stays) when there is none that way."""
        if not self.entries:
            return False
        row = self.outline.currentRow()
        here = self.entries[row].step if row >= 0 else -1
        rows = range(row + 1, len(self.entries)) if direction > 0 else range(row - 1, -1, -1)
        if row < 0 and direction < 0:
            return False
        for r in rows:
            e = self.entries[r]
            if (
                (what == "step" and e.step != here)
                or (what == "tool" and e.kind == "tool_call")
                or (what == "error" and e.kind == "error")
            ):
                if what == "step" and direction < 0:  # land on the first entry of that step
                    while r > 0 and self.entries[r - 1].step == e.step:
                        r -= 1
                self.outline.setCurrentRow(r)
                return True
        return False

    # --- find ------------------------------------------------------------------------------
    def find_next(self) -> bool:
        ok = self.finder.find_next()
        return ok

    def find_previous(self) -> bool:
        ok = self.finder.find_previous()
        return ok

    def toggle_context(self) -> None:
        if not self.with_context:
            return
        show = self.context.isHidden()
        self.context.setVisible(show)
        QSettings(ORG, APP).setValue(CONTEXT_KEY, show)

    def plain_text(self) -> str:
        return self.browser.document().toPlainText()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.PaletteChange and self.trace is not None:
            self._fill_outline()  # its colours come from the palette too
            self._render()
            self.context.show_trace(self.trace, self.colors())
        super().changeEvent(event)
