"""The conversation view: an outline of steps beside safe rich text, find-in-trace with a
match count, and a side pane with the policy (system prompt) and the tool schemas."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QFont, QPalette, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.traces.display import printable
from app.traces.outline import OutlineEntry, outline
from ui.widgets.render import (
    STEP_BADGE,
    Colors,
    ViewState,
    render_policy,
    render_tools,
    render_trace,
)
from ui.widgets.settings import APP, ORG

STEP_WINDOW_INCREMENT = 60
CONTEXT_KEY = "trace/context_pane"
MAX_HIGHLIGHTS = 2000  # matches highlighted at once; the count goes on past it
KIND_ICON_COLOR = {"error": "error", "final": "final", "tool_call": "accent"}


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
        accent=palette.color(QPalette.ColorRole.Highlight).name(),
    )
    if dark:
        c.error_bg, c.error, c.final_bg, c.final = "#3a1f1f", "#ff8a80", "#1d3324", "#7ee2a0"
    return c


def safe_browser() -> TraceBrowser:
    b = TraceBrowser()
    b.setOpenLinks(False)
    b.setOpenExternalLinks(False)
    return b


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


class OutlineModel(QAbstractListModel):
    """The outline's rows, computed when Qt asks (a 1,500-message trace opens at once)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[OutlineEntry] = []
        self.labels: dict[int, Any] = {}
        self.colors = Colors()

    def reset(self, entries: list[OutlineEntry], labels: dict[int, Any], c: Colors) -> None:
        self.beginResetModel()
        self.entries, self.labels, self.colors = entries, labels, c
        self.endResetModel()

    def set_labels(self, labels: dict[int, Any]) -> None:
        self.labels = labels
        if self.entries:
            self.dataChanged.emit(self.index(0), self.index(len(self.entries) - 1))

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # noqa: N802 - Qt API
        return 0 if parent is not None and parent.isValid() else len(self.entries)

    def text(self, row: int) -> str:
        e = self.entries[row]
        text = printable(f"{e.step:>3}  {e.label}")
        lab = self.labels.get(e.step)
        if lab and e.kind in ("assistant", "final", "tool_call"):
            text += f"   [{STEP_BADGE.get(lab['label'], lab['label'])}]"
        return text

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.entries):
            return None
        e = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row())
        if role == Qt.ItemDataRole.ForegroundRole and e.kind in KIND_ICON_COLOR:
            return QColor(getattr(self.colors, KIND_ICON_COLOR[e.kind]))
        if role == Qt.ItemDataRole.FontRole and e.kind in ("user", "system"):
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.UserRole:
            return e.step
        return None


class OutlineView(QListView):
    """The outline: a list view with the few QListWidget-like calls the bench uses."""

    currentRowChanged = Signal(int)  # noqa: N815 - Qt naming

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("outline")
        self.outline_model = OutlineModel(self)
        self.setModel(self.outline_model)
        self.setUniformItemSizes(True)
        self.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.currentRowChanged.emit(cur.row())
        )

    def count(self) -> int:
        return self.outline_model.rowCount()

    def currentRow(self) -> int:  # noqa: N802 - Qt naming
        return self.currentIndex().row()

    def setCurrentRow(self, row: int) -> None:  # noqa: N802 - Qt naming
        self.setCurrentIndex(self.outline_model.index(row))

    def current_text(self) -> str:
        row = self.currentRow()
        return self.outline_model.text(row) if row >= 0 else ""


class TraceView(QWidget):
    found = Signal(bool)
    step_changed = Signal(int)  # the message index the outline points at

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
                f" · <span style='color:#b42318'>{errors} error{'s' * (errors != 1)}</span>"
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
            self.step_changed.emit(self.entries[row].step)

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
        self.found.emit(ok)
        return ok

    def find_previous(self) -> bool:
        ok = self.finder.find_previous()
        self.found.emit(ok)
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
            self._render()
            self.context.show_trace(self.trace, self.colors())
        super().changeEvent(event)
