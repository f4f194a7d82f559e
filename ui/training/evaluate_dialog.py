"""Evaluate a finished run against its base (or a registered model): the trainer process
generates and grades, detached, so closing the app does not stop it; the Models screen and
`chambers evals show` read the result."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
)
from sqlalchemy import select

from app.training import evaluation as ev_mod
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import DatasetSnapshot, RegisteredModel, ReviewRound


class EvaluateDialog(QDialog):
    def __init__(self, ws: Workspace, run_name: str, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.run_name = run_name
        self.started: str | None = None
        self.setWindowTitle(f"Evaluate {run_name}")
        form = QFormLayout(self)
        self.against = QComboBox()
        self.against.addItem("its base model", "base")
        self.tasks = QComboBox()
        self.tasks.addItem("held-out split of its snapshot (never trained on)", "heldout")
        with ws.session() as s:
            for m in s.scalars(select(RegisteredModel).order_by(RegisteredModel.id)):
                if m.name != run_name:
                    self.against.addItem(m.name, m.name)
            for snap in s.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id)):
                self.tasks.addItem(
                    f"held-out split of snapshot {snap.name}", f"snapshot:{snap.name}"
                )
            for rnd in s.scalars(select(ReviewRound).order_by(ReviewRound.id)):
                self.tasks.addItem(f"traces of review round {rnd.name}", f"round:{rnd.name}")
        self.n = QSpinBox()
        self.n.setRange(0, 100_000)
        self.n.setSpecialValueText("all")
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 8192)
        self.max_new.setValue(ev_mod.DEFAULT_DECODING["max_new_tokens"])
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Against:", self.against)
        form.addRow("Tasks:", self.tasks)
        form.addRow("At most:", self.n)
        form.addRow("Max new tokens:", self.max_new)
        form.addRow("Temperature (0 = greedy):", self.temperature)
        form.addRow("Seed:", self.seed)
        self.error = QLabel()
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start evaluation")
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def start(self) -> bool:
        try:
            with self.ws.session() as s:
                ev = ev_mod.prepare_eval(
                    s,
                    self.run_name,
                    against=self.against.currentData(),
                    tasks=self.tasks.currentData(),
                    n=self.n.value() or None,
                    decoding={
                        "max_new_tokens": self.max_new.value(),
                        "temperature": self.temperature.value(),
                    },
                    seed=self.seed.value(),
                )
                ev_mod.launch(s, ev)
                self.started = ev.name
        except ChambersError as exc:
            self.error.setText(str(exc))
            return False
        self.accept()
        return True
