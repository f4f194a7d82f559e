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

from app.review.reviews import active_judges  # noqa: E402
from app.review.rounds import all_progress, create_round  # noqa: E402
from app.review.rubrics import version_choices  # noqa: E402
from app.traces.queries import TraceFilter  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.models import Judge  # noqa: E402
from ui.widgets.executor import Job, WorkspaceExecutor  # noqa: E402
from ui.widgets.render import esc  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Review rounds


class RoundDialog(QDialog):
    """Create a review round: traces (all, filtered, seeded sample), judges, overlap k,
    calibration items; shows every round's per-judge progress."""

    created = Signal()
    failed = Signal(str)

    def __init__(
        self, ws: Workspace, lead: Judge, parent=None, executor: WorkspaceExecutor | None = None
    ):
        super().__init__(parent)
        # sampling a round out of 100,000 traces and counting progress run on the executor
        self.executor = executor or WorkspaceExecutor(ws)
        self._owns_executor = executor is None
        self._job: Job | None = None
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
            for judge_id, name, role in active_judges(s):
                item = QListWidgetItem(f"{name} ({role})")
                item.setData(Qt.ItemDataRole.UserRole, judge_id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if role == "judge" else Qt.CheckState.Unchecked
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
        """Check the form, then create the round on the executor (`created` or `failed`)."""
        try:
            cal = [int(x) for x in self.calibration.text().replace(" ", "").split(",") if x]
        except ValueError:
            self.problems.setText("Calibration items: trace ids separated by commas.")
            return False
        name = self.name.text().strip()
        if not name:
            self.problems.setText("Give the round a name.")
            return False
        if self._job is not None and not self._job.finished:
            return False
        flt = TraceFilter(
            source=self.source.text().strip() or None, search=self.search.text().strip() or None
        )
        args = (
            name,
            self.version.currentData(),
            self.selected_judges(),
            self.overlap.value(),
            flt,
            self.sample.value() or None,
            self.seed.value(),
            cal or None,
            self.lead.id,
        )
        self.create_button.setEnabled(False)
        self.problems.setStyleSheet("")
        self.problems.setText(f"Creating {name!r}…")
        self._job = self.executor.submit(
            lambda s: create_round(s, *args).selection["n_traces"],
            lambda n: self._created(name, n),
            self._create_failed,
            "round",
        )
        return True

    def _created(self, name: str, n: int) -> None:
        self.create_button.setEnabled(True)
        self.problems.setStyleSheet("color: #1a7f37;")
        self.problems.setText(f"Created {name!r}: {n} traces.")
        self.refresh_progress(then=self.created.emit)

    def _create_failed(self, exc: BaseException) -> None:
        self.create_button.setEnabled(True)
        self.problems.setStyleSheet("color: #b42318;")
        self.problems.setText(f"Could not create the round: {exc}")
        self.failed.emit(str(exc))

    def refresh_progress(self, then=None) -> None:
        """Every round's per-judge progress, counted on the executor."""

        def shown(rounds: list[dict]) -> None:
            self._show_progress(rounds)
            if then is not None:
                then()

        self.executor.submit(all_progress, shown, label="progress")

    def _show_progress(self, rounds: list[dict]) -> None:
        parts = []
        for rnd in rounds:
            parts.append(
                f"<h4>{esc(rnd['name'])} <small>(v{rnd['version']}, k={rnd['overlap']}, "
                f"{rnd['created_at']:%Y-%m-%d})</small></h4><table>"
            )
            for r in rnd["judges"]:
                pct = 100 * r["submitted"] / r["assigned"] if r["assigned"] else 0
                parts.append(
                    f"<tr><td>{esc(r['judge'])}</td><td align=right>"
                    f"{r['submitted']} / {r['assigned']}</td>"
                    f"<td align=right>{pct:.0f}%</td></tr>"
                )
            parts.append("</table>")
        self.progress_view.setHtml("".join(parts) or "No rounds yet.")

    def done(self, result: int) -> None:
        if self._owns_executor:
            self.executor.shutdown()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._owns_executor:
            self.executor.shutdown()
        super().closeEvent(event)
