"""Review rounds: which traces, which judges, how much overlap; progress per judge."""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Qt, Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
)
from sqlalchemy import select  # noqa: E402

from app.review.rounds import create_round, progress  # noqa: E402
from app.review.rubrics import version_choices  # noqa: E402
from app.traces.queries import TraceFilter  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge, ReviewRound, RubricVersion  # noqa: E402
from ui.lead.agreement_dashboard import _e  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Review rounds


class RoundDialog(QDialog):
    """Create a review round: traces (all, filtered, seeded sample), judges, overlap k,
    calibration items; shows every round's per-judge progress."""

    created = Signal()

    def __init__(self, ws: Workspace, lead: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.lead = lead
        self.setWindowTitle("Review rounds")
        self.resize(900, 640)
        lay = QHBoxLayout(self)
        form_box = QGroupBox("New round")
        form = QFormLayout(form_box)
        self.name = QLineEdit()
        self.version = QComboBox()
        self.judges = QListWidget()
        self.overlap = QSpinBox()
        self.overlap.setRange(1, 50)
        self.overlap.setValue(2)
        self.source = QLineEdit()
        self.source.setPlaceholderText("any source")
        self.search = QLineEdit()
        self.search.setPlaceholderText("any text")
        self.sample = QSpinBox()
        self.sample.setRange(0, 10_000_000)
        self.sample.setSpecialValueText("all matching traces")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.calibration = QLineEdit()
        self.calibration.setPlaceholderText("trace ids with a gold answer, e.g. 12, 40, 77")
        form.addRow("Name", self.name)
        form.addRow("Rubric version", self.version)
        form.addRow("Judges", self.judges)
        form.addRow("Overlap k (judges per trace)", self.overlap)
        form.addRow("Source", self.source)
        form.addRow("Contains", self.search)
        form.addRow("Random sample of", self.sample)
        form.addRow("Seed", self.seed)
        form.addRow("Calibration items", self.calibration)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b42318;")
        form.addRow(self.problems)
        self.create_button = QPushButton("Create round")
        self.create_button.clicked.connect(self.create)
        form.addRow(self.create_button)
        lay.addWidget(form_box, 1)
        right = QGroupBox("Progress")
        rl = QVBoxLayout(right)
        self.progress_view = QTextBrowser()
        rl.addWidget(self.progress_view)
        lay.addWidget(right, 1)
        with ws.session() as s:
            for label, v in version_choices(s):
                self.version.addItem(label, v.id)
            for j in s.scalars(select(Judge).where(Judge.active).order_by(Judge.name)):
                item = QListWidgetItem(f"{j.name} ({j.role})")
                item.setData(Qt.ItemDataRole.UserRole, j.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if j.role == "judge" else Qt.CheckState.Unchecked
                )
                self.judges.addItem(item)
        self.refresh_progress()

    def selected_judges(self) -> list[int]:
        return [
            self.judges.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.judges.count())
            if self.judges.item(i).checkState() == Qt.CheckState.Checked
        ]

    def create(self) -> bool:
        try:
            cal = [int(x) for x in self.calibration.text().replace(" ", "").split(",") if x]
        except ValueError:
            self.problems.setText("Calibration items: trace ids separated by commas.")
            return False
        if not self.name.text().strip():
            self.problems.setText("Give the round a name.")
            return False
        flt = TraceFilter(
            source=self.source.text().strip() or None, search=self.search.text().strip() or None
        )
        try:
            with self.ws.session() as s:
                rnd = create_round(
                    s,
                    self.name.text().strip(),
                    self.version.currentData(),
                    self.selected_judges(),
                    self.overlap.value(),
                    flt,
                    self.sample.value() or None,
                    self.seed.value(),
                    cal or None,
                    self.lead.id,
                )
                n = rnd.selection["n_traces"]
        except ChambersError as exc:
            self.problems.setText(f"Could not create the round: {exc}")
            return False
        self.problems.setStyleSheet("color: #1a7f37;")
        self.problems.setText(f"Created {self.name.text().strip()!r}: {n} traces.")
        self.refresh_progress()
        self.created.emit()
        return True

    def refresh_progress(self) -> None:
        parts = []
        with self.ws.session() as s:
            for rnd in s.scalars(select(ReviewRound).order_by(ReviewRound.created_at.desc())):
                rows = progress(s, rnd.id)
                v = s.get(RubricVersion, rnd.rubric_version_id)
                parts.append(
                    f"<h4>{_e(rnd.name)} <small>(v{v.version}, k={rnd.overlap}, "
                    f"{rnd.created_at:%Y-%m-%d})</small></h4><table>"
                )
                for r in rows:
                    pct = 100 * r["submitted"] / r["assigned"] if r["assigned"] else 0
                    parts.append(
                        f"<tr><td>{_e(r['judge'])}</td><td align=right>"
                        f"{r['submitted']} / {r['assigned']}</td>"
                        f"<td align=right>{pct:.0f}%</td></tr>"
                    )
                parts.append("</table>")
        self.progress_view.setHtml("".join(parts) or "No rounds yet.")
