"""Adjudication: every judge's review side by side and the lead's gold verdict."""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt, QTimer, Signal  # noqa: E402
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

from app.review.adjudication import (  # noqa: E402
    AdjudicationError,
    MajorityVerdict,
    SideBySide,
    adjudicate,
    get_adjudication,
    majority_verdict,
    record_adjudication_conflict,
    reviews_of,
    side_by_side,
)
from app.review.rubrics import (  # noqa: E402
    specs_of,
)
from app.traces.queries import get_trace, trace_dict  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError, ConflictError  # noqa: E402
from app.workspace.models import Judge, RubricVersion  # noqa: E402
from ui.lead.step_labels_view import StepLabelsTable  # noqa: E402
from ui.widgets.render import esc  # noqa: E402
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
        self.adj_version = 0  # the gold version this dialog read; a write names it
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
        # Rows are as tall as their text at the columns' current width: whole rationales.
        # (once the stretched columns have all taken their new width).
        self._fit_rows = QTimer(self, singleShot=True, interval=0)
        self._fit_rows.timeout.connect(self.side_by_side.resizeRowsToContents)
        self.side_by_side.horizontalHeader().sectionResized.connect(self._fit_rows.start)
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
        self.majority: MajorityVerdict | None = None
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
            self._fill_side_by_side(side_by_side(version, reviews))
            diffs = []
            for r, name in reviews:
                if r.corrected_messages or r.corrected_output:  # word diffs, steps in place
                    diffs.append(
                        f"<h4>{esc(name)}</h4>"
                        + render_correction(
                            trace.messages,
                            r.corrected_messages,
                            r.corrected_output,
                            palette_colors(self.palette()),
                        )
                    )
            self.step_labels.fill(trace.messages, [(n, r.step_labels) for r, n in reviews])
            self.corrections.setHtml("".join(diffs) or "No judge wrote a correction.")
            adj = get_adjudication(s, self.trace_id, self.version_id)
            self.adj_version = adj.version if adj is not None else 0
            if adj is not None:
                self.panel.load(adj.decision, adj.scores, adj.rationale)
                self.message.setText(
                    f"Gold recorded {adj.created_at:%Y-%m-%d}; recording "
                    "again replaces it (the audit log keeps the old one)."
                )
            elif reviews:
                # start from the majority, so agreeing cases take one keystroke; a tie is the
                # lead's to break, so no decision is chosen for them
                self.majority = majority_verdict(version, [r for r, _ in reviews])
                self.panel.load(self.majority.decision, self.majority.scores, "")
                if self.majority.tied:
                    split = ", ".join(f"{d} {n}" for d, n in sorted(self.majority.counts.items()))
                    self.message.setText(
                        f"The judges are split ({split}): choose the decision; scores every "
                        "judge agreed on are filled in."
                    )
                else:
                    self.message.setText(
                        "Pre-filled with the judges' majority; change what is wrong and record."
                    )

    def _fill_side_by_side(self, sbs: SideBySide) -> None:
        """Cells and the rows where judges differ, as app.review.adjudication computed them."""
        table = self.side_by_side
        table.setColumnCount(len(sbs.judges))
        table.setRowCount(len(sbs.row_keys))
        table.setHorizontalHeaderLabels(sbs.judges)
        table.setVerticalHeaderLabels(sbs.row_keys)
        for i, row in enumerate(sbs.cells):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text)  # long rationales are elided in the cell
                if sbs.disagree[i]:
                    item.setBackground(QColor("#fde2e1"))
                    item.setForeground(QColor("#3b0d0c"))
                table.setItem(i, j, item)
        table.resizeRowsToContents()

    def _conflict(self, exc: ConflictError) -> None:
        """Another lead recorded a verdict since this dialog opened: nothing was written; show
        theirs beside ours (both are in the audit log); recording again replaces theirs."""
        from ui.widgets.conflict_dialog import describe

        with self.ws.session() as s:
            theirs = record_adjudication_conflict(s, exc, self.lead.id)
            lead = s.get(Judge, theirs["lead_id"]) if theirs and theirs.get("lead_id") else None
            who = lead.name if lead is not None else "another lead"
        self.adj_version = theirs["version"] if theirs else 0
        self.panel.show_problems(
            [
                f"{who} recorded a verdict since you opened this trace; nothing was saved. "
                "Record again to replace theirs with yours, or close to keep theirs."
            ]
        )
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setText(
            f"<b>Theirs ({esc(who)})</b>{describe(theirs)}<b>Yours</b>{describe(exc.mine)}"
        )

    def record(self) -> bool:
        decision = self.panel.decision()
        if decision is None:
            self.panel.show_problems(["Choose approve, modify or reject."])
            return False
        try:
            with self.ws.session() as s:
                adj = adjudicate(
                    s,
                    self.trace_id,
                    self.version_id,
                    self.lead.id,
                    decision,
                    self.panel.scores(),
                    self.panel.rationale.toPlainText().strip(),
                    expected_version=self.adj_version,
                )
                self.adj_version = adj.version
        except ConflictError as exc:
            self._conflict(exc)
            return False
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
