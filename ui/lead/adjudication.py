"""Adjudication: every judge's review side by side and the lead's gold verdict."""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.review.adjudication import (
    AdjudicationError,  # noqa: E402
    adjudicate,
    get_adjudication,
    reviews_of,
)
from app.review.rubrics import (  # noqa: E402
    specs_of,
)
from app.traces.queries import get_trace, trace_dict  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge, RubricVersion  # noqa: E402
from ui.lead.agreement_dashboard import _e  # noqa: E402
from ui.lead.step_labels_view import StepLabelsTable  # noqa: E402
from ui.widgets.rubric_panel import RubricPanel  # noqa: E402
from ui.widgets.trace_view import TraceView, palette_colors  # noqa: E402
from ui.widgets.word_diff_view import render_correction  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Adjudication


class AdjudicationDialog(QDialog):
    """Every judge's review of one trace side by side; the lead's verdict becomes gold."""

    adjudicated = Signal(int)

    def __init__(self, ws: Workspace, lead: Judge, trace_id: int, version_id: int, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.lead = lead
        self.trace_id = trace_id
        self.version_id = version_id
        self.setWindowTitle(f"Adjudicate trace {trace_id}")
        self.resize(1400, 860)
        lay = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.trace_view = TraceView(with_context=False)  # room for the reviews beside it
        split.addWidget(self.trace_view)
        middle = QTabWidget()
        self.side_by_side = QTableWidget()
        self.side_by_side.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.side_by_side.setWordWrap(True)
        self.side_by_side.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        middle.addTab(self.side_by_side, "Reviews side by side")
        self.corrections = QTextBrowser()
        middle.addTab(self.corrections, "Corrections (diffs)")
        self.step_labels = StepLabelsTable()
        middle.addTab(self.step_labels, "Step labels")
        split.addWidget(middle)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(QLabel("<b>Final verdict</b> (becomes gold)"))
        self.panel = RubricPanel()
        self.panel.submit_button.setText("Record verdict  (Ctrl+Enter)")
        self.panel.submit_requested.connect(self.record)
        rl.addWidget(self.panel, 1)
        split.addWidget(right)
        split.setSizes([520, 520, 360])
        lay.addWidget(split, 1)
        self.message = QLabel()
        lay.addWidget(self.message)
        self._load()

    def _load(self) -> None:
        with self.ws.session() as s:
            trace = get_trace(s, self.trace_id)
            version = s.get(RubricVersion, self.version_id)
            self.trace_view.show_trace(trace_dict(trace))
            specs = specs_of(version)
            self.specs = specs
            self.panel.set_rubric(f"{version.rubric.name} v{version.version}", specs)
            reviews = reviews_of(s, self.trace_id, self.version_id)
            rows = ["decision"] + [c.key for c in specs] + ["rationale", "correction"]
            self.side_by_side.setColumnCount(len(reviews))
            self.side_by_side.setRowCount(len(rows))
            self.side_by_side.setHorizontalHeaderLabels([name for _, name in reviews])
            self.side_by_side.setVerticalHeaderLabels(rows)
            diffs = []
            for j, (r, name) in enumerate(reviews):
                values = [r.decision or ""]
                for c in specs:
                    v = r.scores.get(c.key)
                    if v is None:
                        values.append("")
                    elif c.scale == "binary":
                        values.append("pass" if v in (1, True) else "fail")
                    else:
                        values.append(str(v))
                values.append(r.rationale)
                values.append("yes" if r.corrected_output else "")
                for i, text in enumerate(values):
                    item = QTableWidgetItem(text)
                    item.setToolTip(text)  # long rationales are elided in the cell
                    self.side_by_side.setItem(i, j, item)
                if r.corrected_messages or r.corrected_output:  # word diffs, steps in place
                    diffs.append(
                        f"<h4>{_e(name)}</h4>"
                        + render_correction(
                            trace.messages,
                            r.corrected_messages,
                            r.corrected_output,
                            palette_colors(self.palette()),
                        )
                    )
            self.step_labels.fill(trace.messages, [(n, r.step_labels) for r, n in reviews])
            self._mark_disagreements(len(rows))
            self.side_by_side.resizeRowsToContents()
            self.corrections.setHtml("".join(diffs) or "No judge wrote a correction.")
            adj = get_adjudication(s, self.trace_id, self.version_id)
            if adj is not None:
                self.panel.load(adj.decision, adj.scores, adj.rationale)
                self.message.setText(
                    f"Gold recorded {adj.created_at:%Y-%m-%d}; recording "
                    "again replaces it (the audit log keeps the old one)."
                )
            elif reviews:
                # start from the majority decision, so agreeing cases take one keystroke
                top = Counter(r.decision for r, _ in reviews).most_common(1)[0][0]
                scores = {}
                for c in specs:
                    vals = [
                        r.scores.get(c.key) for r, _ in reviews if r.scores.get(c.key) is not None
                    ]
                    if vals:
                        scores[c.key] = Counter(vals).most_common(1)[0][0]
                self.panel.load(top, scores, "")
                self.message.setText(
                    "Pre-filled with the judges' majority; change what is wrong and record."
                )

    def _mark_disagreements(self, n_rows: int) -> None:
        for i in range(n_rows - 2):
            texts = {
                self.side_by_side.item(i, j).text()
                for j in range(self.side_by_side.columnCount())
                if self.side_by_side.item(i, j) and self.side_by_side.item(i, j).text()
            }
            if len(texts) > 1:
                for j in range(self.side_by_side.columnCount()):
                    it = self.side_by_side.item(i, j)
                    if it:
                        it.setBackground(QColor("#fde2e1"))
                        it.setForeground(QColor("#3b0d0c"))

    def record(self) -> bool:
        decision = self.panel.decision()
        if decision is None:
            self.panel.show_problems(["Choose approve, modify or reject."])
            return False
        try:
            with self.ws.session() as s:
                adjudicate(
                    s,
                    self.trace_id,
                    self.version_id,
                    self.lead.id,
                    decision,
                    self.panel.scores(),
                    self.panel.rationale.toPlainText().strip(),
                )
        except AdjudicationError as exc:
            self.panel.show_problems(exc.problems)
            return False
        except ChambersError as exc:
            self.panel.show_problems([str(exc)])
            return False
        self.panel.show_problems([])
        self.message.setText("Verdict recorded as gold.")
        self.adjudicated.emit(self.trace_id)
        return True
