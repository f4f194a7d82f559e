"""The agreement dashboard: coefficients with intervals, charts, disagreements."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import QObject, Qt, QThread, Signal  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.agreement import charts, report
from app.agreement.reliability import VersionReport, trend, version_report  # noqa: E402
from app.review.rounds import rounds_of_version  # noqa: E402
from app.review.rubrics import version_choices  # noqa: E402
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge, RubricVersion  # noqa: E402
from ui.widgets.chart_box import ChartBox  # noqa: E402
from ui.widgets.lazy_model import Column, LazyTableModel  # noqa: E402

DISAGREEMENT_COLUMNS = (
    Column("trace", lambda d: f"{d.trace_id}: {d.external_id}"),
    Column("disagreement", lambda d: f"{d.score:.2f}", numeric=True),
    Column("judges", lambda d: str(d.n_judges), numeric=True),
    Column("where they differ", lambda d: d.summary, tooltip=lambda d: d.summary),
)


def _steps_text(rep: VersionReport) -> str:
    steps = rep.step_labels
    if steps is None or not steps.n_reviews:
        return "Step labels: none in these reviews."
    exact = "n/a" if steps.exact_step is None else f"{steps.exact_step:.3f}"
    alpha = steps.alpha.fmt() if steps.alpha.value is not None else "n/a"
    return (
        f"Step labels ({steps.n_reviews} reviews, {steps.n_steps} steps): first error at the "
        f"same step {exact} ({steps.first_error_same} of {steps.first_error_pairs} judge "
        f"pairs); Krippendorff's α (nominal) {alpha}."
    )


# ---------------------------------------------------------------------------------------------
# Agreement dashboard


class ReportWorker(QObject):
    finished = Signal(object, object)
    failed = Signal(str)

    def __init__(self, ws_url: str, version_id: int, round_id: int | None, n_boot: int):
        super().__init__()
        self.args = (ws_url, version_id, round_id, n_boot)

    def run(self) -> None:
        from app.workspace.db import open_workspace

        url, version_id, round_id, n_boot = self.args
        try:
            ws = open_workspace(url)
            try:
                with ws.session() as s:
                    rep = version_report(s, version_id, round_id, n_boot=n_boot)
                    rubric_id = s.get(RubricVersion, version_id).rubric_id
                    points = trend(s, rubric_id)
            finally:
                ws.close()
            self.finished.emit(rep, points)
        except ChambersError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class AgreementDashboard(QDialog):
    """Per criterion alpha with CI and band, percent agreement, the kappa heatmap, each
    judge against gold and the rest, the trend across versions, and the traces with the
    most disagreement (double-click: adjudicate)."""

    adjudicate_requested = Signal(int, int)  # trace id, rubric version id

    def __init__(self, ws: Workspace, lead: Judge, parent=None, n_boot: int = 1000):
        super().__init__(parent)
        self.ws = ws
        self.lead = lead
        self.n_boot = n_boot
        self.report: VersionReport | None = None
        self.points = []
        self.thread: QThread | None = None
        self.setWindowTitle("Agreement")
        self.resize(1280, 860)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.version = QComboBox()
        self.round = QComboBox()
        self.refresh_button = QPushButton("Compute")
        self.refresh_button.clicked.connect(self.refresh)
        self.html_button = QPushButton("Export HTML report…")
        self.html_button.clicked.connect(self._export_html)
        self.html_button.setEnabled(False)
        top.addWidget(QLabel("Rubric version"))
        top.addWidget(self.version, 1)
        top.addWidget(QLabel("Round"))
        top.addWidget(self.round, 1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.html_button)
        lay.addLayout(top)
        self.status = QLabel()
        lay.addWidget(self.status)
        self.steps = QLabel()  # agreement on judges' step labels
        lay.addWidget(self.steps)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 9)
        self.table.setHorizontalHeaderLabels(
            [
                "criterion",
                "items",
                "judges",
                "α [95% CI]",
                "band",
                "% agreement",
                "Fleiss κ",
                "Gwet AC1/AC2",
                "Cohen κ (pairs)",
            ]
        )
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.currentCellChanged.connect(lambda r, *_: self._show_criterion(r))
        split.addWidget(self.table)
        self.tabs = QTabWidget()
        self.alpha_chart = ChartBox("alpha by criterion")
        self.heatmap = ChartBox("kappa heatmap")
        self.judge_chart = ChartBox("judges vs gold")
        self.trend_chart = ChartBox("trend")
        per = QWidget()
        pl = QHBoxLayout(per)
        pl.addWidget(self.heatmap, 1)
        pl.addWidget(self.judge_chart, 1)
        self.tabs.addTab(self.alpha_chart, "α by criterion")
        self.tabs.addTab(per, "Judges (selected criterion)")
        self.tabs.addTab(self.trend_chart, "Trend across versions")
        self.disagreement_model = LazyTableModel(DISAGREEMENT_COLUMNS, self)
        self.disagreements = QTableView()
        self.disagreements.setModel(self.disagreement_model)
        self.disagreements.verticalHeader().setVisible(False)
        self.disagreements.horizontalHeader().setStretchLastSection(True)
        self.disagreements.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.disagreements.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.disagreements.doubleClicked.connect(lambda i: self._open_disagreement(i.row()))
        dl = QWidget()
        dlay = QVBoxLayout(dl)
        dlay.addWidget(QLabel("Double-click a trace (or press Enter) to adjudicate it."))
        dlay.addWidget(self.disagreements)
        self.tabs.addTab(dl, "Most disagreement")
        split.addWidget(self.tabs)
        split.setSizes([260, 600])
        lay.addWidget(split, 1)
        with ws.session() as s:
            for label, v in version_choices(s):
                self.version.addItem(label, v.id)
        self.version.currentIndexChanged.connect(self._fill_rounds)
        self._fill_rounds()

    def _fill_rounds(self, *_a) -> None:
        self.round.clear()
        self.round.addItem("all reviews of this version", None)
        vid = self.version.currentData()
        if vid is None:
            return
        with self.ws.session() as s:  # the rounds of one version: a handful
            for round_id, name in rounds_of_version(s, vid):
                self.round.addItem(name, round_id)

    def refresh(self) -> None:
        vid = self.version.currentData()
        if vid is None or (self.thread is not None and self.thread.isRunning()):
            return
        self.status.setText(f"Computing agreement with {self.n_boot} bootstrap resamples…")
        self.refresh_button.setEnabled(False)
        self.thread = QThread(self)
        self.worker = ReportWorker(self.ws.url, vid, self.round.currentData(), self.n_boot)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.thread.start()

    def _stop(self) -> None:
        if self.thread is not None:
            self.thread.quit()
            self.thread.wait()
        self.refresh_button.setEnabled(True)

    def _failed(self, message: str) -> None:
        self._stop()
        self.status.setText(f"Could not compute agreement: {message}")

    def _done(self, rep: VersionReport, points) -> None:
        self._stop()
        self.show_report(rep, points)

    def show_report(self, rep: VersionReport, points) -> None:
        self.report, self.points = rep, points
        self.status.setText(
            f"{rep.rubric} v{rep.version}{', ' + rep.round_name if rep.round_name else ''}: "
            f"{rep.n_reviews} submitted reviews of {rep.n_traces} traces by {len(rep.judges)} "
            f"judges. α ≥ 0.800 reliable, 0.667–0.800 tentative (Krippendorff). "
            f"Intervals: {rep.n_boot} bootstrap resamples over traces, seed {rep.seed}."
        )
        self.steps.setText(_steps_text(rep))
        self.table.setRowCount(len(rep.targets))
        colours = {"reliable": "#1a7f37", "tentative": "#9a6700", "unreliable": "#b42318"}
        for i, t in enumerate(rep.targets):
            c = t.result.coefficients
            ac = c.get("gwet_ac2") or c["gwet_ac1"]
            cells = [
                t.target.key,
                str(t.result.n_items),
                str(t.result.n_judges),
                t.result.alpha.fmt()
                if t.result.alpha.value is not None
                else f"n/a: {t.result.alpha.note.removeprefix('undefined: ')}",
                t.band,
                c["percent_agreement"].fmt(),
                c["fleiss_kappa"].fmt(),
                ac.fmt(),
                c["cohen_kappa"].fmt(),
            ]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 4 and t.band in colours:
                    item.setForeground(Qt.GlobalColor.white)
                    item.setBackground(QColor(colours[t.band]))
                self.table.setItem(i, j, item)
        self.alpha_chart.set_figure(charts.alpha_by_criterion(rep, width=10))
        self.trend_chart.set_figure(charts.trend(points, width=10))
        self.disagreement_model.set_rows(rep.disagreements)
        self.disagreements.resizeColumnsToContents()
        self.html_button.setEnabled(True)
        if rep.targets:
            self.table.selectRow(0)
            self._show_criterion(0)

    def _show_criterion(self, row: int) -> None:
        if self.report is None or not 0 <= row < len(self.report.targets):
            return
        t = self.report.targets[row]
        self.heatmap.set_figure(charts.kappa_heatmap(t))
        self.judge_chart.set_figure(charts.judge_agreement(t))

    def _open_disagreement(self, row: int, _col: int = 0) -> None:
        if 0 <= row < self.disagreement_model.rowCount() and self.report is not None:
            trace_id = self.disagreement_model.row(row).trace_id
            self.adjudicate_requested.emit(trace_id, self.report.version_id)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.disagreements.hasFocus():
            self._open_disagreement(self.disagreements.currentIndex().row())
            return
        super().keyPressEvent(event)

    def _export_html(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export agreement report", "agreement-report.html", "HTML (*.html)"
        )
        if path:
            self.export_html(path)

    def export_html(self, path: str) -> None:
        if self.report is not None:
            Path(path).write_text(report.render(self.report, self.points), encoding="utf-8")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._stop()
        super().closeEvent(event)
