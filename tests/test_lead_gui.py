"""The lead's screens driven through the real widgets (pytest-qt, offscreen): rubric editor,
review rounds, agreement dashboard, adjudication."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from sqlalchemy import func, select

from app.review.rubrics import get_version
from app.workspace.db import open_workspace
from app.workspace.models import Adjudication, Assignment, AuditEntry, ReviewRound, RubricVersion
from tests.test_gui import judge, sample_db, window_for  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def menus(w):
    return [a.text() for a in w.menuBar().actions()]


def test_lead_menu_only_for_leads(qtbot, sample_db):  # noqa: F811
    assert "&Lead" not in menus(window_for(qtbot, sample_db, "Ines Moreau"))
    lead = window_for(qtbot, sample_db, "Rosa Lindqvist")
    assert "&Lead" in menus(lead)
    lead.open_rubrics()
    assert lead.rubric_editor.isVisible()


def test_rubric_editor_edit_reorder_duplicate_save_new_version(qtbot, sample_db, tmp_path):  # noqa: F811
    from ui.lead.rubric_editor import RubricEditor

    ws = open_workspace(sample_db)
    dlg = RubricEditor(ws, judge(ws, "Rosa Lindqvist"))
    qtbot.addWidget(dlg)
    assert dlg.name == "Support agent quality"
    assert [s.key for s in dlg.specs][:2] == ["task_success", "policy"]
    assert "in use by reviews" in dlg.status.text()
    # duplicate policy, rename it, make it ordinal with three levels, move it to the top
    dlg.criteria.setCurrentRow(1)
    qtbot.mouseClick(dlg.buttons["Duplicate"], Qt.MouseButton.LeftButton)
    assert dlg.specs[2].key == "policy_copy"
    dlg.editor.key.setText("escalation")
    dlg.editor.title.setText("Escalation")
    dlg.editor.scale.setCurrentText("ordinal")
    for _ in range(3):
        qtbot.mouseClick(dlg.editor.add_level, Qt.MouseButton.LeftButton)
    dlg.editor.levels.item(0, 1).setText("Missed")
    dlg.editor.levels.item(0, 2).setText("Should have escalated and did not.")
    for _ in range(2):
        qtbot.mouseClick(dlg.buttons["Up"], Qt.MouseButton.LeftButton)
    assert [s.key for s in dlg.specs][:3] == ["escalation", "task_success", "policy"]
    esc = dlg.specs[0]
    assert [lv["value"] for lv in esc.levels] == [1, 2, 3]
    assert esc.levels[0] == {
        "value": 1,
        "label": "Missed",
        "anchor": "Should have escalated and did not.",
    }
    # the judge's preview shows every criterion
    dlg.tabs.setCurrentWidget(dlg.preview)
    assert len(dlg.preview.rows) == len(dlg.specs) == 6
    dlg.notes.setText("adds escalation")
    assert dlg.save()
    with ws.session() as s:
        v3 = get_version(s, "Support agent quality")
        assert v3.version == 3 and v3.notes == "adds escalation"
        assert [c.key for c in v3.criteria][0] == "escalation"
        assert v3.criteria[0].levels[0]["anchor"] == "Should have escalated and did not."
    # the diff tab compares v2 with v3
    assert "added criterion escalation" in dlg.diff_view.toPlainText()
    # an invalid edit is refused with a message, nothing written
    dlg.criteria.setCurrentRow(0)
    dlg.editor.key.setText("bad key!")
    assert not dlg.save()
    assert "bad key!" in dlg.problems.text()
    with ws.session() as s:
        assert s.scalar(select(func.count()).select_from(RubricVersion)) == 3
    # YAML out and back in; a bad file names its line
    path = tmp_path / "r.yaml"
    dlg.export_yaml(str(path))
    assert "escalation" in path.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("rubric: Other\ncriteria:\n  - key: a\n    scale: binary\n    weight: -1\n")
    assert not dlg.import_yaml(str(bad))
    assert "bad.yaml:5: criteria[0].weight: must be a number >= 0" in dlg.problems.text()
    good = tmp_path / "good.yaml"
    good.write_text("rubric: Other\ncriteria:\n  - key: a\n    scale: binary\n")
    assert dlg.import_yaml(str(good))
    assert dlg.rubric_combo.currentText() == "Other"
    ws.close()


def test_round_dialog_creates_overlapping_assignments(qtbot, sample_db):  # noqa: F811
    from ui.lead.rounds import RoundDialog

    ws = open_workspace(sample_db)
    dlg = RoundDialog(ws, judge(ws, "Rosa Lindqvist"))
    qtbot.addWidget(dlg)
    assert len(dlg.selected_judges()) == 3  # judges checked, the lead not
    dlg.name.setText("Round 3")
    dlg.overlap.setValue(2)
    dlg.sample.setValue(12)
    dlg.seed.setValue(5)
    with qtbot.waitSignal(dlg.created, timeout=10_000):
        qtbot.mouseClick(dlg.create_button, Qt.MouseButton.LeftButton)
    with ws.session() as s:
        rid = s.scalar(select(ReviewRound.id).where(ReviewRound.name == "Round 3"))
        per_trace = s.execute(
            select(Assignment.trace_id, func.count())
            .where(Assignment.round_id == rid)
            .group_by(Assignment.trace_id)
        ).all()
    assert len(per_trace) == 12 and {n for _, n in per_trace} == {2}
    assert "Round 3" in dlg.progress_view.toPlainText()  # counted before `created`
    # same name again: a message, no crash (the round is created on the executor)
    with qtbot.waitSignal(dlg.failed, timeout=10_000):
        assert dlg.create()
    assert "Could not create the round" in dlg.problems.text()
    ws.close()


def test_dashboard_computes_off_thread_plots_export_and_opens_adjudication(
    qtbot,
    qtmodeltester,
    sample_db,  # noqa: F811
    tmp_path,
):
    from ui.lead.adjudication import AdjudicationDialog
    from ui.lead.agreement_dashboard import AgreementDashboard

    ws = open_workspace(sample_db)
    lead = judge(ws, "Rosa Lindqvist")
    dlg = AgreementDashboard(ws, lead, n_boot=100)
    qtbot.addWidget(dlg)
    dlg.version.setCurrentIndex(dlg.version.findText("Support agent quality v1"))
    dlg.round.setCurrentIndex(dlg.round.findText("Calibration round 1"))
    dlg.refresh()
    qtbot.waitUntil(lambda: dlg.report is not None, timeout=30_000)
    rep = dlg.report
    assert rep.round_name == "Calibration round 1" and rep.version == 1
    assert dlg.table.rowCount() == 6
    assert dlg.table.item(0, 0).text() == "task_success"
    alpha = rep.targets[0].result.alpha
    assert dlg.table.item(0, 3).text() == alpha.fmt()
    assert dlg.table.item(0, 4).text() in ("reliable", "tentative", "unreliable")
    assert dlg.alpha_chart.canvas is not None and dlg.heatmap.canvas is not None
    assert dlg.trend_chart.canvas is not None
    steps = rep.step_labels  # agreement on the judges' step labels, beside the criteria
    assert steps.n_reviews > 0 and f"{steps.exact_step:.3f}" in dlg.steps.text()
    assert steps.alpha.fmt() in dlg.steps.text()
    png = tmp_path / "alpha.png"
    dlg.alpha_chart.save_png(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = tmp_path / "r.html"
    dlg.export_html(str(html))
    assert "data:image/png;base64," in html.read_text()
    # the trace with most disagreement opens in adjudication
    assert dlg.disagreement_model.rowCount() > 0
    qtmodeltester.check(dlg.disagreement_model)
    with qtbot.waitSignal(dlg.adjudicate_requested) as sig:
        dlg._open_disagreement(0)
    trace_id, version_id = sig.args
    assert trace_id == rep.disagreements[0].trace_id
    adj = AdjudicationDialog(ws, lead, trace_id, version_id)
    qtbot.addWidget(adj)
    assert adj.side_by_side.columnCount() == 3
    assert adj.panel.decision() is not None  # pre-filled with the majority
    adj.panel.set_decision("reject")
    adj.panel.rationale.setPlainText("Policy was broken; the majority missed it.")
    prefilled = adj.panel.scores()
    for row in adj.panel.rows:
        if row.spec.key == "failure_mode":
            row.set_value("policy_violation")
        if row.spec.key == "task_success":
            row.set_value(0)
        if row.spec.key not in prefilled and row.spec.levels:  # the judges split evenly on it:
            row.set_value(row.spec.levels[0]["value"])  # not pre-filled, the lead decides
    with qtbot.waitSignal(adj.adjudicated):
        assert adj.record(), adj.panel.problems.text()
    with ws.session() as s:
        gold = s.scalar(
            select(Adjudication).where(
                Adjudication.trace_id == trace_id, Adjudication.rubric_version_id == version_id
            )
        )
        assert gold.decision == "reject" and gold.scores["failure_mode"] == "policy_violation"
        assert gold.rationale == "Policy was broken; the majority missed it."
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.entity == "adjudication", AuditEntry.entity_id == gold.id)
            )
            >= 1
        )
    dlg.close()
    ws.close()


def test_adjudication_refuses_an_incomplete_verdict(qtbot, sample_db):  # noqa: F811
    from ui.lead.adjudication import AdjudicationDialog

    ws = open_workspace(sample_db)
    with ws.session() as s:
        v1 = get_version(s, version=1)
        tid = s.scalar(
            select(Assignment.trace_id)
            .join(ReviewRound)
            .where(ReviewRound.name == "Calibration round 1")
            .limit(1)
        )
        vid = v1.id
    adj = AdjudicationDialog(ws, judge(ws, "Rosa Lindqvist"), tid, vid)
    qtbot.addWidget(adj)
    adj.panel.load(None, {}, "")
    assert not adj.record()
    adj.panel.set_decision("approve")
    assert not adj.record()
    assert "required for approve" in adj.panel.problems.text()
    ws.close()


def test_adjudication_shows_a_tie_as_a_tie_and_refuses_a_bare_reject(qtbot, ws):
    from PySide6.QtGui import QColor

    from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
    from app.review.rubrics import create_rubric
    from app.workspace.models import Trace
    from tests.test_reliability import SPECS, _traces
    from ui.lead.adjudication import AdjudicationDialog

    _traces(ws, 1)
    with ws.session() as s:
        tid = s.scalar(select(Trace.id))
        lead = get_or_create_judge(s, "Lead", "lead")
        vid = create_rubric(s, "R", SPECS).id
        for name, decision, scores in (
            ("A", "approve", {"ok": 1, "quality": 3}),
            ("B", "modify", {"ok": 1, "quality": 2}),
            ("C", "reject", {"ok": 0, "quality": 1}),
        ):
            data = ReviewInput(decision, scores, "why", corrected_output="better")
            submit_review(s, tid, get_or_create_judge(s, name).id, vid, data)
    dlg = AdjudicationDialog(ws, lead, tid, vid)
    qtbot.addWidget(dlg)
    assert dlg.panel.decision() is None and dlg.panel.scores() == {}
    assert "split (approve 1, modify 1, reject 1)" in dlg.message.text()
    red = QColor("#fde2e1")
    assert dlg.side_by_side.item(0, 0).background().color() == red  # decision differs
    assert dlg.side_by_side.item(3, 0).background().color() != red  # rationale: free text
    # a reject with nothing failed and no rationale is refused as gold, as it is as a review
    dlg.panel.set_decision("reject")
    for row in dlg.panel.rows:
        row.set_value(1 if row.spec.key == "ok" else 3)
    assert not dlg.record()
    assert "a rationale is required" in dlg.panel.problems.text()
    assert "mark at least one failed criterion" in dlg.panel.problems.text()
