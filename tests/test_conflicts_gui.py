"""The same judge in two windows (two machines): the second write shows both versions."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from sqlalchemy import select

from app.sample import build_sample
from app.workspace.db import open_workspace
from app.workspace.models import AuditEntry, Review
from tests.test_gui import window_for


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture
def sample_db(tmp_path) -> str:
    path = str(tmp_path / "sample.sqlite")
    ws = open_workspace(path)
    build_sample(ws, n_traces=60)
    ws.close()
    return path


SCORES = {
    "task_success": 1,
    "policy": 1,
    "tool_use": 4,
    "communication": 5,
    "failure_mode": "none",
}


def _fill_and_submit(qtbot, w, why: str) -> None:
    w.panel.load("approve", SCORES, why)
    w.submit()
    assert not w.panel.problems.text()


def _two_windows(qtbot, sample_db):
    one = window_for(qtbot, sample_db, "Kwame Mensah")
    two = window_for(qtbot, sample_db, "Kwame Mensah")
    for w in (one, two):
        w.autosave.stop()  # the test decides when each window writes
    assert one.trace["id"] == two.trace["id"]
    return one, two, one.trace["id"]


def _stored(ws, trace_id, judge_id):
    with ws.session() as s:
        return s.scalar(
            select(Review).where(Review.trace_id == trace_id, Review.judge_id == judge_id)
        )


@pytest.mark.parametrize("choice", ["mine", "theirs"])
def test_second_window_sees_both_versions_and_chooses(qtbot, sample_db, choice):
    one, two, trace_id = _two_windows(qtbot, sample_db)
    _fill_and_submit(qtbot, one, "from window one")
    _fill_and_submit(qtbot, two, "from window two")
    dlg = two.conflict_dialog
    assert dlg is not None and dlg.isVisible()
    assert "from window one" in dlg.theirs_view.toPlainText()
    assert "from window two" in dlg.mine_view.toPlainText()
    assert _stored(two.ws, trace_id, two.judge.id).rationale == "from window one"
    button = dlg.keep_mine if choice == "mine" else dlg.keep_theirs
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert two.conflict_dialog is None
    stored = _stored(two.ws, trace_id, two.judge.id)
    expected = "from window two" if choice == "mine" else "from window one"
    assert stored.rationale == expected and stored.status == "submitted"
    with two.ws.session() as s:
        log = list(
            s.scalars(
                select(AuditEntry).where(AuditEntry.entity == "review").order_by(AuditEntry.id)
            )
        )
    mine_log = [e for e in log if e.details.get("trace_id") == trace_id]
    actions = [e.action for e in mine_log]
    assert actions == (
        ["submit", "conflict", "amend"] if choice == "mine" else ["submit", "conflict"]
    )
    conflict = mine_log[1].details
    assert conflict["mine"]["rationale"] == "from window two"
    assert conflict["theirs"]["rationale"] == "from window one"
    if choice == "theirs":  # the window now shows the stored review
        assert two.trace["id"] == trace_id
        assert two.panel.rationale.toPlainText() == "from window one"


def test_stale_draft_autosave_conflicts_instead_of_overwriting(qtbot, sample_db):
    one, two, trace_id = _two_windows(qtbot, sample_db)
    _fill_and_submit(qtbot, one, "submitted in window one")
    two.panel.rationale.setPlainText("typing in window two")
    two.mark_dirty()
    two.save_draft_if_dirty()
    assert two.conflict_dialog is not None
    assert _stored(two.ws, trace_id, two.judge.id).rationale == "submitted in window one"


def test_status_bar_shows_a_judge_name_as_plain_text(qtbot, tmp_path):
    from app.review.reviews import get_or_create_judge
    from ui.application import make_app
    from ui.review.window import MainWindow

    make_app()
    ws = open_workspace(str(tmp_path / "w.sqlite"))
    with ws.session() as s:
        j = get_or_create_judge(s, "<b>Eve</b> <a href='x'>click</a>", "lead")
    w = MainWindow(ws, j)
    qtbot.addWidget(w)
    assert w.status_judge.textFormat() == Qt.TextFormat.PlainText
    assert "<b>Eve</b>" in w.status_judge.text()
    w.status_judge.adjustSize()
    # rendered as markup the label would be far narrower than the raw text
    assert w.status_judge.sizeHint().width() > w.fontMetrics().horizontalAdvance("<b>Eve</b> <a")


def test_two_leads_adjudicating_one_trace(qtbot, sample_db):
    from sqlalchemy import func

    from app.review.team import create_profile
    from app.workspace.models import Adjudication, Judge
    from ui.application import make_app
    from ui.lead.adjudication import AdjudicationDialog

    make_app()
    ws = open_workspace(sample_db)
    with ws.session() as s:
        rosa = s.scalar(select(Judge).where(Judge.name == "Rosa Lindqvist"))
        other = create_profile(s, "Second Lead", "lead", rosa)
        gold = select(Adjudication.trace_id)
        trace_id, version_id = s.execute(
            select(Review.trace_id, Review.rubric_version_id)
            .where(Review.status == "submitted", Review.trace_id.not_in(gold))
            .group_by(Review.trace_id, Review.rubric_version_id)
            .having(func.count() >= 2)
            .limit(1)
        ).one()
    first = AdjudicationDialog(ws, rosa, trace_id, version_id)
    second = AdjudicationDialog(ws, other, trace_id, version_id)
    for d in (first, second):
        qtbot.addWidget(d)
    first.panel.rationale.setPlainText("Rosa's verdict")
    assert first.record()
    second.panel.rationale.setPlainText("second lead's verdict")
    assert not second.record()  # refused: Rosa recorded since it opened
    assert "Rosa Lindqvist recorded a verdict" in second.panel.problems.text()
    shown = second.message.text()
    assert "Rosa&#x27;s verdict" in shown or "Rosa's verdict" in shown
    this = (Adjudication.trace_id == trace_id, Adjudication.rubric_version_id == version_id)
    with ws.session() as s:
        assert s.scalar(select(Adjudication.rationale).where(*this)) == "Rosa's verdict"
    assert second.record()  # recording again, having seen theirs, replaces it
    with ws.session() as s:
        adj = s.scalar(select(Adjudication).where(*this))
        assert (adj.rationale, adj.version) == ("second lead's verdict", 2)
        actions = list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "adjudication", AuditEntry.entity_id == adj.id)
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["adjudicate", "conflict", "amend"]
