"""Lead screens: the rubric editor, review rounds, the agreement dashboard, adjudication."""

from __future__ import annotations

import copy
import difflib
import html
import os
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # noqa: E402
from PySide6.QtCore import QObject, Qt, QThread, Signal  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select  # noqa: E402

from app import charts, report, rubric_yaml  # noqa: E402
from app.corrections import final_answer, unified_diff  # noqa: E402
from app.db import Workspace  # noqa: E402
from app.errors import ChambersError  # noqa: E402
from app.models import DECISIONS, SCALES, Judge, ReviewRound, Rubric, RubricVersion  # noqa: E402
from app.reliability import (  # noqa: E402
    AdjudicationError,
    VersionReport,
    adjudicate,
    get_adjudication,
    reviews_of,
    trend,
    version_report,
)
from app.rounds import create_round, progress  # noqa: E402
from app.rubrics import (  # noqa: E402
    CriterionSpec,
    diff_versions,
    get_version,
    is_frozen,
    save_rubric,
    specs_of,
)
from app.traces import TraceFilter, get_trace, trace_dict  # noqa: E402
from ui.render import render_diff  # noqa: E402
from ui.rubric_panel import RubricPanel  # noqa: E402
from ui.trace_view import TraceView, palette_colors  # noqa: E402


def _versions(session) -> list[tuple[str, RubricVersion]]:
    out = []
    for r in session.scalars(select(Rubric).order_by(Rubric.name)):
        for v in reversed(r.versions):
            out.append((f"{r.name} v{v.version}", v))
    return out


# ---------------------------------------------------------------------------------------------
# Rubric editor


