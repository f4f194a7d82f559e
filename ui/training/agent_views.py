"""What an agent GRPO run shows besides its loss (issue 13): the episodes it logged, rendered
like traces with their tool calls and results, and the reward-hacking watch with the
observation cross-entropy (ECHO), plotted over steps.

The episodes file grows while the run trains: it is tailed from a byte offset on the
workspace executor's thread, so a large file never stalls the screen.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.training import episodes  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from ui.widgets.chart_box import ChartBox  # noqa: E402
from ui.widgets.executor import WorkspaceExecutor  # noqa: E402
from ui.widgets.lazy_model import Column, LazyTableModel  # noqa: E402
from ui.widgets.trace_view import TraceView  # noqa: E402


def _num(v: Any, fmt: str = ".3f") -> str:
    return "" if v is None else format(v, fmt)


EPISODE_COLUMNS = (
    Column("step", lambda e: str(e["step"]), numeric=True),
    Column("split", lambda e: e["split"]),
    Column("reward", lambda e: _num(e["reward"]), numeric=True),
    Column(
        "per grader",
        lambda e: "  ".join(f"{k} {v:.2f}" for k, v in e["rewards"].items()),
    ),
    Column("tool calls", lambda e: str(e["tool_calls"]), numeric=True),
    Column("tokens", lambda e: str(e.get("completion_tokens") or ""), numeric=True),
    Column("copies prompt", lambda e: "yes" if e.get("copied_prompt") else ""),
    Column("task", lambda e: e.get("task_text", ""), tooltip=lambda e: e.get("task_text")),
)


def _task_text(task: dict[str, Any] | None) -> str:
    """The task's user message in one line (the table's task column)."""
    prompt = (task or {}).get("prompt") or []
    user = next((m for m in prompt if isinstance(m, dict) and m.get("role") == "user"), None)
    text = user.get("content") if user else ""
    return " ".join(text.split())[:120] if isinstance(text, str) else ""


class EpisodeView(TraceView):
    """One episode in the trace view: the task's prompt, then the model's turns, tool calls
    and the environment's results."""

    def __init__(self, parent=None):
        super().__init__(parent, with_context=False)
        self.heading = ""

    def show_episode(self, ep: dict[str, Any], trace: dict[str, Any]) -> None:
        graders = ", ".join(f"{k} {v:.2f}" for k, v in ep["rewards"].items())
        self.heading = (
            f"<b>step {ep['step']}</b> · {ep['split']} · reward {_num(ep['reward'])}"
            + (f" ({escape(graders)})" if graders else "")
            + f" · {trace['n_tool_calls']} tool calls · line {ep['line']}"
        )
        self.show_trace({"id": ep["line"], "source": "episode", **trace})

    def _render(self, keep_scroll: bool = True) -> None:
        super()._render(keep_scroll)
        if self.trace is not None:
            self.title.setText(self.heading)


