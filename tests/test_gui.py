"""The review bench, driven through the real widgets with pytest-qt (offscreen)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from sqlalchemy import func, select

from app.sample import build_sample
from app.workspace.db import open_workspace
from app.workspace.models import AuditEntry, Judge, Review

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture
def sample_db(tmp_path) -> str:
    path = str(tmp_path / "sample.sqlite")
    ws = open_workspace(path)
    build_sample(ws, n_traces=150)
    ws.close()
    return path


def judge(ws, name):
    with ws.session() as s:
        return s.scalar(select(Judge).where(Judge.name == name))


def window_for(qtbot, db, name):
    from ui.application import make_app
    from ui.review.window import MainWindow

    make_app()
    ws = open_workspace(db)
    w = MainWindow(ws, judge(ws, name))
    qtbot.addWidget(w)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    w.focus_trace()
    return w


def press(qtbot, w, *keys):
    from PySide6.QtWidgets import QApplication

    for key in keys:
        target = QApplication.focusWidget() or w
        if isinstance(key, tuple):
            qtbot.keyClick(target, key[0], key[1])
        else:
            qtbot.keyClick(target, key)


def submitted(ws, judge_id):
    with ws.session() as s:
        return list(
            s.scalars(
                select(Review).where(Review.judge_id == judge_id, Review.status == "submitted")
            )
        )


def test_ten_reviews_with_the_keyboard_only(qtbot, sample_db):
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    ws = w.ws
    before = {r.trace_id for r in submitted(ws, w.judge.id)}
    opened = []
    for _ in range(10):
        opened.append(w.trace["id"])
        assert w.model.queue_row(w.current_row()).status != "done"
        # task_success=pass, policy=pass, tool_use=4, communication=5, failure_mode=1st category
        press(
            qtbot,
            w,
            Qt.Key.Key_1,
            Qt.Key.Key_1,
            Qt.Key.Key_4,
            Qt.Key.Key_5,
            Qt.Key.Key_1,
            Qt.Key.Key_A,
        )
        press(qtbot, w, (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier))
    after = submitted(ws, w.judge.id)
    new = [r for r in after if r.trace_id not in before]
    assert sorted(r.trace_id for r in new) == sorted(opened) and len(set(opened)) == 10
    for r in new:
        assert r.decision == "approve"
        assert r.scores == {
            "task_success": 1,
            "policy": 1,
            "tool_use": 4,
            "communication": 5,
            "failure_mode": "none",
        }
        assert r.rubric_version_id == w.version.id and r.time_on_task_s >= 0
    # j/k move through the queue
    row = w.current_row()
    press(qtbot, w, Qt.Key.Key_J)
    assert w.current_row() == row + 1
    press(qtbot, w, Qt.Key.Key_K)
    assert w.current_row() == row


def test_incomplete_submission_is_refused_with_reasons(qtbot, sample_db):
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    press(qtbot, w, Qt.Key.Key_R, (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier))
    text = w.panel.problems.text()
    assert "task_success: required for reject" in text and "rationale is required" in text
    assert not [r for r in submitted(w.ws, w.judge.id) if r.trace_id == w.trace["id"]]


def test_modify_stores_the_correction(qtbot, sample_db):
    from ui.review.modify_dialog import ModifyDialog

    w = window_for(qtbot, sample_db, "Hana Sato")
    trace_id = w.trace["id"]
    press(qtbot, w, Qt.Key.Key_1, Qt.Key.Key_0, Qt.Key.Key_2, Qt.Key.Key_2, Qt.Key.Key_3)
    press(qtbot, w, Qt.Key.Key_M)
    dlg = w.editor
    assert isinstance(dlg, ModifyDialog) and dlg.isVisible()
    # the final answer is preselected; rewrite it
    dlg.text_edit.selectAll()
    qtbot.keyClicks(dlg.text_edit, "Corrected: the parcel is in transit, expected Wednesday.")
    dlg.tabs.setCurrentIndex(1)
    diff = dlg.diff_view.toPlainText()  # word diff: the changed step in place, no hunks
    assert "Corrected: the parcel" in diff and "Step 6 · assistant · reply" in diff
    assert "@@" not in diff and "unchanged" in diff
    dlg._accept()
    assert not dlg.isVisible()
    assert "1 edit" in w.panel.correction_label.text()
    w.activateWindow()
    w.focus_trace()
    press(qtbot, w, (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier))
    [review] = [r for r in submitted(w.ws, w.judge.id) if r.trace_id == trace_id]
    assert review.decision == "modify"
    assert review.corrected_output == "Corrected: the parcel is in transit, expected Wednesday."
    assert review.corrected_messages[-1]["parts"][-1]["text"] == review.corrected_output
    assert review.scores["failure_mode"] == "hallucination"


def test_tool_call_arguments_are_validated_against_the_schema(qtbot, sample_db):
    w = window_for(qtbot, sample_db, "Hana Sato")
    press(qtbot, w, Qt.Key.Key_M)
    dlg = w.editor
    call_row = next(i for i, t in enumerate(dlg.targets) if t.kind == "tool_call")
    dlg.list.setCurrentRow(call_row)
    dlg.args_edit.setPlainText("{not json")
    assert "not valid JSON" in dlg.call_status.text()
    dlg.args_edit.setPlainText('{"unexpected": 1}')
    assert "required" in dlg.call_status.text()
    dlg._accept()
    assert dlg.isVisible() and "required" in dlg.errors.text()
    dlg.reject()


def test_blind_judges_and_leads_see_all(qtbot, sample_db):
    w = window_for(qtbot, sample_db, "Ines Moreau")
    tabs = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert "All reviews" not in tabs
    ws = w.ws
    with ws.session() as s:
        ines = judge(ws, "Ines Moreau")
        kwame = judge(ws, "Kwame Mensah")
        from app.workspace.models import Assignment, ReviewRound

        # the judge starts on the version of their latest round with work to do (the backlog,
        # rubric v1); the queue holds that version's assignments only
        assert w.version.version == 1
        assigned = set(
            s.scalars(
                select(Assignment.trace_id)
                .join(ReviewRound)
                .where(
                    Assignment.judge_id == ines.id, ReviewRound.rubric_version_id == w.version.id
                )
            )
        )
        others_only = set(
            s.scalars(select(Review.trace_id).where(Review.judge_id == kwame.id))
        ) - set(s.scalars(select(Review.trace_id).where(Review.judge_id == ines.id)))
    # the queue holds exactly this judge's assignments
    while w.model.canFetchMore():
        w.model.fetchMore()
    assert {w.model.trace_id(i) for i in range(w.model.rowCount())} == assigned
    # a trace another judge reviewed opens empty for this judge
    target = next(iter(others_only & assigned), None)
    if target is not None:
        w.select_row(w.model.row_of(target))
        assert w.panel.decision() is None and w.panel.scores() == {}
    lead = window_for(qtbot, sample_db, "Rosa Lindqvist")
    assert "All reviews" in [lead.tabs.tabText(i) for i in range(lead.tabs.count())]
    lead.select_row(lead.model.row_of(1))
    # read on the workspace executor
    qtbot.waitUntil(lambda: "Ines Moreau" in lead.others.toPlainText(), timeout=10_000)
    text = lead.others.toPlainText()
    assert all(name in text for name in ("Ines Moreau", "Kwame Mensah", "Hana Sato"))


def test_undo_last_submission(qtbot, sample_db):
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    trace_id = w.trace["id"]
    press(
        qtbot, w, Qt.Key.Key_1, Qt.Key.Key_1, Qt.Key.Key_4, Qt.Key.Key_5, Qt.Key.Key_1, Qt.Key.Key_A
    )
    press(qtbot, w, (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier))
    assert w.trace["id"] != trace_id
    press(qtbot, w, (Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier))
    assert w.trace["id"] == trace_id
    with w.ws.session() as s:
        r = s.scalar(
            select(Review).where(Review.trace_id == trace_id, Review.judge_id == w.judge.id)
        )
        assert r.status == "draft" and r.decision == "approve"
        actions = list(
            s.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.entity == "review", AuditEntry.entity_id == r.id
                )
            )
        )
        assert actions == ["submit", "withdraw"]
    assert w.panel.decision() == "approve"


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, sys.argv[3])
    from sqlalchemy import select
    from app.workspace.db import open_workspace
    from app.workspace.models import Judge
    from ui.review.window import MainWindow
    from ui.application import make_app
    app = make_app()
    ws = open_workspace(sys.argv[1])
    with ws.session() as s:
        j = s.scalar(select(Judge).where(Judge.name == "Hana Sato"))
    w = MainWindow(ws, j)
    w.show()
    print(w.trace["id"], flush=True)
    def work():
        w.panel.set_decision("reject")
        w.panel.digit(0)
        QTest.keyClicks(w.panel.rationale, sys.argv[2])
    def die():
        os.kill(os.getpid(), signal.SIGKILL)  # no closeEvent, no clean shutdown
    QTimer.singleShot(100, work)
    QTimer.singleShot(100 + 1500 + 1200, die)
    app.exec()
    """
)


