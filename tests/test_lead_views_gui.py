"""Lead views through the real widgets: the rubric version on every review in "All reviews",
whole corrections and rationales on demand, the Pairs screen's filter fields unclipped."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from sqlalchemy import select

from app.review.rubrics import get_version
from app.workspace.db import open_workspace
from app.workspace.models import Assignment, Review, ReviewRound
from tests.test_gui import _isolated_settings, judge, sample_db, window_for  # noqa: F401
from ui.review.all_reviews import OtherReview, render_all_reviews


def test_all_reviews_name_the_rubric_version_of_each_review(qtbot, sample_db):  # noqa: F811
    lead = window_for(qtbot, sample_db, "Rosa Lindqvist")
    with lead.ws.session() as s:
        n = len(
            list(
                s.scalars(select(Review).where(Review.trace_id == 1, Review.status == "submitted"))
            )
        )
    lead.select_row(lead.model.row_of(1))
    label = "· rubric Support agent quality · v"
    assert n >= 3
    # All reviews are read on the workspace executor: they appear when the read lands
    qtbot.waitUntil(lambda: lead.others.toPlainText().count(label) == n, timeout=10_000)


def test_long_corrections_show_whole_on_demand():
    long = "x" * 1500
    review = OtherReview("Ann", 1, "reject", {"ok": False}, "Wrong amount.\nSee step 4.", long)
    short = render_all_reviews([review], {1: "R · v1"}, current=2, full=False)
    assert "x" * 600 in short and "x" * 601 not in short
    assert "show all (900 more characters)" in short
    assert "not the version you review under" in short and "Wrong amount.<br>See step 4." in short
    whole = render_all_reviews([review], {1: "R · v1"}, current=1, full=True)
    assert long in whole and "show all" not in whole and "not the version" not in whole


def test_the_show_all_link_expands_in_the_tab(qtbot, sample_db):  # noqa: F811
    lead = window_for(qtbot, sample_db, "Rosa Lindqvist")
    lead._others = [OtherReview("Ann", 1, "modify", {}, "", "y" * 1000)]
    lead._render_others()
    assert "y" * 1000 not in lead.others.toPlainText()
    lead.others.anchorClicked.emit(QUrl("all-reviews:full"))
    assert "y" * 1000 in lead.others.toPlainText()


def test_adjudication_rows_fit_the_whole_rationale(qtbot, sample_db):  # noqa: F811
    from ui.lead.adjudication import AdjudicationDialog

    ws = open_workspace(sample_db)
    with ws.session() as s:
        vid = get_version(s, version=1).id
        tid = s.scalar(
            select(Assignment.trace_id)
            .join(ReviewRound)
            .where(ReviewRound.name == "Calibration round 1")
            .limit(1)
        )
    adj = AdjudicationDialog(ws, judge(ws, "Rosa Lindqvist"), tid, vid)
    qtbot.addWidget(adj)
    adj.show()
    table = adj.side_by_side
    row = [table.verticalHeaderItem(i).text() for i in range(table.rowCount())].index("rationale")
    for width in (1400, 900):
        adj.resize(width, 800)
        qtbot.wait(50)
        assert table.rowHeight(row) >= table.sizeHintForRow(row)
    ws.close()


def test_pairs_filter_fields_show_their_whole_placeholder(qtbot, sample_db):  # noqa: F811
    from ui.training.pairs_screen import PairsDialog

    ws = open_workspace(sample_db)
    dlg = PairsDialog(ws, judge(ws, "Rosa Lindqvist"))
    qtbot.addWidget(dlg)
    dlg.resize(1300, 820)
    dlg.show()
    qtbot.wait(20)
    for field in (dlg.judges, dlg.since, dlg.until):
        need = field.fontMetrics().horizontalAdvance(field.placeholderText())
        assert field.width() > need, field.placeholderText()
    ws.close()
