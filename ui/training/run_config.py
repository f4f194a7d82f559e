"""The run dialog: method, snapshot, model, hyper-parameters, grader check."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtWidgets import (  # noqa: E402
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)
from sqlalchemy import select  # noqa: E402

from app.training import runs  # noqa: E402
from app.training.graders import BUILTINS, GraderSpec  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import DatasetSnapshot  # noqa: E402
from app.workspace.paths import runs_dir  # noqa: E402


class RunConfigDialog(QDialog):
    """Launch a run from a snapshot with sane defaults per model size."""

    def __init__(self, ws: Workspace, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.setWindowTitle("New training run")
        self.resize(640, 560)
        form = QFormLayout(self)
        self.algorithm = QComboBox()
        self.algorithm.addItems(["dpo", "grpo"])
        self.snapshot = QComboBox()
        with ws.session() as s:
            for snap in s.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id.desc())):
                self.snapshot.addItem(f"{snap.name} ({snap.counts.get('pairs')} pairs)", snap.name)
        self.model = QLineEdit()
        self.model.setPlaceholderText("a local Hugging Face model directory")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        mrow = QHBoxLayout()
        mrow.addWidget(self.model, 1)
        mrow.addWidget(browse)
        self.name = QLineEdit()
        self.max_steps = QSpinBox()
        self.max_steps.setRange(-1, 10_000_000)
        self.max_steps.setValue(-1)
        self.max_steps.setSpecialValueText("whole epochs")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(7)
        self.lr.setRange(0, 1)
        self.beta = QDoubleSpinBox()
        self.beta.setDecimals(3)
        self.beta.setRange(0, 10)
        self.lora_r = QSpinBox()
        self.lora_r.setRange(1, 512)
        self.num_generations = QSpinBox()
        self.num_generations.setRange(2, 64)
        self.completion = QSpinBox()
        self.completion.setRange(4, 32768)
        self.grader_boxes = {n: QDoubleSpinBox() for n in BUILTINS}
        grow = QHBoxLayout()
        for n, sp in self.grader_boxes.items():
            sp.setRange(0, 10)
            sp.setSingleStep(0.25)
            sp.setValue(1.0 if n == "match" else 0.0)
            grow.addWidget(QLabel(n))
            grow.addWidget(sp)
        self.check_button = QPushButton("Check graders against the judges")
        self.check_button.clicked.connect(self.check_graders)
        self.check_view = QLabel()
        self.check_view.setWordWrap(True)
        self.force = QCheckBox("train even if the graders disagree with the judges")
        form.addRow("Algorithm", self.algorithm)
        form.addRow("Snapshot", self.snapshot)
        form.addRow("Base model", mrow)
        form.addRow("Run name", self.name)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("β", self.beta)
        form.addRow("LoRA rank", self.lora_r)
        form.addRow("GRPO: generations per prompt", self.num_generations)
        form.addRow("GRPO: completion length", self.completion)
        form.addRow("GRPO: grader weights", grow)
        form.addRow(self.check_button)
        form.addRow(self.check_view)
        form.addRow(self.force)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b42318;")
        form.addRow(self.problems)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.launch_button = bb.addButton("Launch", QDialogButtonBox.ButtonRole.AcceptRole)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)
        self.algorithm.currentTextChanged.connect(self._defaults)
        self.model.editingFinished.connect(self._defaults)
        self._defaults()

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Base model directory")
        if d:
            self.model.setText(d)
            self._defaults()

    def _defaults(self, *_a) -> None:
        try:
            n = runs.model_size(Path(self.model.text())) if self.model.text() else 10**6
        except ChambersError:
            n = 10**6
        cfg = runs.default_config(self.algorithm.currentText(), n)
        self.lr.setValue(cfg["learning_rate"])
        self.beta.setValue(cfg["beta"])
        self.lora_r.setValue(cfg["lora_r"])
        grpo = self.algorithm.currentText() == "grpo"
        self.num_generations.setValue(cfg.get("num_generations", 4))
        self.completion.setValue(cfg.get("max_completion_length", 64))
        for w in (
            self.num_generations,
            self.completion,
            self.check_button,
            self.force,
            *self.grader_boxes.values(),
        ):
            w.setEnabled(grpo)

    def graders(self) -> list[GraderSpec]:
        return [GraderSpec(n, sp.value()) for n, sp in self.grader_boxes.items() if sp.value() > 0]

    def check_graders(self) -> dict[str, Any] | None:
        gs = self.graders()
        if not gs:
            self.check_view.setText("Give at least one grader a weight.")
            return None
        with self.ws.session() as s:
            v = runs.validate_graders(s, gs)
        if not v["n"]:
            self.check_view.setText("; ".join(v["warnings"]))
            return v
        k = v["agreement"]["cohen_kappa"]
        bars = " ".join(f"{i / 10:.1f}:{c}" for i, c in enumerate(v["histogram"]) if c)
        verdict = (
            "<b style='color:#1a7f37'>agrees with the judges</b>"
            if v["ok"]
            else "<b style='color:#b42318'>does not agree with the judges</b>"
        )
        self.check_view.setText(
            f"{v['n']} reviewed traces graded; mean {v['mean']:.2f}; score histogram {bars}. "
            f"Cohen's κ with the judges: {k['value']} [{k['ci_low']}, {k['ci_high']}]: {verdict}."
            + ("<br>" + "<br>".join(html.escape(w) for w in v["warnings"]) if v["warnings"] else "")
        )
        return v

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "learning_rate": self.lr.value(),
            "beta": self.beta.value(),
            "lora_r": self.lora_r.value(),
            "lora_alpha": 2 * self.lora_r.value(),
        }
        if self.max_steps.value() > 0:
            out["max_steps"] = self.max_steps.value()
        if self.algorithm.currentText() == "grpo":
            out["num_generations"] = self.num_generations.value()
            out["max_completion_length"] = self.completion.value()
        return out

    def accept(self) -> None:
        self.run_id = self.launch()
        if self.run_id is not None:
            super().accept()

    def launch(self) -> int | None:
        """Prepare and start the run; returns its id (None, with a message, on a problem)."""
        name = (
            self.name.text().strip()
            or f"{self.algorithm.currentText()}-{self.snapshot.currentData()}"
        )
        run_dir = runs_dir() / name
        try:
            with self.ws.session() as s:
                run = runs.prepare_run(
                    s,
                    self.algorithm.currentText(),
                    self.snapshot.currentData() or "",
                    Path(self.model.text()),
                    run_dir,
                    self.overrides(),
                    self.graders() if self.algorithm.currentText() == "grpo" else None,
                    name=name,
                    force=self.force.isChecked(),
                )
                runs.launch(s, run)
                return run.id
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return None
