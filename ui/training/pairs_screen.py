"""Preference pairs: filters, counts, the rejected -> chosen diff, snapshots."""

from __future__ import annotations

import html
import json
import os
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
)

from app.review.rubrics import version_choices  # noqa: E402
from app.training import pairs as pr  # noqa: E402
from app.training.pair_table import (  # noqa: E402
    PairDetail,
    PairRow,
    PairTable,
    pair_detail,
    pair_table,
    snapshot_message,
)
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge  # noqa: E402
from ui.widgets.executor import Job, WorkspaceExecutor  # noqa: E402
from ui.widgets.lazy_model import Column, LazyTableModel  # noqa: E402
from ui.widgets.render import render_diff  # noqa: E402
from ui.widgets.trace_view import palette_colors  # noqa: E402

RULE_HELP = (
    "Each pair is one assistant step: <b>chosen</b> and <b>rejected</b> are single assistant "
    "messages, the prompt is everything before them, with the trace's tools. "
    "<b>modify</b>: each step a judge's correction changed, after the corrected history. "
    "<b>first_error</b>: the modify pair at the step the judge marked as the first error. "
    "<b>reject_with_answer</b>: the judge's written answer against the agent's last step. "
    "<b>ranked</b>: two runs of one task with different weighted rubric scores, at the first "
    "step where their actions differ (copied ids ignored), at most N per task. A lead's "
    "verdict wins over the judges. The held-out share counts pairs; no task is on both sides."
)


def _messages_text(messages: list[dict[str, Any]]) -> list[str]:
    lines = []
    for m in messages:
        lines.append(f"[{m['role']}]")
        if m.get("content"):
            lines += str(m["content"]).splitlines()
        for c in m.get("tool_calls") or []:
            f = c["function"]
            args = json.dumps(f.get("arguments"), ensure_ascii=False, sort_keys=True)
            lines.append(f"→ {f['name']}({args})")
    return lines


PAIR_COLUMNS = (
    Column("id", lambda r: str(r.pair_id), numeric=True),
    Column("rule", lambda r: r.rule),
    Column("split", lambda r: r.split),
    Column("margin", lambda r: "" if r.margin is None else f"{r.margin:.3f}", numeric=True),
    Column("traces", lambda r: r.trace_ids),
    Column("judges", lambda r: r.judges, tooltip=lambda r: r.judges),
)


