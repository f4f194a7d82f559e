"""Preference pairs: filters, counts, the rejected -> chosen diff, snapshots."""

from __future__ import annotations

import html
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
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
)
from sqlalchemy import select  # noqa: E402

from app.review.rubrics import version_choices  # noqa: E402
from app.training import pairs as pr  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge  # noqa: E402
from ui.widgets.render import render_diff  # noqa: E402
from ui.widgets.trace_view import palette_colors  # noqa: E402

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
        lay.addLayout(form)
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
            for label, v in version_choices(s):
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
            + " · "
            + ", ".join(f"{k} {v}" for k, v in st["by_rule"].items())
        )
        self.table.setRowCount(len(rows))
        for i, (p, split) in enumerate(rows):
            cells = [
                str(p.id),
                p.rule,
                split,
                "" if p.margin is None else f"{p.margin:.3f}",
                ", ".join(map(str, p.provenance.get("trace_ids", []))),
                ", ".join(names.get(j, str(j)) for j in p.provenance.get("judge_ids", [])),
            ]
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
            f"<p><b>Pair {p.id}</b> ({p.rule}, {split}); provenance: reviews "
            f"{p.provenance.get('review_ids')}, traces {p.provenance.get('trace_ids')}</p>"
            f"<p><b>Prompt (last lines)</b><br><span style='color:gray'>{prompt}</span></p>"
            "<p><b>Rejected → chosen</b></p>"
            + render_diff(lines or [" (identical)"], palette_colors(self.palette()))
        )

    def _ask_snapshot(self) -> None:
        name, ok = QInputDialog.getText(self, "Create snapshot", "Snapshot name")
        if ok and name.strip():
            self.create_snapshot(name.strip())

    def create_snapshot(self, name: str) -> bool:
        try:
            with self.ws.session() as s:
                snap = pr.create_snapshot(s, name, self.current_filter(), self.user.id)
                msg = f"Snapshot {name!r}: {snap.counts['pairs']} pairs, sha256 {snap.sha256[:16]}…"
        except ChambersError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText(msg)
        self.snapshot_created.emit(name)
        return True
