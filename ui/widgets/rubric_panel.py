"""The rubric panel: one control per criterion that fits its scale, the decision, the
rationale and Submit. Keyboard: digits set the current criterion and move on."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.review.rubrics import CriterionSpec
from ui.widgets.render import esc

DECISION_KEYS = {"approve": "A", "modify": "M", "reject": "R"}
DECISION_COLORS = {"approve": "#1f7a3a", "modify": "#b26a00", "reject": "#b42318"}


class CriterionRow(QFrame):
    changed = Signal()

    def __init__(self, index: int, spec: CriterionSpec, parent=None):
        super().__init__(parent)
        self.spec = spec
        self.setObjectName("criterion")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        required = ", ".join(spec.required_for) if spec.required_for else "never"
        title = QLabel(
            f"<b>{index + 1}. {esc(spec.title)}</b> <span style='color:gray'>({spec.scale}; weight {spec.weight:g}; required for {required})</span>"
        )
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        lay.addWidget(title)
        if spec.description:
            desc = QLabel(spec.description)
            desc.setWordWrap(True)
            desc.setStyleSheet("color: palette(placeholder-text);")
            lay.addWidget(desc)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.combo: QComboBox | None = None
        row = QGridLayout()
        row.setHorizontalSpacing(12)
        row.setVerticalSpacing(2)
        if spec.scale == "nominal":
            self.combo = QComboBox()
            self.combo.addItem("—", None)
            for n, lv in enumerate(spec.levels, start=1):
                self.combo.addItem(f"{n}  {lv.get('label', lv['value'])}", lv["value"])
            self.combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
            row.addWidget(self.combo, 0, 0)
        else:
            options = (
                [(1, "Pass"), (0, "Fail")]
                if spec.scale == "binary"
                else [(lv["value"], lv.get("label", "")) for lv in spec.levels]
            )
            per_row = 2 if spec.scale == "binary" else 3
            for n, (value, label) in enumerate(options):
                key = value if spec.scale != "binary" else value
                btn = QRadioButton(f"{key} {label}".strip())
                btn.setFocusPolicy(Qt.FocusPolicy.TabFocus)
                anchor = next(
                    (lv.get("anchor") for lv in spec.levels if lv.get("value") == value), None
                )
                btn.setToolTip(
                    f"Press {key} when this criterion is selected"
                    + (f"\n{anchor}" if anchor else "")
                )
                self.group.addButton(btn)
                btn.setProperty("value", value)
                row.addWidget(btn, n // per_row, n % per_row)
            self.group.buttonToggled.connect(self._toggled)
            row.setColumnStretch(per_row, 1)
        lay.addLayout(row)
        self.set_current(False)

    def _toggled(self, _button, on: bool) -> None:
        if on:
            self.changed.emit()

    def value(self) -> Any:
        if self.combo is not None:
            return self.combo.currentData()
        checked = self.group.checkedButton()
        return None if checked is None else checked.property("value")

    def set_value(self, value: Any) -> None:
        if self.combo is not None:
            idx = self.combo.findData(value) if value is not None else 0
            self.combo.setCurrentIndex(max(idx, 0))
            return
        self.group.setExclusive(False)
        for b in self.group.buttons():
            b.setChecked(value is not None and b.property("value") == value)
        self.group.setExclusive(True)

    def set_by_digit(self, digit: int) -> bool:
        """Digits: binary 1 pass / 0 fail; ordinal the level; nominal the n-th category."""
        if self.combo is not None:
            if 1 <= digit < self.combo.count():
                self.combo.setCurrentIndex(digit)
                return True
            return False
        for b in self.group.buttons():
            if b.property("value") == digit:
                b.setChecked(True)
                return True
        return False

    def set_current(self, current: bool) -> None:
        self.setStyleSheet(
            "QFrame#criterion { border: 2px solid palette(highlight); border-radius: 4px; }"
            if current
            else "QFrame#criterion { border: 1px solid palette(mid); border-radius: 4px; }"
        )


class RubricPanel(QWidget):
    """Emits `changed` on every edit (the window saves a draft), `submit_requested` on Submit."""

    changed = Signal()
    submit_requested = Signal()
    decision_changed = Signal(str)
    modify_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[CriterionRow] = []
        self.current = 0
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel()
        self.header.setWordWrap(True)
        outer.addWidget(self.header)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body = QWidget()
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        self.scroll.setWidget(self.body)
        outer.addWidget(self.scroll, 1)

        dec = QHBoxLayout()
        self.decision_group = QButtonGroup(self)
        self.decision_buttons: dict[str, QPushButton] = {}
        for name, key in DECISION_KEYS.items():
            b = QPushButton(f"{name.capitalize()}  ({key.lower()})")
            b.setCheckable(True)
            b.setToolTip(f"{name.capitalize()} this trace — shortcut {key.lower()}")
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            b.setObjectName(f"decision_{name}")
            b.setStyleSheet(
                f"QPushButton:checked {{ background: {DECISION_COLORS[name]}; color: white; font-weight: bold; }}"
            )
            self.decision_group.addButton(b)
            self.decision_buttons[name] = b
            dec.addWidget(b)
        self.decision_group.setExclusive(True)
        self.decision_group.buttonClicked.connect(self._decision_clicked)
        outer.addLayout(dec)

        self.correction_label = QLabel()
        self.correction_label.setWordWrap(True)
        self.correction_label.setTextFormat(Qt.TextFormat.RichText)
        self.correction_label.linkActivated.connect(lambda _l: self.modify_requested.emit())
        outer.addWidget(self.correction_label)

        self.rationale = QPlainTextEdit()
        self.rationale.setPlaceholderText(
            "Rationale (required for Reject). Esc returns to the trace."
        )
        self.rationale.setMaximumHeight(110)
        self.rationale.textChanged.connect(self.changed.emit)
        outer.addWidget(self.rationale)

        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b42318;")
        outer.addWidget(self.problems)

        bottom = QHBoxLayout()
        self.saved_label = QLabel()
        self.saved_label.setStyleSheet("color: palette(placeholder-text);")
        bottom.addWidget(self.saved_label, 1)
        self.submit_button = QPushButton("Submit  (Ctrl+Enter)")
        self.submit_button.setDefault(True)
        self.submit_button.setToolTip("Submit this review — Ctrl+Enter")
        self.submit_button.clicked.connect(self.submit_requested.emit)
        self.submit_button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        bottom.addWidget(self.submit_button)
        outer.addLayout(bottom)

    # --- building ------------------------------------------------------------------------
    def set_rubric(self, title: str, specs: list[CriterionSpec]) -> None:
        for r in self.rows:
            r.deleteLater()
        self.rows = []
        while self.body_layout.count():
            self.body_layout.takeAt(0)
        self.header.setText(f"<b>{esc(title)}</b>")
        for i, spec in enumerate(specs):
            row = CriterionRow(i, spec)
            row.changed.connect(self.changed.emit)
            self.rows.append(row)
            self.body_layout.addWidget(row)
        self.body_layout.addStretch(1)
        self.set_current(0)

    # --- state ---------------------------------------------------------------------------
    def scores(self) -> dict[str, Any]:
        return {r.spec.key: r.value() for r in self.rows if r.value() is not None}

    def decision(self) -> str | None:
        b = self.decision_group.checkedButton()
        return next((n for n, btn in self.decision_buttons.items() if btn is b), None)

    def load(self, decision: str | None, scores: dict[str, Any], rationale: str) -> None:
        """Fill the panel without emitting `changed` per field."""
        self.blockSignals(True)
        try:
            for r in self.rows:
                r.blockSignals(True)
                r.set_value(scores.get(r.spec.key))
                r.blockSignals(False)
            self.decision_group.setExclusive(False)
            for name, b in self.decision_buttons.items():
                b.setChecked(name == decision)
            self.decision_group.setExclusive(True)
            self.rationale.blockSignals(True)
            self.rationale.setPlainText(rationale)
            self.rationale.blockSignals(False)
            self.problems.clear()
        finally:
            self.blockSignals(False)
        self.set_current(0)

    def set_decision(self, decision: str) -> None:
        self.decision_buttons[decision].setChecked(True)
        self.decision_changed.emit(decision)
        self.changed.emit()

    def _decision_clicked(self, _button) -> None:
        d = self.decision()
        if d:
            self.decision_changed.emit(d)
            self.changed.emit()

    def set_current(self, index: int) -> None:
        if not self.rows:
            return
        self.current = max(0, min(index, len(self.rows) - 1))
        for i, r in enumerate(self.rows):
            r.set_current(i == self.current)
        self.scroll.ensureWidgetVisible(self.rows[self.current])

    def move(self, delta: int) -> None:
        self.set_current(self.current + delta)

    def digit(self, d: int) -> bool:
        if not self.rows:
            return False
        ok = self.rows[self.current].set_by_digit(d)
        if ok and self.current < len(self.rows) - 1:
            self.set_current(self.current + 1)
        return ok

    def show_problems(self, problems: list[str]) -> None:
        self.problems.setText("\n".join(problems))

    def set_correction_summary(self, n_edits: int | None) -> None:
        if n_edits is None:
            self.correction_label.clear()
        else:
            self.correction_label.setText(
                f"Correction: {n_edits} edit{'s' if n_edits != 1 else ''} · <a href='edit'>edit and view diff (m)</a>"
            )