class PairsDialog(QDialog):
    """Filter the pairs the reviews yield, see chosen vs rejected, create snapshots."""

    snapshot_created = Signal(str)
    snapshot_failed = Signal(str)
    loaded = Signal(int)  # rows selected
    pair_shown = Signal(int)  # pair id

    def __init__(
        self, ws: Workspace, user: Judge, parent=None, executor: WorkspaceExecutor | None = None
    ):
        super().__init__(parent)
        self.ws = ws
        self.user = user
        self.executor = executor or WorkspaceExecutor(ws)
        self._owns_executor = executor is None
        self._job: Job | None = None
        self._detail_job: Job | None = None
        self.rows: list[PairRow] = []
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
        self.max_per_task = QSpinBox()
        self.max_per_task.setRange(0, 10_000)
        self.max_per_task.setValue(pr.DEFAULT_MAX_PER_TASK)
        self.max_per_task.setSpecialValueText("no cap")
        self.max_per_task.setToolTip("Ranked pairs kept per task, largest score margins first")
        form.addWidget(self.version)
        for b in self.rules.values():
            b.setChecked(True)
            form.addWidget(b)
        form.addWidget(self.adjudicated)
        form.addWidget(QLabel("min agreement"))
        form.addWidget(self.min_agreement)
        form.addWidget(QLabel("min margin"))
        form.addWidget(self.min_margin)
        form.addWidget(QLabel("ranked per task"))
        form.addWidget(self.max_per_task)
        form.addWidget(QLabel("held out"))
        form.addWidget(self.heldout)
        lay.addLayout(form)
        self.judges = QLineEdit()
        self.judges.setPlaceholderText("judges (comma-separated)")
        self.since = QLineEdit()
        self.since.setPlaceholderText("since YYYY-MM-DD")
        self.until = QLineEdit()
        self.until.setPlaceholderText("until YYYY-MM-DD")
        who = QHBoxLayout()  # a row of their own: the placeholders say what goes in, whole
        for w in (self.judges, self.since, self.until):
            w.setMinimumWidth(w.fontMetrics().horizontalAdvance(w.placeholderText()) + 24)
            w.returnPressed.connect(self.refresh)
            who.addWidget(w)
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.refresh)
        who.addWidget(self.apply_button)
        who.addStretch(1)
        lay.addLayout(who)
        self.counts = QLabel()
        lay.addWidget(self.counts)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = LazyTableModel(PAIR_COLUMNS, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for col, width in enumerate((60, 130, 70, 70, 110)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.show_pair(cur.row())
        )
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
        with ws.session() as s:  # a handful of rubric versions
            for label, v in version_choices(s):
                self.version.addItem(label, v.id)
        self.refresh()

    def current_filter(self) -> pr.PairFilter:
        """The filter as set in the widgets (judge names are resolved by the query)."""
        return pr.PairFilter(
            since=self.since.text().strip() or None,
            until=self.until.text().strip() or None,
            rubric_version_id=self.version.currentData(),
            rules=[r for r, b in self.rules.items() if b.isChecked()] or None,
            adjudicated_only=self.adjudicated.isChecked(),
            min_agreement=self.min_agreement.value() or None,
            min_margin=self.min_margin.value() or None,
            max_per_task=self.max_per_task.value() or None,
            heldout=self.heldout.value(),
        )

    def judge_names(self) -> list[str]:
        return [n.strip() for n in self.judges.text().split(",") if n.strip()]

    @property
    def busy(self) -> bool:
        """A derivation, selection or snapshot is running on the executor."""
        return self._job is not None and not self._job.finished

    def _set_busy(self, text: str | None) -> None:
        for w in (self.apply_button, self.snapshot_button):
            w.setEnabled(text is None)
        if text is not None:
            self.counts.setText(text)

    def refresh(self) -> None:
        """Derive and select on the executor; the table fills when the rows arrive."""
        if self.busy:
            return
        flt, names = self.current_filter(), self.judge_names()
        self._set_busy("Deriving and selecting pairs…")
        self._job = self.executor.submit(
            lambda s: pair_table(s, flt, names), self._loaded, self._failed, "pairs"
        )

    def _loaded(self, table: PairTable) -> None:
        self._set_busy(None)
        self.rows = table.rows
        st = table.stats
        self.counts.setText(
            f"{st['pairs']} pairs · "
            + " · ".join(
                f"{k}: {v} ({st['tasks'].get(k, 0)} tasks)" for k, v in st["by_split"].items()
            )
            + " · "
            + ", ".join(f"{k} {v}" for k, v in st["by_rule"].items())
            + (
                f" · last derivation: +{sum(table.derived.added.values())} "
                f"−{sum(table.derived.removed.values())}"
                if table.derived is not None
                else ""
            )
        )
        self.model.set_rows(table.rows)
        if table.rows:
            self.table.selectRow(0)
        else:
            self.diff.setHtml("No pairs match these filters.")
        self.loaded.emit(len(table.rows))

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(None)
        self.counts.setText("")
        self.message.setText(_message(exc))

    def show_pair(self, row: int) -> None:
        """Read the selected pair in full on the executor, then show its diff."""
        if not 0 <= row < len(self.rows):
            return
        pair_id, split = self.rows[row].pair_id, self.rows[row].split
        if self._detail_job is not None:
            self._detail_job.cancel()  # the user moved on: only the last one is shown
        self._detail_job = self.executor.submit(
            lambda s: pair_detail(s, pair_id),
            lambda d: self._show_detail(d, split),
            lambda exc: self.message.setText(_message(exc)),
            "pair",
        )

    def _show_detail(self, p: PairDetail, split: str) -> None:
        import difflib

        lines = list(
            difflib.unified_diff(
                _messages_text(p.rejected),
                _messages_text(p.chosen),
                "rejected",
                "chosen",
                lineterm="",
                n=3,
            )
        )
        prompt = "<br>".join(html.escape(x) for x in _messages_text(p.prompt)[-12:])
        self.diff.setHtml(
            f"<p><b>Pair {p.pair_id}</b> ({p.rule}, {split}, step {p.provenance.get('step')}, "
            f"{len(p.provenance.get('tools') or [])} tools); provenance: reviews "
            f"{p.provenance.get('review_ids')}, traces {p.provenance.get('trace_ids')}</p>"
            f"<p><b>Prompt (last lines)</b><br><span style='color:gray'>{prompt}</span></p>"
            "<p><b>Rejected → chosen</b></p>"
            + render_diff(lines or [" (identical)"], palette_colors(self.palette()))
        )
        self.pair_shown.emit(p.pair_id)

    def _ask_snapshot(self) -> None:
        name, ok = QInputDialog.getText(self, "Create snapshot", "Snapshot name")
        if ok and name.strip():
            self.create_snapshot(name.strip())

    def create_snapshot(self, name: str) -> Job | None:
        """Freeze the current selection on the executor; `snapshot_created` when written."""
        if self.busy:
            return None
        flt, names, user_id = self.current_filter(), self.judge_names(), self.user.id
        self.snapshot_button.setEnabled(False)
        self.message.setText(f"Creating snapshot {name!r}…")
        self._job = self.executor.submit(
            lambda s: snapshot_message(s, name, flt, names, user_id),
            lambda msg: self._snapshot_done(name, msg),
            self._snapshot_failed,
            "snapshot",
        )
        return self._job

    def _snapshot_done(self, name: str, msg: str) -> None:
        self.snapshot_button.setEnabled(True)
        self.message.setText(msg)
        self.snapshot_created.emit(name)

    def _snapshot_failed(self, exc: BaseException) -> None:
        self.snapshot_button.setEnabled(True)
        self.message.setText(_message(exc))
        self.snapshot_failed.emit(_message(exc))

    def done(self, result: int) -> None:
        self._release()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._release()
        super().closeEvent(event)

    def _release(self) -> None:
        if self._owns_executor:
            self.executor.shutdown()


def _message(exc: BaseException) -> str:
    """A problem in the user's terms (ChambersError), or the unexpected one named."""
    if isinstance(exc, ChambersError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
