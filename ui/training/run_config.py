"""The run dialog: method (SFT, KTO, DPO, GRPO), snapshot, model, hyper-parameters from the
typed TrainConfig (defaults per model size), grader check."""

from __future__ import annotations

import html
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
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
    QTableWidget,
    QTableWidgetItem,
)
from sqlalchemy import select  # noqa: E402

from app.sample import SAMPLE_ENVIRONMENT  # noqa: E402
from app.training import runs  # noqa: E402
from app.training.config import METHOD_DATA, METHODS, TrainConfig, model_size  # noqa: E402
from app.training.examples import (  # noqa: E402
    SNAPSHOT_KIND,
    ExampleFilter,
    create_verdict_snapshot,
)
from app.training.graders import BUILTINS, GraderSpec  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import DatasetSnapshot  # noqa: E402
from app.workspace.paths import data_dir, runs_dir  # noqa: E402
from ui.widgets.executor import WorkspaceExecutor  # noqa: E402

CHECK_COLUMNS = ("grader", "n", "κ [95% CI]", "within-task AUC [95% CI]", "result")
STATUS_COLORS = {"pass": "#1a7f37", "fail": "#b42318", "constant": "#57606a"}


def _bound(x: dict[str, Any]) -> str:
    if x.get("value") is None:
        return "–"
    return f"{x['value']:.2f} [{x['ci_low']:.2f}, {x['ci_high']:.2f}]"


def _built(model_dir: Path) -> bool:
    """A finished build: the builder writes the weights last."""
    return (model_dir / "tokenizer.json").is_file() and (model_dir / "model.safetensors").is_file()


