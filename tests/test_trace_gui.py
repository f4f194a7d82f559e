"""The 40-step airline trace in the review bench, driven by keys (pytest-qt, offscreen):
outline jumps, find feedback, the side pane, the task box, step labels, the editor's keys."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from app.sample import build_sample
from app.traces.ingest import import_paths
from app.workspace.db import open_workspace
from app.workspace.models import Judge, Review, Trace

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tau_airline_40.jsonl"
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("airline") / "airline.sqlite"
    ws = open_workspace(str(path))
    build_sample(ws, n_traces=30)
    report = import_paths(ws, [FIXTURE])
    assert report.imported == 1 and not report.errors
    ws.close()
    return path


@pytest.fixture
def w(qtbot, template, tmp_path):
    from ui.application import make_app
    from ui.review.window import MainWindow

    db = tmp_path / "airline.sqlite"
    shutil.copy(template, db)
    make_app()
    ws = open_workspace(str(db))
    with ws.session() as s:
        lead = s.scalar(select(Judge).where(Judge.role == "lead"))
        trace_id = s.scalar(select(Trace.id).where(Trace.external_id == "tau-airline-17"))
    win = MainWindow(ws, lead)
    qtbot.addWidget(win)
    win.resize(1700, 1000)
    with qtbot.waitActive(win):
        win.show()
        win.activateWindow()
    while win.model.row_of(trace_id) is None and win.model.canFetchMore():
        win.model.fetchMore()
    win.select_row(win.model.row_of(trace_id))
    assert win.trace["id"] == trace_id
    win.focus_trace()
    return win


def activate(qtbot, window) -> None:
    """Offscreen, a window is not re-activated by itself after a dialog closes."""
    with qtbot.waitActive(window):
        window.activateWindow()


def press(qtbot, w, *keys):
    for key in keys:
        target = (w.focusWidget() if w.isModal() else QApplication.focusWidget()) or w
        if isinstance(key, tuple):
            qtbot.keyClick(target, key[0], key[1])
        else:
            qtbot.keyClick(target, key)


def test_outline_keys_jump_to_steps_tool_calls_and_errors(qtbot, w):
    tv = w.trace_view
    assert tv.outline.count() == 40 and tv.current_step() is None
    press(qtbot, w, Qt.Key.Key_X)
    assert tv.current_step() == 19  # the payment error
    assert "✗ book_reservation: Error: payment" in tv.outline.current_text()
    assert tv.browser.verticalScrollBar().value() > 0  # scrolled to it
    press(qtbot, w, Qt.Key.Key_T)
    assert tv.current_step() == 20  # the next tool call: the second booking
    press(qtbot, w, (Qt.Key.Key_T, SHIFT))
    assert tv.current_step() == 18
    press(qtbot, w, Qt.Key.Key_N, Qt.Key.Key_N)
    assert tv.current_step() == 20
    press(qtbot, w, Qt.Key.Key_P)
    assert tv.current_step() == 19
    press(qtbot, w, (Qt.Key.Key_X, SHIFT), (Qt.Key.Key_X, SHIFT))
    assert tv.current_step() == 19 and "No error before this one" in w.statusBar().currentMessage()
    press(qtbot, w, Qt.Key.Key_X)
    assert tv.current_step() == 19 and "No error after this one" in w.statusBar().currentMessage()


def test_find_counts_matches_says_not_found_and_resets_per_trace(qtbot, w):
    tv = w.trace_view
    press(qtbot, w, (Qt.Key.Key_F, CTRL))
    assert QApplication.focusWidget() is tv.find_edit
    qtbot.keyClicks(tv.find_edit, "HATHAT")
    n = tv.plain_text().count("HATHAT")
    assert n >= 3 and tv.finder.count.text() == f"{n} matches"
    assert len(tv.browser.extraSelections()) == n  # every match highlighted
    press(qtbot, w, Qt.Key.Key_Return)
    assert tv.finder.count.text() == f"1 of {n} matches"
    press(qtbot, w, Qt.Key.Key_Return)
    assert tv.finder.count.text() == f"2 of {n} matches"
    press(qtbot, w, (Qt.Key.Key_Return, SHIFT), (Qt.Key.Key_Return, SHIFT))
    assert tv.finder.count.text() == f"{n} of {n} matches"  # wraps backwards
    tv.find_edit.selectAll()
    qtbot.keyClicks(tv.find_edit, "no such words here")
    assert tv.finder.count.text() == "not found" and tv.browser.extraSelections() == []
    assert not tv.find_next()
    w.step(-1)  # another trace: the search starts empty
    assert tv.find_edit.text() == "" and tv.finder.count.text() == ""


def test_side_pane_task_box_and_readable_results(qtbot, w):
    tv = w.trace_view
    w2_settings = QSettings("Chambers", "Chambers")
    assert w2_settings.value("trace/context_pane") is None
    assert tv.context.isHidden()  # closed at first: the trace needs the room
    assert tv.context.policy.toPlainText() == ""  # and costs nothing while closed
    press(qtbot, w, Qt.Key.Key_S)
    assert not tv.context.isHidden()
    policy = tv.context.policy.toPlainText()
    assert policy.startswith("Airline Agent Policy") and "# Airline" not in policy
    assert "**" not in policy
    tv.context.setCurrentIndex(1)
    assert "book_reservation" in tv.context.tools.toPlainText()
    assert tv.context.tabText(1) == "Tools (8)"
    w.step(-1)
    assert not tv.context.isHidden()  # stays open beside the next trace
    press(qtbot, w, Qt.Key.Key_S)
    assert tv.context.isHidden()
    press(qtbot, w, Qt.Key.Key_S)
    w.step(1)
    box = w.task_box.toPlainText()
    assert "for me and my friend Amélie." in box  # the whole task, not cut mid-word
    assert "Outcome 0" in box and "Expected actions (5, from the benchmark)" in box
    assert w.task_box.isVisible() and w.panel.isVisible()  # beside the rubric while scoring
    text = tv.plain_text()
    assert re.search(r"#19 Tool\s+ERROR\s+← book_reservation call_05\s+Error: payment", text)
    assert "\u202e" not in text


def _fill_label_dialog(reason: str, comment: str) -> None:
    dlg = QApplication.activeModalWidget()
    dlg.reason.setCurrentText(reason)
    dlg.comment.setText(comment)
    dlg.accept()


def test_step_labels_by_keyboard_are_stored(qtbot, w):
    tv = w.trace_view
    press(qtbot, w, Qt.Key.Key_T)  # step 4, get_user_details
    press(qtbot, w, Qt.Key.Key_G)
    assert w.step_labels[4]["label"] == "good" and "[✓ good]" in tv.outline.current_text()
    press(qtbot, w, Qt.Key.Key_X, Qt.Key.Key_G)  # the error result is not the agent's step
    assert 19 not in w.step_labels and "not the agent's" in w.statusBar().currentMessage()
    press(qtbot, w, (Qt.Key.Key_T, SHIFT))  # step 18, the booking with the wrong amount
    QTimer.singleShot(0, lambda: _fill_label_dialog("wrong arguments", "gift card 30, not 34"))
    press(qtbot, w, Qt.Key.Key_F)
    activate(qtbot, w)
    assert w.step_labels[18] == {
        "step": 18,
        "label": "first_error",
        "reason": "wrong arguments",
        "comment": "gift card 30, not 34",
    }
    for _ in range(3):
        press(qtbot, w, Qt.Key.Key_T)
    assert tv.current_step() == 28  # cancel_reservation, against the policy
    QTimer.singleShot(0, lambda: _fill_label_dialog("policy violation", ""))
    press(qtbot, w, Qt.Key.Key_F)  # one first error per review: the earlier one becomes wrong
    activate(qtbot, w)
    assert w.step_labels[28]["label"] == "first_error" and w.step_labels[18]["label"] == "wrong"
    assert "step 18 is now marked wrong" in w.statusBar().currentMessage()
    w.save_draft_if_dirty()
    with w.ws.session() as s:
        review = s.scalar(select(Review).where(Review.trace_id == w.trace["id"]))
        stored = {x["step"]: x["label"] for x in review.step_labels}
    assert stored == {4: "good", 18: "wrong", 28: "first_error"}
    w.step(-1)
    w.step(1)  # reopened: the labels come back
    assert w.step_labels[28]["reason"] == "policy violation"
    assert "[① first error: policy violation]" in tv.plain_text()


def test_editor_keys_edit_a_step_and_end_the_history_there(qtbot, w):
    from ui.review.modify_dialog import ModifyDialog

    tv = w.trace_view
    press(qtbot, w, Qt.Key.Key_X, (Qt.Key.Key_T, SHIFT))
    assert tv.current_step() == 18
    press(qtbot, w, (Qt.Key.Key_M, SHIFT))
    dlg = w.editor
    activate(qtbot, dlg)
    assert isinstance(dlg, ModifyDialog) and dlg.isVisible() and dlg._current == 18
    assert w.panel.decision() == "modify"
    assert "#17 tool" in dlg.context_view.toPlainText()  # the conversation around the step
    args = json.loads(dlg.args_edit.toPlainText())
    args["payment_methods"][1]["amount"] = 34
    dlg.args_edit.setPlainText(json.dumps(args, indent=2, ensure_ascii=False))
    assert dlg.call_status.text() == "✓ valid"
    press(qtbot, dlg, (Qt.Key.Key_D, CTRL | SHIFT))
    assert dlg.tabs.currentIndex() == 1
    diff = dlg.diff_view.toPlainText()
    assert "Step 18 · assistant · tool call book_reservation" in diff and "3034" in diff
    assert "Original steps 19–39 came after the corrected step" in diff and "@@" not in diff
    press(qtbot, dlg, (Qt.Key.Key_D, CTRL | SHIFT))
    press(qtbot, dlg, (Qt.Key.Key_Return, CTRL))
    assert not dlg.isVisible()
    assert len(w.corrected) == 19 and "1 edit" in w.panel.correction_label.text()
    # it ends in a tool call: no answer is claimed (an earlier reply would be no answer)
    assert w.current_input().corrected_output is None
    activate(qtbot, w)

    # the policy violation at 28: turn the call into a reply (Ctrl+T), then a second edit
    for _ in range(3):
        press(qtbot, w, Qt.Key.Key_T)
    assert tv.current_step() == 28
    press(qtbot, w, (Qt.Key.Key_M, SHIFT))
    dlg = w.editor
    activate(qtbot, dlg)
    press(qtbot, dlg, (Qt.Key.Key_T, CTRL))
    assert dlg.kind_combo.currentData() == "reply" and dlg.focusWidget() is dlg.text_edit
    qtbot.keyClicks(dlg.text_edit, "ZFA04Y is basic economy without insurance: I cannot cancel it.")
    press(qtbot, dlg, (Qt.Key.Key_N, CTRL))  # insert a step after it, then delete it again
    assert dlg._current == 29 and dlg.draft.steps[29].origin is None
    press(qtbot, dlg, (Qt.Key.Key_Delete, CTRL | SHIFT))
    assert dlg.draft.steps[29].origin == 29
    press(qtbot, dlg, (Qt.Key.Key_Return, CTRL))
    assert not dlg.isVisible()
    assert len(w.corrected) == 29  # the history ends at the last edited step
    assert w.corrected[18]["parts"][0]["arguments"]["payment_methods"][1]["amount"] == 34
    assert w.corrected[28]["parts"] == [
        {"type": "text", "text": "ZFA04Y is basic economy without insurance: I cannot cancel it."}
    ]
    assert "2 edits" in w.panel.correction_label.text()
    w.save_draft_if_dirty()
    with w.ws.session() as s:
        review = s.scalar(select(Review).where(Review.trace_id == w.trace["id"]))
        assert len(review.corrected_messages) == 29
        assert review.corrected_output.startswith("ZFA04Y is basic economy")


def test_write_the_answer_key_and_escape(qtbot, w):
    press(qtbot, w, (Qt.Key.Key_W, SHIFT))
    dlg = w.editor
    activate(qtbot, dlg)
    assert dlg.isVisible() and dlg._current == 38 and dlg.kind_combo.currentData() == "reply"
    assert dlg.text_edit.toPlainText().startswith("Done: HATHAT now has")
    press(qtbot, dlg, Qt.Key.Key_Escape)
    assert not dlg.isVisible() and w.corrected is None


def test_shortcuts_sheet_lists_the_trace_and_editor_keys(qtbot, w):
    from ui.review.shortcuts import SHORTCUTS, ShortcutsDialog

    keys = dict(SHORTCUTS)
    for k in ("n / p", "t / Shift+T", "x / Shift+X", "g / w / f", "Shift+W", "s"):
        assert k in keys
    dlg = ShortcutsDialog(w)
    qtbot.addWidget(dlg)
    text = " ".join(lab.text() for lab in dlg.findChildren(type(w.queue_label)))
    assert "In the Modify editor" in text and "keep the correction and close the editor" in text
    assert "Ctrl+T" in text and "Ctrl+Shift+Delete" in text


def _submit(ws, trace_id, judge_name, labels, corrected=None, answer=None):
    from app.review.reviews import ReviewInput, submit_review
    from app.review.rubrics import specs_of
    from app.workspace.models import RubricVersion

    with ws.session() as s:
        judge = s.scalar(select(Judge).where(Judge.name == judge_name))
        version = s.scalars(select(RubricVersion).order_by(RubricVersion.id.desc())).first()
        scores = {}
        for c in specs_of(version):
            scores[c.key] = 0 if c.scale == "binary" else c.levels[0]["value"]
        data = ReviewInput(
            decision="reject",
            scores=scores,
            rationale="cancelled a basic economy trip",
            corrected_messages=corrected,
            corrected_output=answer,
            step_labels=labels,
        )
        submit_review(s, trace_id, judge.id, version.id, data)
        return version.id


def test_adjudication_shows_step_labels_and_word_diffs_side_by_side(qtbot, w):
    from ui.lead.adjudication import AdjudicationDialog

    trace = w.trace
    corrected = json.loads(json.dumps(trace["messages"][:29]))
    corrected[28] = {
        "role": "assistant",
        "parts": [{"type": "text", "text": "I cannot cancel ZFA04Y: basic economy."}],
    }
    _submit(
        w.ws,
        trace["id"],
        "Hana Sato",
        [
            {"step": 18, "label": "wrong", "reason": "wrong arguments", "comment": ""},
            {"step": 28, "label": "first_error", "reason": "policy violation", "comment": ""},
        ],
        corrected=corrected,
        answer="I cannot cancel ZFA04Y: basic economy.",
    )
    version_id = _submit(
        w.ws,
        trace["id"],
        "Ines Moreau",
        [{"step": 28, "label": "first_error", "reason": "policy violation", "comment": "24 h"}],
        answer="Done: HATHAT now has 3 checked bags. ZFA04Y could not be cancelled.",
    )
    adj = AdjudicationDialog(w.ws, w.judge, trace["id"], version_id)
    qtbot.addWidget(adj)
    table = adj.step_labels
    heads = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert heads == ["Hana Sato", "Ines Moreau"]
    rows = [table.verticalHeaderItem(i).text() for i in range(table.rowCount())]
    assert rows == ["Step 18 → book_reservation", "Step 28 → cancel_reservation"]
    assert [table.item(0, j).text() for j in range(2)] == ["wrong: wrong arguments", "—"]
    assert table.item(1, 1).text() == "FIRST ERROR: policy violation — 24 h"
    assert table.item(0, 0).background().color().name() == "#fde2e1"  # they differ
    assert table.item(1, 0).background().color().name() != "#fde2e1"  # same label
    diffs = adj.corrections.toPlainText()
    assert "Step 28 · assistant · reply" in diffs and "@@" not in diffs
    assert "The agent's final answer against the judge's" in diffs  # Ines: an answer only
    assert "ZFA04Y iscould not be cancelled" in diffs  # "is" struck out, "could not be" in