class CriterionEditor(QWidget):
    """One criterion's fields; `changed` on any edit."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        self.key = QLineEdit()
        self.title = QLineEdit()
        self.description = QPlainTextEdit()
        self.description.setMaximumHeight(70)
        self.scale = QComboBox()
        self.scale.addItems(list(SCALES))
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0, 100)
        self.weight.setSingleStep(0.25)
        self.required = {d: QCheckBox(d) for d in DECISIONS}
        req = QHBoxLayout()
        for b in self.required.values():
            req.addWidget(b)
        req.addStretch(1)
        self.levels = QTableWidget(0, 3)
        self.levels.setHorizontalHeaderLabels(["value", "label", "anchor example"])
        self.levels.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.levels.verticalHeader().setVisible(False)
        lv_buttons = QHBoxLayout()
        self.add_level = QPushButton("Add level")
        self.remove_level = QPushButton("Remove level")
        lv_buttons.addWidget(self.add_level)
        lv_buttons.addWidget(self.remove_level)
        lv_buttons.addStretch(1)
        form.addRow("Key", self.key)
        form.addRow("Title", self.title)
        form.addRow("Description", self.description)
        form.addRow("Scale", self.scale)
        form.addRow("Weight", self.weight)
        form.addRow("Required for", req)
        form.addRow("Levels", self.levels)
        form.addRow("", lv_buttons)
        self._loading = False
        for w in (self.key, self.title):
            w.textChanged.connect(self._emit)
        self.description.textChanged.connect(self._emit)
        self.scale.currentTextChanged.connect(self._scale_changed)
        self.weight.valueChanged.connect(self._emit)
        for b in self.required.values():
            b.toggled.connect(self._emit)
        self.levels.itemChanged.connect(self._emit)
        self.add_level.clicked.connect(self._add_level)
        self.remove_level.clicked.connect(self._remove_level)

    def _emit(self, *_a) -> None:
        if not self._loading:
            self.changed.emit()

    def _scale_changed(self, scale: str) -> None:
        binary = scale == "binary"
        self.levels.setEnabled(not binary)
        self.add_level.setEnabled(not binary)
        self.remove_level.setEnabled(not binary)
        if not self._loading and scale == "ordinal":
            self._renumber()
        self._emit()

    def _renumber(self) -> None:
        for r in range(self.levels.rowCount()):
            self.levels.setItem(r, 0, QTableWidgetItem(str(r + 1)))

    def _add_level(self) -> None:
        r = self.levels.rowCount()
        self.levels.insertRow(r)
        value = str(r + 1) if self.scale.currentText() == "ordinal" else f"category_{r + 1}"
        for c, text in enumerate([value, "", ""]):
            self.levels.setItem(r, c, QTableWidgetItem(text))
        self._emit()

    def _remove_level(self) -> None:
        r = self.levels.currentRow()
        if r < 0:
            r = self.levels.rowCount() - 1
        if r >= 0:
            self.levels.removeRow(r)
            if self.scale.currentText() == "ordinal":
                self._renumber()
            self._emit()

    def load(self, spec: CriterionSpec) -> None:
        self._loading = True
        try:
            self.key.setText(spec.key)
            self.title.setText(spec.title)
            self.description.setPlainText(spec.description)
            self.scale.setCurrentText(spec.scale)
            self.weight.setValue(spec.weight)
            for d, b in self.required.items():
                b.setChecked(d in spec.required_for)
            self.levels.setRowCount(0)
            for lv in spec.levels:
                r = self.levels.rowCount()
                self.levels.insertRow(r)
                for c, k in enumerate(("value", "label", "anchor")):
                    self.levels.setItem(r, c, QTableWidgetItem(str(lv.get(k, ""))))
            self._scale_changed(spec.scale)
        finally:
            self._loading = False

    def spec(self) -> CriterionSpec:
        scale = self.scale.currentText()
        levels = []
        if scale != "binary":
            for r in range(self.levels.rowCount()):
                cells = [self.levels.item(r, c).text().strip() if self.levels.item(r, c) else ""
                         for c in range(3)]
                value: Any = cells[0]
                if scale == "ordinal":
                    value = int(cells[0]) if cells[0].isdigit() else cells[0]
                lv = {"value": value, "label": cells[1] or str(value)}
                if cells[2]:
                    lv["anchor"] = cells[2]
                levels.append(lv)
        return CriterionSpec(
            self.key.text().strip(),
            self.title.text().strip() or self.key.text().strip(),
            scale,
            self.description.toPlainText().strip(),
            levels,
            float(self.weight.value()),
            [d for d, b in self.required.items() if b.isChecked()],
        )


class RubricEditor(QDialog):
    """Write and version rubrics: criteria list (reorder, duplicate), fields, judge's preview,
    version history with a diff, YAML import/export. Saving a rubric that a review already
    uses creates a new version; an unused version is edited in place."""

    saved = Signal()

    def __init__(self, ws: Workspace, lead: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.lead = lead
        self.setWindowTitle("Rubrics")
        self.resize(1180, 760)
        self.specs: list[CriterionSpec] = []
        self.current = -1
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.rubric_combo = QComboBox()
        self.rubric_combo.setMinimumWidth(280)
        self.rubric_combo.currentIndexChanged.connect(self._load_selected)
        top.addWidget(QLabel("Rubric"))
        top.addWidget(self.rubric_combo, 1)
        self.new_button = QPushButton("New rubric…")
        self.new_button.clicked.connect(self._new_rubric)
        self.import_button = QPushButton("Import YAML…")
        self.import_button.clicked.connect(self._import_yaml)
        self.export_button = QPushButton("Export YAML…")
        self.export_button.clicked.connect(self._export_yaml)
        for b in (self.new_button, self.import_button, self.export_button):
            top.addWidget(b)
        lay.addLayout(top)
        self.status = QLabel()
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)
        # -- edit tab
        edit = QWidget()
        el = QHBoxLayout(edit)
        left = QVBoxLayout()
        self.criteria = QListWidget()
        self.criteria.currentRowChanged.connect(self._select_criterion)
        left.addWidget(self.criteria, 1)
        btns = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, fn in (("Add", self._add), ("Duplicate", self._duplicate),
                         ("Remove", self._remove), ("Up", lambda: self._move(-1)),
                         ("Down", lambda: self._move(1))):
            b = QPushButton(name)
            b.clicked.connect(fn)
            self.buttons[name] = b
            btns.addWidget(b)
        left.addLayout(btns)
        el.addLayout(left, 1)
        self.editor = CriterionEditor()
        self.editor.changed.connect(self._criterion_edited)
        el.addWidget(self.editor, 2)
        self.tabs.addTab(edit, "Criteria")
        # -- preview tab
        self.preview = RubricPanel()
        self.preview.submit_button.setEnabled(False)
        self.tabs.addTab(self.preview, "Preview (as a judge sees it)")
        # -- history tab
        hist = QWidget()
        hl = QVBoxLayout(hist)
        row = QHBoxLayout()
        self.diff_old = QComboBox()
        self.diff_new = QComboBox()
        row.addWidget(QLabel("Compare"))
        row.addWidget(self.diff_old)
        row.addWidget(QLabel("with"))
        row.addWidget(self.diff_new)
        row.addStretch(1)
        hl.addLayout(row)
        self.diff_view = QTextBrowser()
        hl.addWidget(self.diff_view, 1)
        self.diff_old.currentIndexChanged.connect(self._show_diff)
        self.diff_new.currentIndexChanged.connect(self._show_diff)
        self.tabs.addTab(hist, "Versions and diff")
        self.tabs.currentChanged.connect(self._tab_changed)

        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Notes for this version"))
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("what changed and why (kept with the version)")
        bottom.addWidget(self.notes, 1)
        self.problems = QLabel()
        self.problems.setStyleSheet("color: #b42318;")
        self.save_button = QPushButton("Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom.addWidget(self.save_button)
        bottom.addWidget(close)
        lay.addWidget(self.problems)
        lay.addLayout(bottom)
        self.name: str | None = None
        self.description = ""
        self._refresh_rubrics()

    # -- loading
    def _refresh_rubrics(self, select_name: str | None = None) -> None:
        with self.ws.session() as s:
            names = list(s.scalars(select(Rubric.name).order_by(Rubric.name)))
        self.rubric_combo.blockSignals(True)
        self.rubric_combo.clear()
        self.rubric_combo.addItems(names)
        self.rubric_combo.blockSignals(False)
        if select_name and select_name in names:
            self.rubric_combo.setCurrentText(select_name)
        self._load_selected()

    def _load_selected(self, *_a) -> None:
        name = self.rubric_combo.currentText()
        if not name:
            self._set_specs(None, [], "")
            return
        with self.ws.session() as s:
            v = get_version(s, name)
            frozen = is_frozen(s, v.id)
            self._set_specs(name, specs_of(v), v.rubric.description)
            versions = [(f"v{x.version} ({x.created_at:%Y-%m-%d}) {x.notes}", specs_of(x))
                        for x in v.rubric.versions]
            self.status.setText(
                f"<b>{name}</b>, latest v{v.version}: "
                + ("in use by reviews, so saving creates a new version."
                   if frozen else "not used by any review yet, so saving edits it in place."))
        self._history = versions
        for combo, idx in ((self.diff_old, max(len(versions) - 2, 0)),
                           (self.diff_new, len(versions) - 1)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([label for label, _ in versions])
            combo.setCurrentIndex(idx)
            combo.blockSignals(False)
        self._show_diff()

    def _set_specs(self, name: str | None, specs: list[CriterionSpec], description: str) -> None:
        self.name = name
        self.description = description
        self.specs = [copy.deepcopy(s) for s in specs]
        self._refill_list(0 if specs else -1)
        self.problems.clear()

    def _refill_list(self, select_row: int) -> None:
        self.criteria.blockSignals(True)
        self.criteria.clear()
        for s in self.specs:
            self.criteria.addItem(QListWidgetItem(f"{s.key}  ·  {s.scale}  ·  w={s.weight:g}"))
        self.criteria.blockSignals(False)
        self.current = -1
        if select_row >= 0 and self.specs:
            self.criteria.setCurrentRow(min(select_row, len(self.specs) - 1))
        self.editor.setEnabled(bool(self.specs))

    def _select_criterion(self, row: int) -> None:
        self.current = row
        if 0 <= row < len(self.specs):
            self.editor.load(self.specs[row])

    def _criterion_edited(self) -> None:
        if 0 <= self.current < len(self.specs):
            s = self.editor.spec()
            self.specs[self.current] = s
            item = self.criteria.item(self.current)
            if item:
                item.setText(f"{s.key}  ·  {s.scale}  ·  w={s.weight:g}")

    # -- list operations
    def _add(self) -> None:
        n = len(self.specs) + 1
        key = f"criterion_{n}"
        while any(s.key == key for s in self.specs):
            n += 1
            key = f"criterion_{n}"
        self.specs.append(CriterionSpec(key, f"Criterion {n}", "binary"))
        self._refill_list(len(self.specs) - 1)

    def _duplicate(self) -> None:
        if 0 <= self.current < len(self.specs):
            s = copy.deepcopy(self.specs[self.current])
            base = f"{s.key}_copy"
            s.key, n = base, 2
            while any(x.key == s.key for x in self.specs):
                s.key = f"{base}{n}"
                n += 1
            s.title += " (copy)"
            self.specs.insert(self.current + 1, s)
            self._refill_list(self.current + 1)

    def _remove(self) -> None:
        if 0 <= self.current < len(self.specs):
            del self.specs[self.current]
            self._refill_list(self.current)

    def _move(self, delta: int) -> None:
        i, j = self.current, self.current + delta
        if 0 <= i < len(self.specs) and 0 <= j < len(self.specs):
            self.specs[i], self.specs[j] = self.specs[j], self.specs[i]
            self._refill_list(j)

    # -- tabs
    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.preview:
            try:
                self.preview.set_rubric(self.name or "New rubric", self.specs)
            except Exception as exc:  # noqa: BLE001 - an unfinished criterion: say what
                self.problems.setText(f"Preview: {exc}")

    def _show_diff(self, *_a) -> None:
        hist = getattr(self, "_history", [])
        a, b = self.diff_old.currentIndex(), self.diff_new.currentIndex()
        if not hist or a < 0 or b < 0:
            self.diff_view.clear()
            return
        lines = diff_versions(hist[a][1], hist[b][1])
        c = palette_colors(self.palette())
        rows = [("+" if ln.startswith("+") else "-" if ln.startswith("-") else " ") + ln[1:]
                for ln in lines] or [" no differences"]
        self.diff_view.setHtml(render_diff(rows, c))

    # -- actions
    def save(self) -> bool:
        if not self.name:
            self.problems.setText("Create a rubric first (New rubric…).")
            return False
        self._criterion_edited()
        try:
            with self.ws.session() as s:
                version, what = save_rubric(s, self.name, self.specs, self.description,
                                            self.notes.text().strip(), self.lead.id)
                msg = f"{self.name}: {what} (v{version.version})."
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return False
        self.problems.clear()
        self.notes.clear()
        self._refresh_rubrics(self.name)
        self.status.setText(self.status.text() + f"  Saved: {msg}")
        self.saved.emit()
        return True

    def _new_rubric(self) -> None:
        dlg = QDialog(self)
        dlg.setWindowTitle("New rubric")
        f = QFormLayout(dlg)
        name = QLineEdit()
        desc = QLineEdit()
        f.addRow("Name", name)
        f.addRow("Description", desc)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                              | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(dlg.accept)
        bb.rejected.connect(dlg.reject)
        f.addRow(bb)
        if dlg.exec() != QDialog.DialogCode.Accepted or not name.text().strip():
            return
        self.create_new(name.text().strip(), desc.text().strip())

    def create_new(self, name: str, description: str = "") -> None:
        self.rubric_combo.blockSignals(True)
        self.rubric_combo.addItem(name)
        self.rubric_combo.setCurrentText(name)
        self.rubric_combo.blockSignals(False)
        self._set_specs(name, [CriterionSpec("task_success", "Task success", "binary")],
                        description)
        self._history = []
        self.status.setText(f"<b>{name}</b>: new, not saved yet.")

    def _import_yaml(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import rubric", "", "YAML (*.yaml *.yml)")
        if path:
            self.import_yaml(path)

    def import_yaml(self, path: str) -> bool:
        try:
            doc = rubric_yaml.load_file(path)
            with self.ws.session() as s:
                version, what = save_rubric(s, doc["name"], doc["criteria"],
                                            doc["description"] or None, doc["notes"],
                                            self.lead.id)
                msg = f"{doc['name']}: {what} (v{version.version})"
        except ChambersError as exc:
            self.problems.setText(str(exc))
            return False
        self.problems.clear()
        self._refresh_rubrics(doc["name"])
        self.status.setText(self.status.text() + f"  Imported {Path(path).name}: {msg}.")
        self.saved.emit()
        return True

    def _export_yaml(self) -> None:
        if not self.name:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export rubric",
                                              f"{self.name.lower().replace(' ', '-')}.yaml",
                                              "YAML (*.yaml *.yml)")
        if path:
            self.export_yaml(path)

    def export_yaml(self, path: str) -> None:
        with self.ws.session() as s:
            Path(path).write_text(rubric_yaml.dump(get_version(s, self.name)), encoding="utf-8")


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
            for label, v in _versions(s):
                self.version.addItem(label, v.id)
            for j in s.scalars(select(Judge).where(Judge.active).order_by(Judge.name)):
                item = QListWidgetItem(f"{j.name} ({j.role})")
                item.setData(Qt.ItemDataRole.UserRole, j.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if j.role == "judge"
                                   else Qt.CheckState.Unchecked)
                self.judges.addItem(item)
        self.refresh_progress()

    def selected_judges(self) -> list[int]:
        return [self.judges.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.judges.count())
                if self.judges.item(i).checkState() == Qt.CheckState.Checked]

    def create(self) -> bool:
        try:
            cal = [int(x) for x in self.calibration.text().replace(" ", "").split(",") if x]
        except ValueError:
            self.problems.setText("Calibration items: trace ids separated by commas.")
            return False
        if not self.name.text().strip():
            self.problems.setText("Give the round a name.")
            return False
        flt = TraceFilter(source=self.source.text().strip() or None,
                          search=self.search.text().strip() or None)
        try:
            with self.ws.session() as s:
                rnd = create_round(s, self.name.text().strip(), self.version.currentData(),
                                   self.selected_judges(), self.overlap.value(), flt,
                                   self.sample.value() or None, self.seed.value(), cal or None,
                                   self.lead.id)
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
                parts.append(f"<h4>{_e(rnd.name)} <small>(v{v.version}, k={rnd.overlap}, "
                             f"{rnd.created_at:%Y-%m-%d})</small></h4><table>")
                for r in rows:
                    pct = 100 * r["submitted"] / r["assigned"] if r["assigned"] else 0
                    parts.append(f"<tr><td>{_e(r['judge'])}</td><td align=right>"
                                 f"{r['submitted']} / {r['assigned']}</td>"
                                 f"<td align=right>{pct:.0f}%</td></tr>")
                parts.append("</table>")
        self.progress_view.setHtml("".join(parts) or "No rounds yet.")


def _e(s: str) -> str:
    return html.escape(str(s))


# ---------------------------------------------------------------------------------------------
# Agreement dashboard


class ReportWorker(QObject):
    finished = Signal(object, object)
    failed = Signal(str)

    def __init__(self, ws_url: str, version_id: int, round_id: int | None, n_boot: int):
        super().__init__()
        self.args = (ws_url, version_id, round_id, n_boot)

    def run(self) -> None:
        from app.db import open_workspace

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


class ChartBox(QWidget):
    """A matplotlib figure on a Qt canvas, with Export PNG."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.fig = None
        self.lay = QVBoxLayout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)
        self.canvas: FigureCanvasQTAgg | None = None
        self.export_button = QPushButton(f"Export {title} as PNG…")
        self.export_button.clicked.connect(self._export)
        self.export_button.setEnabled(False)
        self.lay.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignRight)

    def set_figure(self, fig) -> None:
        if self.canvas is not None:
            self.lay.removeWidget(self.canvas)
            self.canvas.deleteLater()
        self.fig = fig
        self.canvas = FigureCanvasQTAgg(fig)
        self.canvas.setMinimumHeight(int(fig.get_figheight() * 80))
        self.lay.insertWidget(0, self.canvas, 1)
        self.canvas.draw_idle()
        self.export_button.setEnabled(True)

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title}",
                                              f"{self.title.replace(' ', '-')}.png", "PNG (*.png)")
        if path:
            self.save_png(path)

    def save_png(self, path: str) -> None:
        Path(path).write_bytes(charts.png_bytes(self.fig, dpi=150))


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
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 9)
        self.table.setHorizontalHeaderLabels(
            ["criterion", "items", "judges", "α [95% CI]", "band", "% agreement",
             "Fleiss κ", "Gwet AC1/AC2", "Cohen κ (pairs)"])
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
        self.disagreements = QTableWidget(0, 4)
        self.disagreements.setHorizontalHeaderLabels(["trace", "disagreement", "judges",
                                                      "where they differ"])
        self.disagreements.horizontalHeader().setStretchLastSection(True)
        self.disagreements.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.disagreements.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.disagreements.cellDoubleClicked.connect(self._open_disagreement)
        dl = QWidget()
        dlay = QVBoxLayout(dl)
        dlay.addWidget(QLabel("Double-click a trace (or press Enter) to adjudicate it."))
        dlay.addWidget(self.disagreements)
        self.tabs.addTab(dl, "Most disagreement")
        split.addWidget(self.tabs)
        split.setSizes([260, 600])
        lay.addWidget(split, 1)
        with ws.session() as s:
            for label, v in _versions(s):
                self.version.addItem(label, v.id)
        self.version.currentIndexChanged.connect(self._fill_rounds)
        self._fill_rounds()

    def _fill_rounds(self, *_a) -> None:
        self.round.clear()
        self.round.addItem("all reviews of this version", None)
        vid = self.version.currentData()
        if vid is None:
            return
        with self.ws.session() as s:
            for r in s.scalars(select(ReviewRound).where(ReviewRound.rubric_version_id == vid)
                               .order_by(ReviewRound.created_at)):
                self.round.addItem(r.name, r.id)

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
            f"Intervals: {rep.n_boot} bootstrap resamples over traces, seed {rep.seed}.")
        self.table.setRowCount(len(rep.targets))
        colours = {"reliable": "#1a7f37", "tentative": "#9a6700", "unreliable": "#b42318"}
        for i, t in enumerate(rep.targets):
            c = t.result.coefficients
            ac = c.get("gwet_ac2") or c["gwet_ac1"]
            cells = [t.target.key, str(t.result.n_items), str(t.result.n_judges),
                     t.result.alpha.fmt() if t.result.alpha.value is not None
                     else f"n/a: {t.result.alpha.note.removeprefix('undefined: ')}",
                     t.band, c["percent_agreement"].fmt(), c["fleiss_kappa"].fmt(), ac.fmt(),
                     c["cohen_kappa"].fmt()]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 4 and t.band in colours:
                    item.setForeground(Qt.GlobalColor.white)
                    item.setBackground(QColor(colours[t.band]))
                self.table.setItem(i, j, item)
        self.alpha_chart.set_figure(charts.alpha_by_criterion(rep, width=10))
        self.trend_chart.set_figure(charts.trend(points, width=10))
        self.disagreements.setRowCount(len(rep.disagreements))
        for i, d in enumerate(rep.disagreements):
            for j, text in enumerate([f"{d.trace_id}: {d.external_id}", f"{d.score:.2f}",
                                      str(d.n_judges), d.summary]):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, d.trace_id)
                self.disagreements.setItem(i, j, item)
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
        item = self.disagreements.item(row, 0)
        if item is not None and self.report is not None:
            self.adjudicate_requested.emit(item.data(Qt.ItemDataRole.UserRole),
                                           self.report.version_id)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and self.disagreements.hasFocus()):
            self._open_disagreement(self.disagreements.currentRow())
            return
        super().keyPressEvent(event)

    def _export_html(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export agreement report",
                                              "agreement-report.html", "HTML (*.html)")
        if path:
            self.export_html(path)

    def export_html(self, path: str) -> None:
        if self.report is not None:
            Path(path).write_text(report.render(self.report, self.points), encoding="utf-8")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._stop()
        super().closeEvent(event)


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
        self.trace_view = TraceView()
        split.addWidget(self.trace_view)
        middle = QTabWidget()
        self.side_by_side = QTableWidget()
        self.side_by_side.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.side_by_side.setWordWrap(True)
        self.side_by_side.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        middle.addTab(self.side_by_side, "Reviews side by side")
        self.corrections = QTextBrowser()
        middle.addTab(self.corrections, "Corrections (diffs)")
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
            original = final_answer(trace.messages) or ""
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
                if r.corrected_messages or r.corrected_output:
                    if r.corrected_messages:
                        lines = unified_diff(trace.messages, r.corrected_messages)
                    else:  # a rejection with a written answer: the answers, line by line
                        lines = list(difflib.unified_diff(
                            original.splitlines(), r.corrected_output.splitlines(),
                            "agent's answer", "judge's answer", lineterm=""))
                    diffs.append(f"<h4>{_e(name)}</h4>"
                                 + render_diff(lines, palette_colors(self.palette())))
            self._mark_disagreements(len(rows))
            self.side_by_side.resizeRowsToContents()
            self.corrections.setHtml("".join(diffs) or "No judge wrote a correction.")
            adj = get_adjudication(s, self.trace_id, self.version_id)
            if adj is not None:
                self.panel.load(adj.decision, adj.scores, adj.rationale)
                self.message.setText(f"Gold recorded {adj.created_at:%Y-%m-%d}; recording "
                                     "again replaces it (the audit log keeps the old one).")
            elif reviews:
                # start from the majority decision, so agreeing cases take one keystroke
                top = Counter(r.decision for r, _ in reviews).most_common(1)[0][0]
                scores = {}
                for c in specs:
                    vals = [r.scores.get(c.key) for r, _ in reviews
                            if r.scores.get(c.key) is not None]
                    if vals:
                        scores[c.key] = Counter(vals).most_common(1)[0][0]
                self.panel.load(top, scores, "")
                self.message.setText("Pre-filled with the judges' majority; change what is "
                                     "wrong and record.")

    def _mark_disagreements(self, n_rows: int) -> None:
        for i in range(n_rows - 2):
            texts = {self.side_by_side.item(i, j).text()
                     for j in range(self.side_by_side.columnCount())
                     if self.side_by_side.item(i, j) and self.side_by_side.item(i, j).text()}
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
                adjudicate(s, self.trace_id, self.version_id, self.lead.id, decision,
                           self.panel.scores(), self.panel.rationale.toPlainText().strip())
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

