"""The Models screen: the lineage tree (base -> candidates), a model's evaluations, comparison
results, the gate with each condition, the reward-hacking watch; Promote (the gate first;
Force needs a reason), Roll back, Export merged/adapter, and a lead's new comparison round.

Exports run in the trainer process off the UI thread; everything else is a quick query.
"""

from __future__ import annotations

import html
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)
from sqlalchemy import select

from app.training import comparison as cmp
from app.training import gate
from app.training.modelinfo import (
    export_model,
    registry_stamp,
    reward_hacking_flagged,
    show_model,
)
from app.training.registry import get_model, rollback, tree
from app.workspace.db import Workspace
from app.workspace.errors import ChambersError
from app.workspace.models import Evaluation, Judge


def _est(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "n/a"
    lo, hi = e.get("low", e.get("ci_low")), e.get("high", e.get("ci_high"))
    return f"{e['value']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def details_html(info: dict[str, Any]) -> str:
    e = html.escape
    out = [f"<h3>{e(info['name'])} <small>({e(info['kind'])})</small></h3>"]
    if info["current"]:
        out.append("<p><b>Current model</b></p>")
    if info["reward_hacking"]:
        out.append(
            "<p style='color:#b00020'><b>⚠ Reward-hacking watch:</b> the graders say this "
            "candidate improved; the judges' verdicts on the same items do not.</p>"
        )
    lin = info["lineage"]
    out.append(f"<p>parent: {e(info['parent'] or '—')}<br>path: {e(info['path'])}")
    if lin.get("snapshot"):
        out.append(
            f"<br>snapshot {e(lin['snapshot']['name'])} · sha256 {e(lin['snapshot']['sha256'][:16])}…"
            f"<br>run {e(lin['run']['name'])} ({e(lin['run']['algorithm'])}) · rubric versions "
            f"{lin['rubric_version_ids']} · graders {', '.join(g['name'] for g in lin['graders']) or '—'}"
        )
    out.append("</p>")
    for ev in info["evaluations"]:
        out.append(
            f"<p><b>Evaluation {e(ev['name'])}</b> ({e(ev['status'])}): "
            f"{e(ev['candidate_model'])} vs {e(ev['baseline_model'])}"
        )
        if "difference" in ev:
            out.append(
                f"<br>mean score {_est(ev['candidate']['score'])} vs {_est(ev['baseline']['score'])}"
                f"<br>paired difference {_est(ev['difference'])}"
            )
        out.append("</p>")
    for c in info["comparisons"]:
        out.append(
            f"<p><b>Comparison {e(c['round'])}</b>: {c['verdicts']}/{c['assigned']} verdicts"
            f"<br>win rate {_est(c['win_rate'])} · ties {_est(c['tie_share'])}"
            f"<br>agreement α {_est(c['alpha'])} · share of A {_est(c['position_bias_A'])}</p>"
        )
    bt = info.get("bradley_terry")
    if bt:
        out.append(
            "<p><b>Bradley–Terry strengths</b> over every comparison round (log strength, 95%"
            " interval; higher wins more often):<br>"
            + "<br>".join(
                f"{e(m)}: {_est(v)}" for m, v in sorted(bt.items(), key=lambda kv: -kv[1]["value"])
            )
            + "</p>"
        )
    g = info.get("gate")
    if g:
        verdict = "passed" if g["passed"] else "FAILED"
        out.append(f"<p><b>Gate ({e(g['rule_text'])}): {verdict}</b><br>")
        out.append(
            "<br>".join(
                f"{'✔' if c['passed'] else '✘'} {e(c['name'])}: {e(c['detail'])}"
                for c in g["conditions"]
            )
        )
        out.append("</p>")
    for p in info["promotions"]:
        forced = " (forced)" if p["forced"] else ""
        out.append(
            f"<p>{e(p['action'])}{forced} by {e(p['actor'])} at {str(p['at'])[:16]}: {e(p['reason'])}</p>"
        )
    return "".join(out)


def _read_tree(session):
    """The lineage tree's rows and each model's reward-hacking flag."""
    rows = tree(session)
    return rows, {r["name"]: reward_hacking_flagged(session, r["id"]) for _, r in rows}


class ModelsDialog(QDialog):
    changed = Signal()

    def __init__(self, ws: Workspace, user: Judge, parent=None, poll_ms: int = 3000):
        super().__init__(parent)
        self.ws = ws
        self.user = user
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: Future | None = None
        self.stamp_job: Future | None = None
        self.stamp: tuple[Any, ...] | None = None
        self.setWindowTitle("Models")
        self.resize(1200, 760)
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.promote_button = QPushButton("Promote…")
        self.promote_button.clicked.connect(self.promote)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.clicked.connect(self.rollback)
        self.export_merged_button = QPushButton("Export merged…")
        self.export_merged_button.clicked.connect(lambda: self.export("merged"))
        self.export_adapter_button = QPushButton("Export adapter…")
        self.export_adapter_button.clicked.connect(lambda: self.export("adapter"))
        self.compare_button = QPushButton("New comparison round…")
        self.compare_button.clicked.connect(self.new_round)
        self.compare_button.setEnabled(user.role == "lead")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip(
            "Read finished runs and evaluations again (the screen also does so by itself"
            " every few seconds when something changed)"
        )
        self.refresh_button.clicked.connect(self.reload)
        for b in (
            self.refresh_button,
            self.promote_button,
            self.rollback_button,
            self.export_merged_button,
            self.export_adapter_button,
            self.compare_button,
        ):
            bar.addWidget(b)
        bar.addStretch(1)
        lay.addLayout(bar)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["model", "kind", "status"])
        self.tree.currentItemChanged.connect(lambda *_: self.show_selected())
        split.addWidget(self.tree)
        self.details = QTextBrowser()
        split.addWidget(self.details)
        split.setSizes([420, 780])
        lay.addWidget(split, 1)
        self.status = QLabel()
        lay.addWidget(self.status)
        self.timer = QTimer(self)
        self.timer.setInterval(300)
        self.timer.timeout.connect(self._check_pending)
        self.live = QTimer(self)  # runs and evaluations finish in other processes
        self.live.setInterval(poll_ms)
        self.live.timeout.connect(self._poll_registry)
        self.reload()
        self.live.start()

    # --- tree ----------------------------------------------------------------------------
    def reload(self) -> None:
        with self.ws.session() as s:
            self._fill(*_read_tree(s))

    def _fill(self, rows, flags: dict[str, bool]) -> None:
        keep = self.selected()
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for depth, r in rows:
            status = (
                "current" if r["current"] else ("promoted before" if r["ever_promoted"] else "")
            )
            if flags.get(r["name"]):
                status = (status + " · ⚠ reward hacking?").strip(" ·")
            parent = items.get(r["parent"]) if depth else None
            it = QTreeWidgetItem([r["name"], r["kind"], status])
            it.setData(0, Qt.ItemDataRole.UserRole, r["name"])
            if parent is not None:
                parent.addChild(it)
            else:
                self.tree.addTopLevelItem(it)
            items[r["name"]] = it
        self.tree.expandAll()
        for c in range(3):
            self.tree.resizeColumnToContents(c)
        target = items.get(keep or "") or (self.tree.topLevelItem(0) if rows else None)
        if target is not None:
            self.tree.setCurrentItem(target)
        self.show_selected()

    def _poll_registry(self) -> None:
        """Off the UI thread, read whether anything the tree shows changed, and the tree with
        it; the UI thread only redraws."""
        if self.stamp_job is None:
            self.stamp_job = self.pool.submit(self._read_stamp)
            return
        if not self.stamp_job.done():
            return
        job, self.stamp_job = self.stamp_job, None
        try:
            stamp, read = job.result()
        except Exception as exc:  # noqa: BLE001 - a database hiccup: say it, try next tick
            self.status.setText(f"could not read the registry: {exc}")
            return
        if read is not None:
            self.stamp = stamp
            self._fill(*read)

    def _read_stamp(self):
        """The registry's stamp, and the tree read in the same pass when the stamp moved."""
        with self.ws.session() as s:
            stamp = registry_stamp(s)
            return stamp, (_read_tree(s) if stamp != self.stamp else None)

    def selected(self) -> str | None:
        it = self.tree.currentItem() if hasattr(self, "tree") else None
        return it.data(0, Qt.ItemDataRole.UserRole) if it is not None else None

    def show_selected(self) -> None:
        name = self.selected()
        if name is None:
            self.details.setHtml(
                "<p>No model yet. A finished training run registers its candidate here.</p>"
            )
            return
        with self.ws.session() as s:
            self.info = show_model(s, get_model(s, name))
        self.details.setHtml(details_html(self.info))
        cand = self.info["kind"] == "candidate"
        for b in (self.promote_button, self.export_merged_button, self.export_adapter_button):
            b.setEnabled(cand)

    # --- actions -------------------------------------------------------------------------
    def promote(self, reason: str | None = None, force_reason: str | None = None) -> bool:
        """Promote the selected model. With the arguments given, no dialog asks (tests, scripts)."""
        name = self.selected()
        if name is None:
            return False
        with self.ws.session() as s:
            result = gate.check(s, get_model(s, name))
        force = False
        if not result["passed"]:
            failed = "\n".join(
                f"✘ {c['name']}: {c['detail']}" for c in result["conditions"] if not c["passed"]
            )
            if force_reason is None:
                ok = QMessageBox.question(
                    self,
                    "The gate refuses this candidate",
                    f"{name} fails the gate ({result['rule_text']}):\n{failed}\n\n"
                    "Promote anyway? You must give a reason; it goes in the audit log.",
                )
                if ok != QMessageBox.StandardButton.Yes:
                    self.status.setText(f"{name}: refused by the gate")
                    return False
                force_reason, ok = QInputDialog.getText(self, "Force promotion", "Reason:")
                if not ok:
                    return False
            reason, force = force_reason, True
        elif reason is None:
            reason, ok = QInputDialog.getText(self, "Promote", f"Why promote {name}?")
            if not ok:
                return False
        try:
            with self.ws.session() as s:
                gate.promote(s, get_model(s, name), self.user.name, reason or "", force)
        except ChambersError as exc:
            self.status.setText(str(exc))
            return False
        self.status.setText(f"{name} is now the current model" + (" (forced)" if force else ""))
        self.reload()
        self.changed.emit()
        return True

    def rollback(self) -> bool:
        try:
            with self.ws.session() as s:
                left, back = rollback(s, self.user.name, "rolled back from the Models screen")
                msg = f"rolled back: {left.name} -> {back.name} is current again"
        except ChambersError as exc:
            self.status.setText(str(exc))
            return False
        self.status.setText(msg)
        self.reload()
        self.changed.emit()
        return True

    def export(self, mode: str, out: str | None = None) -> None:
        name = self.selected()
        if name is None:
            return
        if out is None:
            out = QFileDialog.getExistingDirectory(
                self, f"Export {name} ({mode}) into an empty folder"
            )
            if not out:
                return

        def job() -> str:
            with self.ws.session() as s:
                return export_model(s, get_model(s, name), mode, Path(out))["out"]

        self.status.setText(f"exporting {name} ({mode}) to {out}…")
        self.pending = self.pool.submit(job)
        self.timer.start()

    def _check_pending(self) -> None:
        if self.pending is None or not self.pending.done():
            return
        self.timer.stop()
        try:
            self.status.setText(f"exported to {self.pending.result()}")
        except ChambersError as exc:
            self.status.setText(f"export failed: {exc}")
        self.pending = None

    def new_round(self) -> None:
        dlg = NewComparisonDialog(self.ws, self.user, self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.status.setText(dlg.result_text)
            self.reload()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        self.live.stop()
        self.pool.shutdown(wait=True)
        super().closeEvent(event)


class NewComparisonDialog(QDialog):
    """A lead makes a blind comparison round from a finished evaluation."""

    def __init__(self, ws: Workspace, lead: Judge, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.lead = lead
        self.result_text = ""
        self.setWindowTitle("New comparison round")
        form = QFormLayout(self)
        self.name = QComboBox()
        self.name.setEditable(True)
        self.evaluation = QComboBox()
        self.judges = QListWidget()
        self.k = QSpinBox()
        self.k.setRange(1, 50)
        self.k.setValue(2)
        with ws.session() as s:
            for ev in s.scalars(
                select(Evaluation)
                .where(Evaluation.status == "finished")
                .order_by(Evaluation.id.desc())
            ):
                self.evaluation.addItem(ev.name)
            for j in s.scalars(select(Judge).where(Judge.active.is_(True)).order_by(Judge.name)):
                it = QListWidgetItem(j.name)
                it.setData(Qt.ItemDataRole.UserRole, j.id)
                it.setCheckState(
                    Qt.CheckState.Checked if j.role == "judge" else Qt.CheckState.Unchecked
                )
                self.judges.addItem(it)
        self.name.setCurrentText(f"{self.evaluation.currentText()}-ab")
        form.addRow("Name:", self.name)
        form.addRow("Evaluation:", self.evaluation)
        form.addRow("Judges:", self.judges)
        form.addRow("Judges per item (k):", self.k)
        self.error = QLabel()
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.create)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def create(self) -> bool:
        ids = [
            self.judges.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.judges.count())
            if self.judges.item(i).checkState() == Qt.CheckState.Checked
        ]
        try:
            with self.ws.session() as s:
                rnd = cmp.create_round(
                    s,
                    self.name.currentText().strip(),
                    self.evaluation.currentText(),
                    ids,
                    self.k.value(),
                    created_by=self.lead.id,
                )
                self.result_text = f"comparison round {rnd.name}: {len(ids)} judges, k={rnd.k}"
        except ChambersError as exc:
            self.error.setText(str(exc))
            return False
        self.accept()
        return True