class RunConfigDialog(QDialog):
    """Launch a run from a snapshot with sane defaults per model size."""

    checked = Signal(object)  # the grader check's result, once the table shows it

    def __init__(self, ws: Workspace, parent=None):
        super().__init__(parent)
        self.ws = ws
        self._executor: WorkspaceExecutor | None = None
        self.setWindowTitle("New training run")
        self.resize(680, 780)
        form = QFormLayout(self)
        self.algorithm = QComboBox()
        for m in METHODS:
            self.algorithm.addItem(m.upper(), m)
        self.algorithm.setCurrentIndex(self.algorithm.findData("dpo"))
        self.method_help = QLabel()
        self.method_help.setWordWrap(True)
        self.snapshot = QComboBox()
        self.verdicts_button = QPushButton("Snapshot the verdicts now")
        self.verdicts_button.setToolTip(
            "Freeze every verdict's step examples (approved and corrected steps desirable, "
            "rejected steps undesirable) in a new snapshot for SFT and KTO"
        )
        self.verdicts_button.clicked.connect(self.snapshot_verdicts)
        srow = QHBoxLayout()
        srow.addWidget(self.snapshot, 1)
        srow.addWidget(self.verdicts_button)
        self.model = QLineEdit()
        self.model.setPlaceholderText("a local Hugging Face model directory")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.demo_button = QPushButton("Build demo model")
        self.demo_button.setToolTip(
            "Build the tiny demo model (offline, about 1.5 minutes on a laptop CPU): a Qwen2-style "
            "model pre-trained on sample-like conversations so that it calls the sample's "
            "tools; it runs every method, agent GRPO included, on the sample workspace"
        )
        self.demo_button.clicked.connect(self.build_demo_model)
        self.demo_status = QLabel()
        self.demo_status.setWordWrap(True)
        self.demo_status.hide()
        self.demo_process: QProcess | None = None
        self.demo_steps: int | None = None  # the builder's default; tests ask for fewer
        mrow = QHBoxLayout()
        mrow.addWidget(self.model, 1)
        mrow.addWidget(browse)
        mrow.addWidget(self.demo_button)
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
        self.lora_r.setToolTip(TrainConfig.help_lines()["lora_r"] + "; LoRA alpha is 2 x rank")
        self.max_length = QSpinBox()
        self.max_length.setRange(0, 1_000_000)
        self.max_length.setSingleStep(256)
        self.max_length.setSpecialValueText("from the data (95th percentile)")
        self.max_length.setToolTip(TrainConfig.help_lines()["max_length"])
        self.save_total_limit = QSpinBox()
        self.save_total_limit.setRange(0, 1000)
        self.save_total_limit.setSpecialValueText("keep every checkpoint")
        self.save_total_limit.setToolTip(TrainConfig.help_lines()["save_total_limit"])
        self.num_generations = QSpinBox()
        self.num_generations.setRange(2, 64)
        self.completion = QSpinBox()
        self.completion.setRange(4, 32768)
        self._agent_widgets()
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
        self.check_table = QTableWidget(0, len(CHECK_COLUMNS))
        self.check_table.setHorizontalHeaderLabels(CHECK_COLUMNS)
        self.check_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.check_table.verticalHeader().setVisible(False)
        self.check_table.horizontalHeader().setStretchLastSection(True)
        self.check_table.setMaximumHeight(150)
        self.check_table.hide()
        self.force = QCheckBox("train even if the graders disagree with the judges")
        form.addRow("Method", self.algorithm)
        form.addRow(self.method_help)
        form.addRow("Snapshot", srow)
        form.addRow("Base model", mrow)
        form.addRow("", self.demo_status)
        form.addRow("Run name", self.name)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("β", self.beta)
        form.addRow("LoRA rank", self.lora_r)
        form.addRow("Max length (tokens)", self.max_length)
        form.addRow("Checkpoints kept", self.save_total_limit)
        form.addRow("GRPO: generations per prompt", self.num_generations)
        form.addRow("GRPO: completion length", self.completion)
        form.addRow("GRPO: environment", self.env_row)
        form.addRow("GRPO: watch every", self.watch_steps)
        form.addRow("GRPO: held-out prompts per watch", self.watch_prompts)
        form.addRow("ECHO λ (observation tokens)", self.echo_lambda)
        form.addRow(self.echo_warning)
        form.addRow("GRPO: grader weights", grow)
        form.addRow(self.check_button)
        form.addRow(self.check_table)
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
        self.algorithm.currentIndexChanged.connect(self._defaults)
        self.model.editingFinished.connect(self._defaults)
        self._defaults()

    def _agent_widgets(self) -> None:
        """GRPO for agents (issue 13): the environment whose tools the model calls, the
        reward-hacking watch, and ECHO's weight on the environment's tokens."""
        help_lines = TrainConfig.help_lines()
        self.environment = QComboBox()
        self.environment.setToolTip(
            "The tools the model calls during GRPO episodes: none (single-turn completions), "
            "the sample's deterministic tools, a replay of the reviewed traces' recorded "
            "results, or your own environment file (a Python module defining the tools)"
        )
        self.environment.addItem("none (single-turn completions)", None)
        self.environment.addItem(
            f"sample environment ({SAMPLE_ENVIRONMENT.name})", str(SAMPLE_ENVIRONMENT)
        )
        self.environment.addItem("replay the reviewed traces' tool results", "replay")
        self.environment.currentIndexChanged.connect(self._method_text)
        env_browse = QPushButton("Environment file…")
        env_browse.clicked.connect(self._browse_environment)
        self.env_row = QHBoxLayout()
        self.env_row.addWidget(self.environment, 1)
        self.env_row.addWidget(env_browse)
        self.env_browse = env_browse
        self.watch_steps = QSpinBox()
        self.watch_steps.setRange(0, 1_000_000)
        self.watch_steps.setSuffix(" steps")
        self.watch_steps.setSpecialValueText("off")
        self.watch_steps.setToolTip(help_lines["watch_steps"])
        self.watch_prompts = QSpinBox()
        self.watch_prompts.setRange(1, 10_000)
        self.watch_prompts.setToolTip(help_lines["watch_prompts"])
        self.echo_lambda = QDoubleSpinBox()
        self.echo_lambda.setDecimals(4)
        self.echo_lambda.setRange(0, 1)
        self.echo_lambda.setSingleStep(0.001)
        self.echo_lambda.setSpecialValueText("0 (off)")
        self.echo_lambda.setToolTip(help_lines["echo_lambda"])
        self.echo_warning = QLabel()
        self.echo_warning.setWordWrap(True)
        self.echo_lambda.valueChanged.connect(self._echo_warning)
        self._echo_warning()

    def _echo_warning(self, *_a) -> None:
        """The paper's warning, always visible; red once λ passes the stable value."""
        lam = self.echo_lambda.value()
        risky = lam > 0.005
        self.echo_warning.setStyleSheet(f"color: {'#b42318' if risky else '#6a7078'};")
        self.echo_warning.setText(
            ("⚠ " if risky else "")
            + "ECHO adds λ × cross-entropy on the tool results' tokens to the loss (SFT and "
            "GRPO). In the ECHO paper λ = 0.005 was stable and λ = 0.05 collapsed a model."
        )

    def _browse_environment(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Environment file (Python module defining the tools)", "", "Python (*.py)"
        )
        if path:
            self.set_environment_file(path)

    def set_environment_file(self, path: str) -> None:
        """Offer this environment file (once) and select it."""
        i = self.environment.findData(path)
        if i < 0:
            self.environment.addItem(f"file: {path}", path)
            i = self.environment.count() - 1
        self.environment.setCurrentIndex(i)

    def environment_choice(self) -> str | None:
        """What `prepare_run(environment=...)` gets: a file path, "replay", or None."""
        return self.environment.currentData() if self.method() == "grpo" else None

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Base model directory")
        if d:
            self.model.setText(d)
            self._defaults()

    def demo_model_dir(self) -> Path:
        return data_dir() / "demo-model"

    def build_demo_model(self) -> None:
        """The demo model in the user's data directory: used as it is when already built,
        else built by `python -m trainer demo-model` in its own process (the dialog stays
        responsive and shows the builder's progress)."""
        out = self.demo_model_dir()
        if _built(out):
            self._demo_ready(out)
            return
        if self.demo_process is not None:
            return
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for key, value in runs.trainer_env().items():
            env.insert(key, value)
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._demo_output)
        proc.finished.connect(self._demo_finished)
        args = ["-m", "trainer", "demo-model", str(out)]
        if self.demo_steps is not None:
            args += ["--steps", str(self.demo_steps)]
        self.demo_process = proc
        self.demo_button.setEnabled(False)
        self.demo_status.setText(f"Building the demo model in {out}…")
        self.demo_status.show()
        proc.start(sys.executable, args)

    def _demo_output(self) -> None:
        raw = bytes(self.demo_process.readAllStandardOutput()).decode(errors="replace")
        lines = [x for x in raw.splitlines() if x.strip()]
        if lines:
            self.demo_status.setText(f"Building the demo model: {lines[-1][:160]}")

    def _demo_finished(self, code: int, _status) -> None:
        proc, self.demo_process = self.demo_process, None
        self.demo_button.setEnabled(True)
        out = self.demo_model_dir()
        if code == 0 and _built(out):
            self._demo_ready(out)
        else:
            tail = bytes(proc.readAll()).decode(errors="replace").strip().splitlines()
            self.demo_status.setText(
                f"The demo model could not be built (exit {code})"
                + (f": {html.escape(tail[-1])}" if tail else "")
            )
        proc.deleteLater()

    def _demo_ready(self, out: Path) -> None:
        self.model.setText(str(out))
        self.demo_status.setText(f"Demo model ready: {out}")
        self.demo_status.show()
        self._defaults()

    def method(self) -> str:
        return self.algorithm.currentData()

    def _fill_snapshots(self, select_name: str | None = None) -> None:
        """The snapshots this method can train on: verdicts for SFT/KTO, pairs for DPO/GRPO."""
        want_verdicts = self.method() in ("sft", "kto")
        current = select_name or self.snapshot.currentData()
        self.snapshot.clear()
        with self.ws.session() as s:
            rows = s.execute(  # not the manifests: a verdicts snapshot holds its examples
                select(
                    DatasetSnapshot.name, DatasetSnapshot.counts, DatasetSnapshot.filters
                ).order_by(DatasetSnapshot.id.desc())
            ).all()
        for name, c, filters in rows:
            if ((filters or {}).get("from") == SNAPSHOT_KIND) != want_verdicts:
                continue
            size = (
                f"{c.get('examples')} step examples" if want_verdicts else f"{c.get('pairs')} pairs"
            )
            self.snapshot.addItem(f"{name} ({size})", name)
        i = self.snapshot.findData(current)
        if i >= 0:
            self.snapshot.setCurrentIndex(i)

    def _method_text(self, *_a) -> None:
        text = METHOD_DATA[self.method()]
        if self.method() == "grpo" and self.environment.currentData():
            text = (
                "agent tasks (the conversation up to the first assistant turn), played as "
                "episodes in the environment: the model calls its tools, the graders see the "
                "structured episode"
            )
        self.method_help.setText(f"<i>{html.escape(text)}</i>")

    def _defaults(self, *_a) -> None:
        try:
            n = model_size(Path(self.model.text())) if self.model.text() else 10**6
        except ChambersError:
            n = 10**6
        method = self.method()
        cfg = TrainConfig.for_model(method, n)
        self._method_text()
        self._fill_snapshots()
        self.verdicts_button.setEnabled(method in ("sft", "kto"))
        self.lr.setValue(cfg.learning_rate)
        self.beta.setValue(cfg.beta)
        self.lora_r.setValue(cfg.lora_r)
        self.max_length.setValue(cfg.max_length or 0)
        self.save_total_limit.setValue(cfg.save_total_limit or 0)
        grpo = method == "grpo"
        self.beta.setEnabled(method != "sft")
        self.num_generations.setValue(cfg.num_generations)
        self.completion.setValue(cfg.max_completion_length)
        self.watch_steps.setValue(cfg.watch_steps)
        self.watch_prompts.setValue(cfg.watch_prompts)
        self.echo_lambda.setValue(cfg.echo_lambda)
        self.echo_lambda.setEnabled(method in ("sft", "grpo"))
        self.beta.setToolTip(
            "GRPO: weight of the KL penalty to the base model (0: none; the watch still reports KL)"
            if grpo
            else TrainConfig.help_lines()["beta"]
        )
        for w in (
            self.environment,
            self.env_browse,
            self.watch_steps,
            self.watch_prompts,
            self.num_generations,
            self.completion,
            self.check_button,
            self.force,
            *self.grader_boxes.values(),
        ):
            w.setEnabled(grpo)

    def snapshot_verdicts(self) -> str | None:
        """Freeze the verdicts' step examples in a new snapshot and select it."""
        name = f"verdicts-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        try:
            with self.ws.session() as s:
                snap = create_verdict_snapshot(s, name, ExampleFilter())
                c = snap.counts
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return None
        self.problems.setText("")
        self.method_help.setText(
            f"<i>{html.escape(METHOD_DATA[self.method()])}</i><br>Snapshot {html.escape(name)}:"
            f" {c['desirable']} desirable and {c['undesirable']} undesirable step examples "
            f"({', '.join(f'{k} {v}' for k, v in c['by_kind'].items())})"
        )
        self._fill_snapshots(name)
        return name

    def graders(self) -> list[GraderSpec]:
        return [GraderSpec(n, sp.value()) for n, sp in self.grader_boxes.items() if sp.value() > 0]

    def check_graders(self) -> None:
        """Run the grader check on the dialog's executor (user graders run one process per
        trace, seconds); `checked` fires when the table shows the result."""
        gs = self.graders()
        if not gs:
            self.check_view.setText("Give at least one grader a weight.")
            return
        if self._executor is None:
            self._executor = WorkspaceExecutor(self.ws, self)
        self.check_button.setEnabled(False)
        self.check_view.setText("Checking the graders against the judges…")
        self._executor.submit(
            lambda s: runs.validate_graders(s, gs), self._show_check, self._check_failed, "check"
        )

    def _check_failed(self, exc: BaseException) -> None:
        self.check_button.setEnabled(self.method() == "grpo")
        self.check_view.setText(html.escape(str(exc)))

    def _show_check(self, v: dict[str, Any]) -> None:
        """The per-grader table (κ and within-task AUC with their CIs) and what gates."""
        self.check_button.setEnabled(self.method() == "grpo")
        rows = [*v["per_grader"], v["combined"]]
        self.check_table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (r["name"], str(r["n"]), _bound(r["kappa"]), _bound(r["rank"]), r["status"])
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == len(cells) - 1:
                    item.setForeground(QColor(STATUS_COLORS[r["status"]]))
                if r.get("failure"):
                    item.setToolTip(r["failure"])
                self.check_table.setItem(i, j, item)
        self.check_table.resizeColumnsToContents()
        self.check_table.show()
        t, sp = v["thresholds"], v["split"]
        verdict = (
            "<b style='color:#1a7f37'>the graders agree with the judges</b>"
            if v["ok"]
            else "<b style='color:#b42318'>do not train on these graders</b>"
        )
        notes = v["failures"] + v["warnings"]
        notes += [f"left out: {n} ({reason})" for reason, n in v["left_out"].items()]
        self.check_view.setText(
            f"Held-out half: {v['n']} reviewed traces of {v['n_tasks']} tasks "
            f"({sp['tasks_checked']} of {sp['tasks_with_reference']} tasks with a reference "
            "from another trace of the task), graded against that reference, never their own "
            f"review. Gate: each CI's lower bound, κ ≥ {t['kappa_ci_low_min']}, within-task "
            f"AUC > {t['rank_ci_low_above']}: {verdict}."
            + "".join(f"<br>{html.escape(n)}" for n in notes)
        )
        self.checked.emit(v)

    def done(self, result: int) -> None:
        if self._executor is not None:
            self._executor.shutdown()
        super().done(result)

    def config(self) -> TrainConfig:
        """The dialog's settings on top of the model-size defaults (alpha derived there)."""
        try:
            n = model_size(Path(self.model.text())) if self.model.text() else 10**6
        except ChambersError:
            n = 10**6
        out: dict[str, Any] = {
            "learning_rate": self.lr.value(),
            "lora_r": self.lora_r.value(),
            "max_length": self.max_length.value() or None,
            "save_total_limit": self.save_total_limit.value() or None,
        }
        if self.method() != "sft":
            out["beta"] = self.beta.value()
        if self.max_steps.value() > 0:
            out["max_steps"] = self.max_steps.value()
        if self.method() in ("sft", "grpo"):
            out["echo_lambda"] = self.echo_lambda.value()
        if self.method() == "grpo":
            out["watch_steps"] = self.watch_steps.value()
            out["watch_prompts"] = self.watch_prompts.value()
            out["num_generations"] = self.num_generations.value()
            out["max_completion_length"] = self.completion.value()
        cfg = TrainConfig.for_model(self.method(), n).update(out, "the run dialog")
        if not self.save_total_limit.value():
            cfg.save_total_limit = None
        if not self.max_length.value():
            cfg.max_length = None
        return cfg

    def accept(self) -> None:
        self.run_id = self.launch()
        if self.run_id is not None:
            super().accept()

    def launch(self) -> int | None:
        """Prepare and start the run; returns its id (None, with a message, on a problem)."""
        name = self.name.text().strip() or f"{self.method()}-{self.snapshot.currentData()}"
        run_dir = runs_dir() / name
        if not self.snapshot.currentData():
            self.problems.setText(
                "Choose a snapshot"
                + (" (or snapshot the verdicts now)." if self.method() in ("sft", "kto") else ".")
            )
            return None
        try:
            env = self.environment_choice()
            extra = {"environment": env} if env else {}  # only when set (SPEC 13)
            with self.ws.session() as s:
                run = runs.prepare_run(
                    s,
                    self.method(),
                    self.snapshot.currentData() or "",
                    Path(self.model.text()),
                    run_dir,
                    self.config(),
                    self.graders() if self.method() == "grpo" else None,
                    name=name,
                    force=self.force.isChecked(),
                    **extra,
                )
                runs.launch(s, run)
                return run.id
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return None
