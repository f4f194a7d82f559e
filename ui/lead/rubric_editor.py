"""The rubric editor: criteria, levels and anchors, preview, versions and diff, YAML."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtCore import Signal  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.review import rubric_yaml  # noqa: E402
from app.review.rubrics import (  # noqa: E402
    CriterionSpec,
    diff_versions,
    get_version,
    is_frozen,
    rubric_names,
    save_rubric,
    specs_of,
)
from app.workspace.db import Workspace  # noqa: E402
from app.workspace.errors import ChambersError  # noqa: E402
from app.workspace.models import Judge  # noqa: E402
from app.workspace.types import DECISIONS, SCALES  # noqa: E402
from ui.widgets.render import render_diff  # noqa: E402
from ui.widgets.rubric_panel import RubricPanel  # noqa: E402
from ui.widgets.trace_view import palette_colors  # noqa: E402

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
                cells = [
                    self.levels.item(r, c).text().strip() if self.levels.item(r, c) else ""
                    for c in range(3)
                ]
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
        for name, fn in (
            ("Add", self._add),
            ("Duplicate", self._duplicate),
            ("Remove", self._remove),
            ("Up", lambda: self._move(-1)),
            ("Down", lambda: self._move(1)),
        ):
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
            names = rubric_names(s)
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
            versions = [
                (f"v{x.version} ({x.created_at:%Y-%m-%d}) {x.notes}", specs_of(x))
                for x in v.rubric.versions
            ]
            self.status.setText(
                f"<b>{name}</b>, latest v{v.version}: "
                + (
                    "in use by reviews, so saving creates a new version."
                    if frozen
                    else "not used by any review yet, so saving edits it in place."
                )
            )
        self._history = versions
        for combo, idx in (
            (self.diff_old, max(len(versions) - 2, 0)),
            (self.diff_new, len(versions) - 1),
        ):
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
        rows = [
            ("+" if ln.startswith("+") else "-" if ln.startswith("-") else " ") + ln[1:]
            for ln in lines
        ] or [" no differences"]
        self.diff_view.setHtml(render_diff(rows, c))

    # -- actions
    def save(self) -> bool:
        if not self.name:
            self.problems.setText("Create a rubric first (New rubric…).")
            return False
        self._criterion_edited()
        try:
            with self.ws.session() as s:
                version, what = save_rubric(
                    s,
                    self.name,
                    self.specs,
                    self.description,
                    self.notes.text().strip(),
                    self.lead.id,
                )
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
        bb = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
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
        self._set_specs(
            name, [CriterionSpec("task_success", "Task success", "binary")], description
        )
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
                version, what = save_rubric(
                    s,
                    doc["name"],
                    doc["criteria"],
                    doc["description"] or None,
                    doc["notes"],
                    self.lead.id,
                )
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
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export rubric",
            f"{self.name.lower().replace(' ', '-')}.yaml",
            "YAML (*.yaml *.yml)",
        )
        if path:
            self.export_yaml(path)

    def export_yaml(self, path: str) -> None:
        with self.ws.session() as s:
            Path(path).write_text(rubric_yaml.dump(get_version(s, self.name)), encoding="utf-8")
