"""Pairs and snapshots; training runs launched, watched live, cancelled and reattached.

The trainer is its own process (app.runs.launch): this screen only reads its run directory,
so closing the app never stops a run and reopening it picks the run up where it is.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PySide6.QtCore import Qt, QTimer, Signal  # noqa: E402
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
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select  # noqa: E402

from app import pairs as pr  # noqa: E402
from app import runs  # noqa: E402
from app.db import Workspace  # noqa: E402
from app.errors import ChambersError  # noqa: E402
from app.graders import BUILTINS, GraderSpec  # noqa: E402
from app.models import DatasetSnapshot, Judge, TrainingRun  # noqa: E402
from app.paths import runs_dir  # noqa: E402
from ui.lead import _versions  # noqa: E402
from ui.render import render_diff  # noqa: E402
from ui.trace_view import palette_colors  # noqa: E402

RULE_HELP = (
    "<b>modify</b>: prompt = the conversation up to the first assistant step the judge changed; "
    "chosen = the corrected continuation; rejected = the original. "
    "<b>reject_with_answer</b>: the judge rejected and wrote the right answer: chosen = that "
    "answer, rejected = the agent's. <b>ranked</b>: traces of the same task with different "
    "weighted rubric scores: the better one is chosen, the margin kept. Splits are by task, so "
    "no task is on both sides."
)


def _messages_text(messages: list[dict[str, Any]]) -> list[str]:
    lines = []
    for m in messages:
        lines.append(f"[{m['role']}]")
        if m.get("content"):
            lines += str(m["content"]).splitlines()
        for c in m.get("tool_calls") or []:
            f = c["function"]
            lines.append(f"→ {f['name']}({f.get('arguments')})")
    return lines


class PairsDialog(QDialog):
    """Filter the pairs the reviews yield, see chosen vs rejected, create snapshots."""

    snapshot_created = Signal(str)

    def __init__(self, ws: Workspace, user: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.user = user
        self.rows: list[tuple[Any, str]] = []
        self.setWindowTitle("Preference pairs")
        self.resize(1300, 820)
        lay = QVBoxLayout(self)
        help_label = QLabel(RULE_HELP)
        help_label.setWordWrap(True)
        lay.addWidget(help_label)
        form = QHBoxLayout()
        self.version = QComboBox()
        self.version.addItem("any rubric version", None)
        self.rules = {r: QCheckBox(r) for r in pr.RULES}
        self.adjudicated = QCheckBox("adjudicated only")
        self.min_agreement = QDoubleSpinBox()
        self.min_agreement.setRange(0, 1)
        self.min_agreement.setSingleStep(0.05)
        self.min_agreement.setSpecialValueText("any agreement")
        self.min_margin = QDoubleSpinBox()
        self.min_margin.setRange(0, 1)
        self.min_margin.setSingleStep(0.05)
        self.min_margin.setSpecialValueText("any margin")
        self.heldout = QDoubleSpinBox()
        self.heldout.setRange(0, 0.9)
        self.heldout.setSingleStep(0.05)
        self.heldout.setValue(0.1)
        form.addWidget(self.version)
        for b in self.rules.values():
            b.setChecked(True)
            form.addWidget(b)
        form.addWidget(self.adjudicated)
        form.addWidget(QLabel("min agreement"))
        form.addWidget(self.min_agreement)
        form.addWidget(QLabel("min margin"))
        form.addWidget(self.min_margin)
        form.addWidget(QLabel("held out"))
        form.addWidget(self.heldout)
        self.judges = QLineEdit()
        self.judges.setPlaceholderText("judges (comma-separated)")
        self.since = QLineEdit()
        self.since.setPlaceholderText("since YYYY-MM-DD")
        self.until = QLineEdit()
        self.until.setPlaceholderText("until YYYY-MM-DD")
        for w in (self.judges, self.since, self.until):
            w.setMaximumWidth(170)
            w.returnPressed.connect(self.refresh)
            form.addWidget(w)
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.refresh)
        form.addWidget(self.apply_button)
        lay.addLayout(form)
        self.counts = QLabel()
        lay.addWidget(self.counts)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["id", "rule", "split", "margin", "traces", "judges"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.currentCellChanged.connect(lambda r, *_: self.show_pair(r))
        split.addWidget(self.table)
        self.diff = QTextBrowser()
        split.addWidget(self.diff)
        split.setSizes([520, 780])
        lay.addWidget(split, 1)
        bottom = QHBoxLayout()
        self.message = QLabel()
        bottom.addWidget(self.message, 1)
        self.snapshot_button = QPushButton("Create snapshot…")
        self.snapshot_button.clicked.connect(self._ask_snapshot)
        bottom.addWidget(self.snapshot_button)
        lay.addLayout(bottom)
        with ws.session() as s:
            for label, v in _versions(s):
                self.version.addItem(label, v.id)
        self.refresh()

    def current_filter(self) -> pr.PairFilter:
        names = [n.strip() for n in self.judges.text().split(",") if n.strip()]
        ids = None
        if names:
            with self.ws.session() as s:
                ids = list(s.scalars(select(Judge.id).where(Judge.name.in_(names)))) or [-1]
        return pr.PairFilter(
            judge_ids=ids,
            since=self.since.text().strip() or None,
            until=self.until.text().strip() or None,
            rubric_version_id=self.version.currentData(),
            rules=[r for r, b in self.rules.items() if b.isChecked()] or None,
            adjudicated_only=self.adjudicated.isChecked(),
            min_agreement=self.min_agreement.value() or None,
            min_margin=self.min_margin.value() or None,
            heldout=self.heldout.value(),
        )

    def refresh(self) -> None:
        with self.ws.session() as s:
            pr.derive_pairs(s)
            rows = pr.select_pairs(s, self.current_filter())
            names = dict(s.execute(select(Judge.id, Judge.name)).all())
            for p, _ in rows:
                s.expunge(p)
        self.rows = rows
        st = pr.stats_of(rows)
        self.counts.setText(
            f"{st['pairs']} pairs · "
            + " · ".join(f"{k}: {v}" for k, v in st["by_split"].items())
            + " · " + ", ".join(f"{k} {v}" for k, v in st["by_rule"].items()))
        self.table.setRowCount(len(rows))
        for i, (p, split) in enumerate(rows):
            cells = [str(p.id), p.rule, split, "" if p.margin is None else f"{p.margin:.3f}",
                     ", ".join(map(str, p.provenance.get("trace_ids", []))),
                     ", ".join(names.get(j, str(j)) for j in p.provenance.get("judge_ids", []))]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if rows:
            self.table.selectRow(0)
            self.show_pair(0)
        else:
            self.diff.setHtml("No pairs match these filters.")

    def show_pair(self, row: int) -> None:
        if not 0 <= row < len(self.rows):
            return
        import difflib

        p, split = self.rows[row]
        lines = list(difflib.unified_diff(_messages_text(p.rejected), _messages_text(p.chosen),
                                          "rejected", "chosen", lineterm="", n=3))
        prompt = "<br>".join(html.escape(x) for x in _messages_text(p.prompt)[-12:])
        self.diff.setHtml(
            f"<p><b>Pair {p.id}</b> ({p.rule}, {split}); provenance: reviews "
            f"{p.provenance.get('review_ids')}, traces {p.provenance.get('trace_ids')}</p>"
            f"<p><b>Prompt (last lines)</b><br><span style='color:gray'>{prompt}</span></p>"
            "<p><b>Rejected → chosen</b></p>"
            + render_diff(lines or [" (identical)"], palette_colors(self.palette())))

    def _ask_snapshot(self) -> None:
        name, ok = QInputDialog.getText(self, "Create snapshot", "Snapshot name")
        if ok and name.strip():
            self.create_snapshot(name.strip())

    def create_snapshot(self, name: str) -> bool:
        try:
            with self.ws.session() as s:
                snap = pr.create_snapshot(s, name, self.current_filter(), self.user.id)
                msg = (f"Snapshot {name!r}: {snap.counts['pairs']} pairs, sha256 "
                       f"{snap.sha256[:16]}…")
        except ChambersError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText(msg)
        self.snapshot_created.emit(name)
        return True


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
                self.snapshot.addItem(f"{snap.name} ({snap.counts.get('pairs')} pairs)",
                                      snap.name)
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
        for w in (self.num_generations, self.completion, self.check_button, self.force,
                  *self.grader_boxes.values()):
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
        verdict = "<b style='color:#1a7f37'>agrees with the judges</b>" if v["ok"] else \
            "<b style='color:#b42318'>does not agree with the judges</b>"
        self.check_view.setText(
            f"{v['n']} reviewed traces graded; mean {v['mean']:.2f}; score histogram {bars}. "
            f"Cohen's κ with the judges: {k['value']} [{k['ci_low']}, {k['ci_high']}]: {verdict}."
            + ("<br>" + "<br>".join(html.escape(w) for w in v["warnings"])
               if v["warnings"] else ""))
        return v

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {"learning_rate": self.lr.value(), "beta": self.beta.value(),
                               "lora_r": self.lora_r.value(), "lora_alpha": 2 * self.lora_r.value()}
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
        name = self.name.text().strip() or f"{self.algorithm.currentText()}-" \
            f"{self.snapshot.currentData()}"
        run_dir = runs_dir() / name
        try:
            with self.ws.session() as s:
                run = runs.prepare_run(s, self.algorithm.currentText(), self.snapshot.currentData()
                                       or "", Path(self.model.text()), run_dir, self.overrides(),
                                       self.graders() if self.algorithm.currentText() == "grpo"
                                       else None, name=name, force=self.force.isChecked())
                runs.launch(s, run)
                return run.id
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return None


class RunsDialog(QDialog):
    """Every run; the selected one live: progress with ETA, plots, log tail, Cancel."""

    PLOTS = {
        "dpo": [("loss", "loss"), ("rewards/margins", "rewards/margins"),
                ("rewards/accuracies", "rewards/accuracies")],
        "grpo": [("reward", "reward mean"), ("reward_std", "reward std"),
                 ("frac_reward_zero_std", "zero-std groups"),
                 ("completions/mean_length", "completion length")],
    }

    def __init__(self, ws: Workspace, user: Judge, parent=None, poll_ms: int = 1000):
        super().__init__(parent)
        self.ws = ws
        self.user = user
        self.run_id: int | None = None
        self.offset = 0
        self.history: list[dict[str, Any]] = []
        self.setWindowTitle("Training runs")
        self.resize(1300, 860)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.new_button = QPushButton("New run…")
        self.new_button.clicked.connect(self.new_run)
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        top.addWidget(self.new_button)
        top.addWidget(self.cancel_button)
        top.addStretch(1)
        lay.addLayout(top)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["run", "algorithm", "status", "snapshot"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.currentCellChanged.connect(lambda r, *_: self._select(r))
        split.addWidget(self.table)
        right = QWidget()
        rl = QVBoxLayout(right)
        self.title = QLabel()
        rl.addWidget(self.title)
        self.progress = QProgressBar()
        rl.addWidget(self.progress)
        self.fig = Figure(figsize=(8, 4.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.fig)
        rl.addWidget(self.canvas, 2)
        self.export_button = QPushButton("Export plots as PNG…")
        self.export_button.clicked.connect(self._export)
        rl.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(400)
        rl.addWidget(self.log, 1)
        split.addWidget(right)
        split.setSizes([380, 920])
        lay.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.reload()

    def reload(self) -> None:
        with self.ws.session() as s:
            rows = runs.list_runs(s)  # syncs running runs with their directories (reattach)
        self._rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, text in enumerate([r["name"], r["algorithm"], r["status"], r["snapshot"] or ""]):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r["id"])
                self.table.setItem(i, j, item)
        if rows and self.run_id is None:
            self.table.selectRow(len(rows) - 1)

    def select_run(self, run_id: int) -> None:
        self.reload()
        for i, r in enumerate(self._rows):
            if r["id"] == run_id:
                self.table.selectRow(i)
                self._select(i)

    def _select(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        r = self._rows[row]
        if r["id"] == self.run_id:
            return
        self.run_id = r["id"]
        self.offset = 0
        self.history = []
        self.log.clear()
        self.algorithm = r["algorithm"]
        self.run_dir = r["run_dir"]
        self.name, self.status, self.error, self.pid = r["name"], r["status"], r["error"], r["pid"]
        self.max_steps = 0
        self.eta: float | None = None
        self.log_size = -1
        self.poll()

    def poll(self) -> None:
        if self.run_id is None:
            return
        # Only the events appended since the last poll are read; the registry is touched
        # when the run ends (a final event, or its process gone without one).
        new, self.offset = runs.read_events(self.run_dir, self.offset)
        ended = any(e["event"] in runs.FINAL_EVENTS for e in new)
        if ended or (self.status == "running" and not runs.process_alive(self.pid)):
            with self.ws.session() as s:
                run = runs.sync(s, s.get(TrainingRun, self.run_id))
                self.status, self.error = run.status, run.error
        for e in new:
            if e["event"] == "log" and e.get("metrics") and "train_runtime" not in e["metrics"]:
                self.history.append({"step": e["step"], **e["metrics"]})
                self.max_steps = e.get("max_steps") or 0
                self.eta = e.get("eta_s")
        if new:
            self._redraw()
        self._update_header()
        self._tail_log()
        self.cancel_button.setEnabled(self.status == "running")
        row = self.table.currentRow()
        if 0 <= row < self.table.rowCount() and self.table.item(row, 2).text() != self.status:
            self.table.item(row, 2).setText(self.status)

    def _update_header(self) -> None:
        status, total = self.status, self.max_steps
        step = self.history[-1]["step"] if self.history else 0
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(total if status == "finished" and total else step)
        eta, error = self.eta, self.error
        eta_text = f", about {eta:.0f} s left" if eta is not None and status == "running" else ""
        colour = {"finished": "#1a7f37", "failed": "#b42318", "cancelled": "#9a6700"}.get(
            status, "inherit")
        self.title.setText(
            f"<b>{html.escape(self.name)}</b>: <span style='color:{colour}'>{status}</span> · step "
            f"{step}/{total or '?'}{eta_text}"
            + (f"<br><span style='color:#b42318'>{html.escape(error)}</span>" if error else ""))

    def _tail_log(self) -> None:
        path = Path(self.run_dir) / "stdout.log"
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size == self.log_size:
            return
        self.log_size = size
        with open(path, "rb") as f:
            f.seek(max(size - 40_000, 0))
            raw = f.read().splitlines()[1:] if size > 40_000 else f.read().splitlines()
        # events as short lines; anything else (warnings, a traceback) verbatim
        lines = [runs.format_event(x).rstrip("\n") if x.startswith(b"{")
                 else x.decode(errors="replace") for x in raw]
        self.log.setPlainText("\n".join(x for x in lines if x))
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    def _redraw(self) -> None:
        self.fig.clear()
        plots = self.PLOTS.get(self.algorithm, [])
        steps = [h["step"] for h in self.history]
        for i, (key, label) in enumerate(plots):
            ax = self.fig.add_subplot(1, len(plots), i + 1)
            ys = [h.get(key) for h in self.history]
            pts = [(x, y) for x, y in zip(steps, ys, strict=True) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
        self.canvas.draw_idle()

    def plotted(self) -> dict[str, list[float]]:
        """What the plots show, per metric (for tests and exports)."""
        return {key: [h[key] for h in self.history if key in h]
                for key, _ in self.PLOTS.get(self.algorithm, [])}

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "run-plots.png", "PNG (*.png)")
        if path:
            self.fig.savefig(path, dpi=150)

    def new_run(self) -> None:
        dlg = RunConfigDialog(self.ws, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.run_id is not None:
            self.select_run(dlg.run_id)

    def cancel(self) -> None:
        if self.run_id is not None:
            with self.ws.session() as s:
                self.log.appendPlainText(runs.cancel_run(s, self.run_id))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()  # the run itself goes on
        super().closeEvent(event)
