"""Training runs launched, watched live, cancelled and reattached.

The trainer is its own process: this screen only reads its run directory, so closing the
app never stops a run and reopening it picks the run up where it is.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from matplotlib.figure import Figure  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.training import episodes, runs  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge, TrainingRun  # noqa: E402
from ui.training.agent_views import EpisodesPane, WatchPane, run_setup  # noqa: E402
from ui.training.run_config import RunConfigDialog  # noqa: E402
from ui.widgets.chart_box import ChartBox  # noqa: E402
from ui.widgets.executor import WorkspaceExecutor  # noqa: E402
from ui.widgets.lazy_model import Column, LazyTableModel  # noqa: E402

RUN_COLUMNS = (
    Column("run", lambda r: r["name"]),
    Column("algorithm", lambda r: r["algorithm"]),
    Column("status", lambda r: r["status"]),
    Column("snapshot", lambda r: r["snapshot"] or ""),
)


class RunsDialog(QDialog):
    """Every run; the selected one live: progress with ETA, plots, log tail, Cancel."""

    PLOTS = {
        "sft": [("loss", "loss"), ("mean_token_accuracy", "token accuracy")],
        "kto": [("loss", "loss"), ("kl", "KL"), ("rewards/margins", "rewards/margins")],
        "dpo": [
            ("loss", "loss"),
            ("rewards/margins", "rewards/margins"),
            ("rewards/accuracies", "rewards/accuracies"),
        ],
        "grpo": [
            ("reward", "reward mean"),
            ("reward_std", "reward std"),
            ("frac_reward_zero_std", "zero-std groups"),
            ("completions/mean_length", "completion length"),
        ],
    }

    def __init__(
        self,
        ws: Workspace,
        user: Judge,
        parent=None,
        poll_ms: int = 1000,
        executor: WorkspaceExecutor | None = None,
    ):
        super().__init__(parent)
        self.ws = ws
        self.user = user
        self.executor = executor or WorkspaceExecutor(ws)
        self._owns_executor = executor is None
        self._rows: list[dict[str, Any]] = []
        self._want: int | None = None  # the run to select when the list lands
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
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a cancelled or failed run from its last checkpoint")
        self.resume_button.clicked.connect(self.resume)
        self.resume_button.setEnabled(False)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.clicked.connect(self.evaluate)
        top.addWidget(self.new_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.resume_button)
        top.addWidget(self.evaluate_button)
        self.send_button = QPushButton("Send held-out completions to judges")
        self.send_button.setToolTip(
            "Store the run's held-out episodes as traces and assign each to two judges in a "
            "new review round (episodes sent before are not sent again)"
        )
        self.send_button.clicked.connect(self.send_heldout)
        self.send_button.setEnabled(False)
        top.addWidget(self.send_button)
        top.addStretch(1)
        lay.addLayout(top)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = LazyTableModel(RUN_COLUMNS, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._select(cur.row())
        )
        split.addWidget(self.table)
        right = QWidget()
        rl = QVBoxLayout(right)
        self.title = QLabel()
        rl.addWidget(self.title)
        self.setup = QLabel()  # agent GRPO: environment, refusals, β, λ, the watch
        self.setup.setWordWrap(True)
        self.setup.setStyleSheet("color: #6a7078")
        rl.addWidget(self.setup)
        self.watch = QLabel()  # the reward-hacking watch (issue 11)
        self.watch.setWordWrap(True)
        self.watch.setStyleSheet("color: #b42318")
        rl.addWidget(self.watch)
        self.alert_banner = QLabel()  # the watch's alerts during training (issue 13)
        self.alert_banner.setWordWrap(True)
        self.alert_banner.setStyleSheet(
            "background: #fde8e8; color: #b42318; border: 1px solid #b42318; padding: 6px;"
            " font-weight: bold"
        )
        self.alert_banner.hide()
        rl.addWidget(self.alert_banner)
        self.sent = QLabel()
        self.sent.setWordWrap(True)
        self.sent.hide()
        rl.addWidget(self.sent)
        self.progress = QProgressBar()
        rl.addWidget(self.progress)
        self.chart = ChartBox("run plots")
        self.chart.set_figure(Figure(figsize=(8, 4.5), layout="constrained"))
        self.fig, self.canvas = self.chart.fig, self.chart.canvas
        self.watch_pane = WatchPane()
        self.episodes_pane = EpisodesPane(self.executor)
        self.episodes_pane.loaded.connect(lambda _n: self._update_send())
        self.tabs = QTabWidget()
        self.tabs.addTab(self.chart, "Training")
        self.tabs.addTab(self.watch_pane, "Watch && observation CE")
        self.tabs.addTab(self.episodes_pane, "Episodes")
        rl.addWidget(self.tabs, 4)
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
        """Every run, read on the executor (listing syncs running runs with their
        directories: the reattach); the table fills when the rows land."""
        self.executor.submit(runs.list_runs, self._rows_landed, self._failed, "runs")

    def _rows_landed(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
        self.model.set_rows(rows)
        want, self._want = self._want, None
        target = want or self.run_id or (rows[-1]["id"] if rows else None)
        i = self.model.find(lambda r: r["id"] == target)
        if i is not None:
            if want is not None:
                self.run_id = None  # select it afresh
            self.table.selectRow(i)
            self._select(i)

    def _failed(self, exc: BaseException) -> None:
        self.title.setText(f"<span style='color:#b42318'>{html.escape(str(exc))}</span>")

    def select_run(self, run_id: int) -> None:
        """Show this run once the list (re-read on the executor) lands."""
        self._want = run_id
        self.reload()

    def _select(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        r = self._rows[row]
        if r["id"] == self.run_id:
            return
        self.run_id = r["id"]
        self.offset = 0
        self.history = []
        self.watches: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.log.clear()
        self.algorithm = r["algorithm"]
        self.run_dir = r["run_dir"]
        self.name, self.status, self.error, self.pid = r["name"], r["status"], r["error"], r["pid"]
        self.max_steps = 0
        self.eta: float | None = None
        self.log_size = -1
        self.checkpoint = runs.last_checkpoint(self.run_dir)
        self.episodes_pane.reset(self.run_dir)
        self.setup.setText(run_setup(self.run_dir))
        self.setup.setVisible(bool(self.setup.text()))
        self._update_send()
        self.sent.hide()
        self._show_alerts()
        self.watch_pane.set_data(self.history, self.watches, self.alerts)
        self.poll()
        self._watch()

    def _watch(self) -> None:
        from app.training.modelinfo import reward_hacking_note

        with self.ws.session() as s:
            note = reward_hacking_note(s, self.run_id) if self.status == "finished" else None
        self.watch.setText(f"⚠ {html.escape(note)}" if note else "")
        self.watch.setVisible(bool(note))

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
            if e["event"] == "checkpoint":
                self.checkpoint = e.get("path")
            if e["event"] == "log" and e.get("metrics") and "train_runtime" not in e["metrics"]:
                self.history.append({"step": e["step"], **e["metrics"]})
                self.max_steps = e.get("max_steps") or 0
                self.eta = e.get("eta_s")
            if e["event"] == "watch":
                self.watches.append(e)
            if e["event"] == "alert":
                self.alerts.append(e)
        if new:
            self._redraw()
            self.watch_pane.set_data(self.history, self.watches, self.alerts)
            self._show_alerts()
        self.episodes_pane.poll()
        self._update_header()
        self._tail_log()
        self.cancel_button.setEnabled(self.status == "running")
        self.resume_button.setEnabled(
            self.status in ("cancelled", "failed") and self.checkpoint is not None
        )
        row = self.table.currentIndex().row()
        if 0 <= row < self.model.rowCount() and self.model.row(row)["status"] != self.status:
            self.model.replace_row(row, {**self.model.row(row), "status": self.status})

    def _show_alerts(self) -> None:
        """The watch's alerts, prominently: reward rising while KL, length or copying
        degrade is the signature of reward hacking."""
        self.alert_banner.setVisible(bool(self.alerts))
        if self.alerts:
            lines = [
                f"⚠ step {a.get('step')}: {html.escape(str(a.get('message', a.get('kind'))))}"
                for a in self.alerts[-3:]
            ]
            more = len(self.alerts) - 3
            self.alert_banner.setText(
                "Reward-hacking watch: "
                + "<br>".join(lines)
                + (f"<br>(and {more} earlier alerts)" if more > 0 else "")
                + "<br><span style='font-weight:normal'>Read the held-out episodes "
                "(Episodes tab) or send them to judges before trusting this run.</span>"
            )

    def _update_send(self) -> None:
        self.send_button.setEnabled(self.episodes_pane.heldout > 0)

    def send_heldout(self) -> None:
        """One click: the held-out episodes to every active judge, two per episode, in a
        new round (on the executor; a second click adds nothing and says so)."""
        if self.run_id is None:
            return
        run_id, actor = self.run_id, self.user.id
        self.send_button.setEnabled(False)

        def send(s) -> dict[str, Any]:
            judges, k = episodes.default_judges(s)
            name = episodes.round_name(s, run_id)
            rnd = episodes.episodes_to_round(s, run_id, name, judges, k, created_by=actor)
            return {
                "round": rnd.name,
                "new": rnd.name == name,
                "selection": dict(rnd.selection),
                "judges": len(judges),
                "k": rnd.overlap,
            }

        self.executor.submit(send, self._sent, self._send_failed, "send held-out")

    def _sent(self, r: dict[str, Any]) -> None:
        self._update_send()
        sel = r["selection"]
        self.sent.setStyleSheet("color: #1a7f37")
        self.sent.setText(
            f"Sent {sel['n_traces']} held-out episodes to {r['judges']} judges "
            f"({r['k']} per episode) as round “{html.escape(r['round'])}”."
            if r["new"]
            else f"Every held-out episode is with judges already (round “"
            f"{html.escape(r['round'])}”): nothing sent twice."
        )
        self.sent.show()

    def _send_failed(self, exc: BaseException) -> None:
        self._update_send()
        self.sent.setStyleSheet("color: #b42318")
        self.sent.setText(html.escape(str(exc)))
        self.sent.show()

    def _update_header(self) -> None:
        status, total = self.status, self.max_steps
        step = self.history[-1]["step"] if self.history else 0
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(total if status == "finished" and total else step)
        eta, error = self.eta, self.error
        eta_text = f", about {eta:.0f} s left" if eta is not None and status == "running" else ""
        colour = {"finished": "#1a7f37", "failed": "#b42318", "cancelled": "#9a6700"}.get(
            status, "inherit"
        )
        self.title.setText(
            f"<b>{html.escape(self.name)}</b>: <span style='color:{colour}'>{status}</span> · step "
            f"{step}/{total or '?'}{eta_text}"
            + (f"<br><span style='color:#b42318'>{html.escape(error)}</span>" if error else "")
        )

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
        lines = [
            runs.format_event(x).rstrip("\n") if x.startswith(b"{") else x.decode(errors="replace")
            for x in raw
        ]
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
        return {
            key: [h[key] for h in self.history if key in h]
            for key, _ in self.PLOTS.get(self.algorithm, [])
        }

    def new_run(self) -> None:
        dlg = RunConfigDialog(self.ws, self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.run_id is not None:
            self.select_run(dlg.run_id)

    def evaluate(self) -> None:
        """The selected run against its base, in the trainer process (issue 11)."""
        from ui.training.evaluate_dialog import EvaluateDialog

        if self.run_id is None:
            return
        name = next(r["name"] for r in self._rows if r["id"] == self.run_id)
        dlg = EvaluateDialog(self.ws, name, self)
        if dlg.exec() and dlg.started:
            self.log.appendPlainText(f"evaluation {dlg.started} started (see Training > Models)")

    def cancel(self) -> None:
        if self.run_id is not None:
            with self.ws.session() as s:
                self.log.appendPlainText(runs.cancel_run(s, self.run_id))

    def resume(self) -> bool:
        """Start the selected run again from its last checkpoint, in its own process."""
        if self.run_id is None:
            return False
        try:
            with self.ws.session() as s:
                run = runs.prepare_resume(s, self.run_id)
                runs.launch(s, run)
                self.status, self.error, self.pid = run.status, None, run.pid
                self.log.appendPlainText(f"resuming from {run.config['resume_from']}")
        except ChambersError as exc:
            self.log.appendPlainText(str(exc))
            return False
        self.poll()
        return True

    def done(self, result: int) -> None:
        self.timer.stop()
        if self._owns_executor:
            self.executor.shutdown()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._owns_executor:
            self.executor.shutdown()
        self.timer.stop()  # the run itself goes on
        super().closeEvent(event)