def test_a_draft_survives_the_app_being_killed(qtbot, sample_db, tmp_path):
    rationale = "Refund exceeds the amount paid"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, sample_db, rationale, str(tmp_path / "s")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    trace_id = int(proc.stdout.split()[0])
    ws = open_workspace(sample_db)
    with ws.session() as s:
        hana = judge(ws, "Hana Sato")
        r = s.scalar(select(Review).where(Review.trace_id == trace_id, Review.judge_id == hana.id))
        assert (r.status, r.decision, r.rationale, r.scores) == (
            "draft",
            "reject",
            rationale,
            {"task_success": 0},
        )
    # reopening the app restores the draft into the panel
    w = window_for(qtbot, sample_db, "Hana Sato")
    w.select_row(w.model.row_of(trace_id))
    assert w.panel.decision() == "reject" and w.panel.rationale.toPlainText() == rationale
    assert w.model.queue_row(w.current_row()).status == "draft"


def test_hostile_content_renders_safely(qtbot, tmp_path, monkeypatch):
    from app.traces.ingest import import_paths
    from ui.widgets.trace_view import TraceBrowser

    loads = []
    monkeypatch.setattr(
        TraceBrowser, "loadResource", lambda self, t, url: loads.append(url.toString())
    )
    huge = "A" * 2_000_000
    evil = '<script>alert("x")</script><img src="http://evil.example/pixel.png"><b>bold?</b>'
    conv = {
        "id": "hostile",
        "messages": [
            {"role": "system", "content": evil},
            {"role": "user", "content": evil + " [link](javascript:alert(1))"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "<i>tool</i>", "arguments": "{broken json"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": huge},
            {"role": "assistant", "content": evil},
        ],
        "reward": 0,
    }
    path = tmp_path / "hostile.jsonl"
    path.write_text(json.dumps(conv) + "\n")
    db = str(tmp_path / "h.sqlite")
    ws = open_workspace(db)
    import_paths(ws, [path])
    with ws.session() as s:
        from app.review.reviews import get_or_create_judge

        get_or_create_judge(s, "Lead", "lead")
    w = window_for(qtbot, db, "Lead")
    text = w.trace_view.plain_text()
    assert '<script>alert("x")</script>' in text  # shown as text, not run
    assert "<i>tool</i>" in text and "arguments are not valid JSON" in text
    assert "show 200,000 of 1,997,000 more characters" in text and len(text) < 50_000
    assert loads == []  # nothing fetched, not even the <img>
    html = w.trace_view.browser.toHtml()
    assert "<img" not in html  # the tag is text in the document, never an image element
    # "show more" reveals the long output a large chunk at a time
    from PySide6.QtCore import QUrl

    w.trace_view._anchor(QUrl("more:3.0"))
    text = w.trace_view.plain_text()
    assert 200_000 < len(text) < 260_000 and "show 200,000 of 1,797,000 more characters" in text
    from PySide6.QtWidgets import QLabel

    no_rubric = w.tabs.widget(0).findChild(QLabel).text()
    assert "No rubric" in no_rubric  # no rubric yet: a clear message, not a crash


def test_queue_model_passes_qtmodeltester(qtmodeltester, sample_db):
    from ui.review.queue_model import QueueModel

    ws = open_workspace(sample_db)
    with ws.session() as s:
        lead = judge(ws, "Rosa Lindqvist")
        from app.review.rubrics import get_version

        v = get_version(s, version=1)  # v1: the calibration round and the backlog
    model = QueueModel(ws, lead, v.id)
    qtmodeltester.check(model)
    assert model.total == 150 and model.rowCount() == 150
    ines = QueueModel(ws, judge(ws, "Ines Moreau"), v.id)
    qtmodeltester.check(ines)
    assigned = ines.total
    ines.set_filter(status="todo")
    qtmodeltester.check(ines)
    assert 0 < ines.total < assigned < 150


def test_lazy_loading_in_batches(qtbot, tmp_path):
    from app.review.reviews import get_or_create_judge
    from app.review.rubrics import CriterionSpec, create_rubric
    from app.traces.ingest import import_paths
    from ui.review.queue_model import BATCH, QueueModel

    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "messages": [{"role": "user", "content": f"task {i}"}]})
            + "\n"
            for i in range(BATCH * 2 + 17)
        )
    )
    ws = open_workspace(str(tmp_path / "m.sqlite"))
    import_paths(ws, [path])
    with ws.session() as s:
        lead = get_or_create_judge(s, "L", "lead")
        v = create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")])
    model = QueueModel(ws, lead, v.id)
    assert model.rowCount() == BATCH and model.canFetchMore()
    model.fetchMore()
    model.fetchMore()
    assert model.rowCount() == BATCH * 2 + 17 and not model.canFetchMore()
    model.set_filter(search="task 1")  # task 1, 10-19 and 100-199 among 0..416
    assert model.total == 111 and model.rowCount() == 111


