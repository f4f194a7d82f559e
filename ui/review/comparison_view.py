"""The blind A/B judge view: the prompt rendered like the review bench, the two outputs side by
side as A and B. Nothing on screen names a model, a run or a score: the sides were drawn per
item and per judge when the round was made, and only the database knows which is which.

Keys: 1 = A better, 2 = B better, 3 = tie; Ctrl+Enter submits and moves on; J/K next/previous.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select

from app.traces.model import count_tool_calls
from app.training import comparison as cmp
from app.training.toolcalls import from_chat
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import ComparisonVerdict, Criterion, Judge, RubricVersion
from ui.widgets.render import ViewState, render_trace
from ui.widgets.trace_view import TraceBrowser, TraceView, palette_colors

CHOICE_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie"}


class OutputPane(QWidget):
    """One side: its letter and the output, rendered like a trace step."""

    def __init__(self, letter: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel(f"<b>Output {letter}</b>")
        lay.addWidget(self.header)
        self.browser = TraceBrowser()
        self.browser.setOpenLinks(False)
        lay.addWidget(self.browser, 1)

    def show_message(self, message: dict[str, Any]) -> None:
        html = render_trace(
            {"messages": [message], "final_output": None},
            ViewState(),
            palette_colors(self.palette()),
        )
        self.browser.setHtml(html)


class ComparisonDialog(QDialog):
    submitted = Signal(int)  # verdict id

    def __init__(self, ws: Workspace, judge: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.judge = judge
        self.queue: list[int] = []
        self.index = 0
        self.choice: str | None = None
        self.setWindowTitle("Blind comparison")
        self.resize(1400, 900)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Round:"))
        self.rounds = QComboBox()
        self.rounds.currentIndexChanged.connect(self._load_round)
        top.addWidget(self.rounds, 1)
        self.progress = QLabel()
        top.addWidget(self.progress)
        lay.addLayout(top)
        split = QSplitter(Qt.Orientation.Vertical)
        self.prompt = TraceView()
        split.addWidget(self.prompt)
        sides = QSplitter(Qt.Orientation.Horizontal)
        self.pane_a, self.pane_b = OutputPane("A"), OutputPane("B")
        sides.addWidget(self.pane_a)
        sides.addWidget(self.pane_b)
        split.addWidget(sides)
        split.setSizes([380, 420])
        lay.addWidget(split, 1)
        lay.addWidget(self._verdict_box())
        self._shortcuts()
        self.reload()

    # --- layout ------------------------------------------------------------------------
    def _verdict_box(self) -> QGroupBox:
        box = QGroupBox("Your verdict")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        for key, (choice, label) in zip("123", CHOICE_LABELS.items(), strict=True):
            b = QPushButton(f"{label} ({key})")
            b.setCheckable(True)
            b.setAutoDefault(False)  # Enter never clicks a verdict by accident
            b.clicked.connect(lambda _=False, c=choice: self.choose(c))
            self.group.addButton(b)
            self.buttons[choice] = b
            row.addWidget(b)
        self.submit_button = QPushButton("Submit (Ctrl+Enter)")
        self.submit_button.clicked.connect(self.submit)
        self.submit_button.setAutoDefault(False)
        row.addStretch(1)
        row.addWidget(self.submit_button)
        v.addLayout(row)
        self.criteria_form = QFormLayout()
        v.addLayout(self.criteria_form)
        self.criteria: dict[str, QComboBox] = {}
        self.rationale = QLineEdit()
        self.rationale.setPlaceholderText("Rationale (optional)")
        v.addWidget(self.rationale)
        self.message = QLabel()
        v.addWidget(self.message)
        return box

    def _shortcuts(self) -> None:
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self, self.submit)
        QShortcut(QKeySequence("J"), self, lambda: self.step(1))
        QShortcut(QKeySequence("K"), self, lambda: self.step(-1))

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Digits reach here only when no text field took them (typing a rationale is safe)."""
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if ctrl and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
            return
        choice = {Qt.Key.Key_1: "A", Qt.Key.Key_2: "B", Qt.Key.Key_3: "tie"}.get(event.key())
        if choice and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.choose(choice)
            return
        super().keyPressEvent(event)

    # --- data --------------------------------------------------------------------------
    def reload(self) -> None:
        with self.ws.session() as s:
            rounds = [(r.id, r.name) for r in cmp.rounds_for(s, self.judge.id)]
        self.rounds.blockSignals(True)
        self.rounds.clear()
        for rid, name in rounds:
            self.rounds.addItem(name, rid)
        self.rounds.blockSignals(False)
        self._load_round()

    def _load_round(self) -> None:
        rid = self.rounds.currentData()
        self.queue = []
        if rid is not None:
            with self.ws.session() as s:
                q = cmp.queue(s, rid, self.judge.id)
                self.queue = [v.id for v in q]
                first_open = next((i for i, v in enumerate(q) if v.choice is None), 0)
                self._build_criteria(s, rid)
            self.index = first_open
        self.show_current()

    def _build_criteria(self, s, round_id: int) -> None:
        """Optional per-criterion choices: the rubric the candidate's data was judged under."""
        while self.criteria_form.rowCount():
            self.criteria_form.removeRow(0)
        self.criteria = {}
        vids = cmp.rubric_versions_of(s, round_id)
        if not vids:
            return
        version = s.get(RubricVersion, vids[-1])
        crits = s.scalars(
            select(Criterion)
            .where(Criterion.rubric_version_id == version.id)
            .order_by(Criterion.position)
        )
        for c in crits:
            box = QComboBox()
            box.addItem("—", None)
            for choice, label in CHOICE_LABELS.items():
                box.addItem(label, choice)
            self.criteria[c.key] = box
            self.criteria_form.addRow(f"{c.title}:", box)

    def show_current(self) -> None:
        if not self.queue:
            self.progress.setText("No comparison assigned to you.")
            self.prompt.show_trace(None)
            self.pane_a.browser.clear()
            self.pane_b.browser.clear()
            return
        with self.ws.session() as s:
            v = s.get(ComparisonVerdict, self.queue[self.index])
            shown = cmp.blind_item(s, v)
            done = cmp.judged_count(s, v.round_id, self.judge.id)
            prev = (v.choice, dict(v.criteria), v.rationale)
        messages = from_chat(shown["prompt"])
        task = next(
            (m["parts"][0]["text"] for m in messages if m["role"] == "user" and m["parts"]), ""
        )
        self.prompt.show_trace(
            {
                "id": self.index + 1,
                "source": "prompt",
                "n_messages": len(messages),
                "n_tool_calls": count_tool_calls(messages),
                "task": task,
                "messages": messages,
                "final_output": None,
            }
        )
        self.pane_a.show_message(shown["A"])
        self.pane_b.show_message(shown["B"])
        self.progress.setText(f"item {self.index + 1} of {len(self.queue)} · {done} judged")
        self.choose(prev[0])
        for name, box in self.criteria.items():
            box.setCurrentIndex(max(box.findData(prev[1].get(name)), 0))
        self.rationale.setText(prev[2])
        self.message.clear()

    def choose(self, choice: str | None) -> None:
        self.choice = choice
        self.group.setExclusive(False)
        for c, b in self.buttons.items():
            b.setChecked(c == choice)
        self.group.setExclusive(True)

    def step(self, d: int) -> None:
        if self.queue:
            self.index = max(0, min(len(self.queue) - 1, self.index + d))
            self.show_current()

    def submit(self) -> bool:
        if not self.queue:
            return False
        if self.choice is None:
            self.message.setText("Choose A, B or tie first (1, 2 or 3).")
            return False
        crits = {n: b.currentData() for n, b in self.criteria.items() if b.currentData()}
        try:
            with self.ws.session() as s:
                v = s.get(ComparisonVerdict, self.queue[self.index])
                cmp.submit(s, v, self.choice, crits, self.rationale.text().strip())
                vid = v.id
        except ChambersError as exc:
            self.message.setText(str(exc))
            return False
        self.submitted.emit(vid)
        if self.index < len(self.queue) - 1:
            self.index += 1
        self.show_current()
        return True