class EpisodesPane(QWidget):
    """The run's logged episodes (step, split, rewards, tool calls); the selected one shown."""

    loaded = Signal(int)  # how many episodes are listed after a read landed

    def __init__(self, executor: WorkspaceExecutor, parent=None):
        super().__init__(parent)
        self.executor = executor
        self.run_dir: str | None = None
        self.offset, self.next_line = 0, 1
        self.episodes: list[dict[str, Any]] = []
        self.tasks: dict[str, dict[str, Any]] | None = None
        self._reading = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.split = QComboBox()
        for label, value in (("all splits", None), ("held-out", "heldout"), ("train", "train")):
            self.split.addItem(label, value)
        self.split.currentIndexChanged.connect(self._show_rows)
        self.counts = QLabel()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.split)
        bar.addWidget(self.counts, 1)
        lay.addLayout(bar)
        self.model = LazyTableModel(EPISODE_COLUMNS, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.show_episode(cur.row())
        )
        self.view = EpisodeView()
        self.error = QLabel()
        self.error.setStyleSheet("color: #b42318")
        self.error.setWordWrap(True)
        self.error.hide()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.error)
        rl.addWidget(self.view, 1)
        split.addWidget(right)
        split.setSizes([200, 450])
        lay.addWidget(split, 1)

    def reset(self, run_dir: str) -> None:
        """Another run: forget the episodes; the next poll reads its file from the start."""
        self.run_dir, self.offset, self.next_line = run_dir, 0, 1
        self.episodes, self.tasks = [], None
        self.error.hide()
        self.view.show_trace(None)
        self._show_rows()

    def poll(self) -> None:
        """Read the lines appended since the last read, off the UI thread (one at a time)."""
        if self.run_dir is None or self._reading:
            return
        run_dir, offset, line = self.run_dir, self.offset, self.next_line
        need_tasks = self.tasks is None
        self._reading = True

        def read(_session) -> tuple[str, Any, Any]:
            tasks = episodes.task_prompts(run_dir) if need_tasks else None
            return run_dir, tasks, episodes.read_episodes_since(run_dir, offset, line)

        self.executor.submit(read, self._landed, self._failed, "episodes")

    def _landed(self, result: tuple[str, Any, Any]) -> None:
        self._reading = False
        run_dir, tasks, (new, offset, line) = result
        if run_dir != self.run_dir:
            return  # a read for a run no longer shown
        if tasks is not None:
            self.tasks = tasks
        self.offset, self.next_line = offset, line
        if new:
            for e in new:
                e["task_text"] = _task_text((self.tasks or {}).get(e["task_key"]))
            self.episodes += new
            self._show_rows()
        self.loaded.emit(self.model.total)

    def _failed(self, exc: BaseException) -> None:
        self._reading = False
        self.error.setText(str(exc))
        self.error.show()

    @property
    def heldout(self) -> int:
        return sum(1 for e in self.episodes if e["split"] == "heldout")

    def _show_rows(self, *_a) -> None:
        """The episodes of the chosen split, newest step first; the selection kept."""
        split = self.split.currentData()
        current = self.selected()
        rows = [e for e in self.episodes if split is None or e["split"] == split]
        rows.sort(key=lambda e: (-e["step"], e["line"]))
        self.model.set_rows(rows)
        held = self.heldout
        self.counts.setText(
            f"{len(self.episodes)} episodes logged ({held} held-out)"
            if self.episodes
            else "No episodes logged yet (agent GRPO logs them as it trains)"
        )
        if current is not None:
            i = self.model.find(lambda e: e["line"] == current["line"])
            if i is not None:
                self.table.selectRow(i)

    def selected(self) -> dict[str, Any] | None:
        row = self.table.currentIndex().row()
        return self.model.row(row) if 0 <= row < self.model.rowCount() else None

    def show_episode(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        ep = self.model.row(row)
        task = (self.tasks or {}).get(ep["task_key"])
        try:
            trace = episodes.episode_trace(ep, task)
        except ChambersError as exc:
            self.error.setText(f"{Path(self.run_dir or '') / episodes.EPISODES_FILE}: {exc}")
            self.error.show()
            self.view.show_trace(None)
            return
        self.error.hide()
        self.view.show_episode(ep, trace)


def run_setup(run_dir: str) -> str:
    """What an agent GRPO run was started with, in one line (from RUN/config.json): the
    environment and its tools, the prompts refused at preparation, β, ECHO's λ, the watch."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(config, dict) or config.get("algorithm") not in ("grpo", "sft"):
        return ""
    t = config.get("training") or {}
    parts = []
    env = config.get("environment")
    if isinstance(env, dict):
        what = (
            "replay of the reviewed traces"
            if env.get("kind") == "replay"
            else (Path(str(env.get("source") or env.get("path") or "")).name)
        )
        tools = ", ".join(str(x) for x in env.get("tools") or [])
        parts.append(f"environment: {what}" + (f" (tools {tools})" if tools else ""))
    refused = (config.get("data") or {}).get("refused") or {}
    if refused:
        parts.append(
            "refused at preparation: " + "; ".join(f"{n} {why}" for why, n in refused.items())
        )
    if config.get("algorithm") == "grpo":
        parts.append(f"β {t.get('beta', 0):g}")
        if t.get("watch_steps"):
            parts.append(
                f"watch every {_n(t['watch_steps'], 'step')} on "
                f"{_n(t.get('watch_prompts') or 0, 'held-out prompt')}"
            )
        else:
            parts.append("watch off")
    if t.get("echo_lambda"):
        parts.append(f"ECHO λ {t['echo_lambda']:g}")
    return " · ".join(escape(p) for p in parts)


# ---------------------------------------------------------------------------------------------
# The watch and the observation cross-entropy

WATCH_PLOTS = (
    ("reward_mean", "held-out reward"),
    ("kl", "KL to the base model"),
    ("completion_length", "completion length"),
    ("copy_share", "share copying the prompt"),
)


def _series(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]


class WatchPane(QWidget):
    """The reward-hacking watch's metrics over steps (alerts marked), and the observation
    cross-entropy on training batches and held-out episodes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.watches: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel()
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.watch_chart = ChartBox("reward-hacking watch")
        self.watch_chart.set_figure(Figure(figsize=(8, 2.6), layout="constrained"))
        lay.addWidget(self.watch_chart, 3)
        self.obs_chart = ChartBox("observation cross-entropy")
        self.obs_chart.set_figure(Figure(figsize=(8, 2.2), layout="constrained"))
        lay.addWidget(self.obs_chart, 2)
        self.redraw()

    def set_data(
        self,
        history: list[dict[str, Any]],
        watches: list[dict[str, Any]],
        alerts: list[dict[str, Any]],
    ) -> None:
        self.history, self.watches, self.alerts = history, watches, alerts
        self.redraw()

    def plotted(self) -> dict[str, list[tuple[int, float]]]:
        """Each plotted line as (step, value) points, for tests and exports."""
        out = {key: _series(self.watches, key) for key, _ in WATCH_PLOTS}
        graders = sorted({g for w in self.watches for g in (w.get("rewards") or {})})
        for g in graders:
            out[f"reward/{g}"] = [
                (w["step"], w["rewards"][g])
                for w in self.watches
                if isinstance((w.get("rewards") or {}).get(g), int | float)
            ]
        out["obs_ce/train"] = _series(self.history, "obs_ce")
        out["obs_ce/heldout"] = _series(self.watches, "obs_ce")
        out["echo_loss"] = _series(self.history, "echo_loss")
        return out

    def redraw(self) -> None:
        data = self.plotted()
        alert_steps = sorted({a["step"] for a in self.alerts if isinstance(a.get("step"), int)})
        fig = self.watch_chart.fig
        fig.clear()
        for i, (key, label) in enumerate(WATCH_PLOTS):
            ax = fig.add_subplot(1, len(WATCH_PLOTS), i + 1)
            _line(ax, data[key], label if key != "reward_mean" else "total")
            if key == "reward_mean":
                for name in (k for k in data if k.startswith("reward/")):
                    _line(ax, data[name], name.split("/", 1)[1], dashed=True)
                if len(ax.lines) > 1:
                    ax.legend(fontsize=6)
            for s in alert_steps:
                ax.axvline(s, color="#b42318", lw=1, ls=":")
            _axes(ax, label)
        self.watch_chart.canvas.draw_idle()
        fig = self.obs_chart.fig
        fig.clear()
        ax = fig.add_subplot(1, 1, 1)
        _line(ax, data["obs_ce/train"], "train batches")
        _line(ax, data["obs_ce/heldout"], "held-out episodes")
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                "no observation tokens logged: the run's episodes hold no tool results yet\n"
                "(agent GRPO with an environment, or SFT on steps after tool results, log it)",
                ha="center",
                va="center",
                fontsize=8,
                color="#6a7078",
                transform=ax.transAxes,
            )
        _axes(ax, "cross-entropy on observation (tool-result) tokens")
        self.obs_chart.canvas.draw_idle()
        self.note.setText(
            f"{_n(len(self.watches), 'watch')} on held-out prompts"
            + (f", {_n(len(self.alerts), 'alert')}" if self.alerts else "")
            if self.watches
            else "No watch yet: agent GRPO runs with “watch every N steps” generate on "
            "held-out prompts and report reward, KL, length and prompt copying here."
        )


def _line(ax, pts: list[tuple[int, float]], label: str, dashed: bool = False) -> None:
    if pts:
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            ms=3,
            ls="--" if dashed else "-",
            label=label,
        )


def _axes(ax, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))  # no offset text
    ax.tick_params(labelsize=7)


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('ch') else 's'}"