def test_import_dialog_runs_off_the_ui_thread_and_lists_errors(qtbot, sample_db, tmp_path):
    from ui.traces.import_dialog import ImportDialog

    good = {"id": "new-1", "messages": [{"role": "user", "content": "hello"}]}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\n{broken\n")
    ws = open_workspace(sample_db)
    dlg = ImportDialog(ws, [str(path)])
    qtbot.addWidget(dlg)
    qtbot.waitSignal(dlg.previewed, timeout=30000).wait()
    with qtbot.waitSignal(dlg.done, timeout=30000) as blocker:
        qtbot.mouseClick(dlg.import_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.imported == 1 and len(report.errors) == 1
    assert "line 2" in dlg.errors.toPlainText() and dlg.close_button.isEnabled()
    with ws.session() as s:
        from app.workspace.models import Trace

        assert s.scalar(select(func.count(Trace.id))) == 151


def test_screenshot_command(sample_db, tmp_path):
    out = tmp_path / "main.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--db", sample_db, "app", "--screenshot", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_signal_emission_keeps_bool_refcounts():
    """PySide6 6.12.0 lost a reference to True per emission and crashed the interpreter at
    exit; pyproject pins below it. This fails if a bad release comes back."""
    import gc

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        changed = Signal()

    received = []
    e = Emitter()
    e.changed.connect(lambda: received.append(1))
    gc.collect()
    before = sys.getrefcount(True)
    for _ in range(500):
        e.changed.emit()
    gc.collect()
    assert len(received) == 500
    assert sys.getrefcount(True) - before > -50
