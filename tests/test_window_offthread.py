"""The review bench keeps workspace-sized database work off the UI thread: a draft saved or a
review submitted moves one row and the counters (no recount); a search runs on the executor."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QSettings

from app.review.queue import queue_progress
from tests.test_gui import judge, sample_db, window_for  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def recount(w):
    with w.ws.session() as s:
        return queue_progress(s, w.judge, w.version.id)


def counted(qtbot, w) -> None:
    """The window counts its queue on the executor: wait for the counters."""
    qtbot.waitUntil(lambda: bool(w.progress) and not w.counting, timeout=10_000)


@pytest.fixture
def no_recount(monkeypatch):
    """Counts the window's calls of queue_progress (the full count of the queue)."""
    calls: list[int] = []
    from ui.review import window

    real = window.queue_progress

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(window, "queue_progress", counting)
    return calls


def test_autosave_moves_one_row_and_the_counters_without_a_recount(
    qtbot,
    sample_db,  # noqa: F811
    no_recount,
):
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    counted(qtbot, w)
    before = dict(w.progress)
    row = w.current_row()
    assert w.model.queue_row(row).status == "todo"
    no_recount.clear()
    w.panel.set_decision("approve")
    assert w.dirty
    w.save_draft_if_dirty()
    assert no_recount == []  # the autosave did not count the queue
    assert w.model.queue_row(row).status == "draft"
    assert w.progress == {**before, "todo": before["todo"] - 1, "draft": before["draft"] + 1}
    assert w.progress == recount(w)  # ... and its counters are what a recount says
    assert f"Drafts {before['draft'] + 1}" in w.status_progress.text()
    # a second autosave of the same draft changes no counter
    w.panel.rationale.setPlainText("more")
    w.save_draft_if_dirty()
    assert w.progress == recount(w) and no_recount == []


def test_submit_and_undo_keep_the_counters_right_without_a_recount(
    qtbot,
    sample_db,  # noqa: F811
    no_recount,
):
    w = window_for(qtbot, sample_db, "Rosa Lindqvist")  # a lead: the Reviews column moves too
    counted(qtbot, w)
    tid = w.trace["id"]
    n_before = w.model.queue_row(w.model.row_of(tid)).n_reviews
    for row in w.panel.rows:  # a complete approval
        if row.spec.scale == "binary":
            row.set_value(1)
        elif row.spec.levels:
            row.set_value(row.spec.levels[-1]["value"])
    w.panel.set_decision("approve")
    no_recount.clear()
    w.submit()
    assert w.panel.problems.text() == "", w.panel.problems.text()
    r = w.model.queue_row(w.model.row_of(tid))
    assert (r.status, r.n_reviews) == ("done", n_before + 1)
    assert no_recount == []
    assert w.progress == recount(w)
    w.undo_submission()
    r = w.model.queue_row(w.model.row_of(tid))
    assert (r.status, r.n_reviews) == ("draft", n_before)
    assert no_recount == [] and w.progress == recount(w)


def test_search_runs_on_the_executor_and_keeps_the_open_trace(
    qtbot,
    sample_db,  # noqa: F811
    monkeypatch,
):
    from ui.review import queue_model

    w = window_for(qtbot, sample_db, "Rosa Lindqvist")
    threads: list[str] = []
    real = queue_model.queue_count

    def spy(*a, **k):
        threads.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(queue_model, "queue_count", spy)
    task = w.model.queue_row(w.current_row()).task
    word = max(task.split(), key=len)
    opened = w.trace["id"]
    w.search.setText(word)
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        w.apply_filter()
        assert w.model.searching and w.queue_label.text() == "Searching…"  # not blocked
    assert threads == ["chambers-db"]
    assert 0 < w.model.total < 150
    same = queue_model.QueueModel(w.ws, w.judge, w.version.id)  # set_filter: synchronous
    same.set_filter(search=word)
    ids = [same.trace_id(i) for i in range(same.rowCount())]
    same.close()
    assert [w.model.trace_id(i) for i in range(w.model.rowCount())] == ids
    assert w.trace["id"] == opened  # the open trace matches, so it stays open
    assert "trace" in w.queue_label.text()
    # a newer search replaces an older one still running: only the last lands
    w.search.setText("zzz-no-such-task")
    w.apply_filter()
    w.search.setText("")
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        w.apply_filter()
    qtbot.wait(50)
    assert w.model.total == 150


def test_another_rubric_version_loads_on_the_executor(
    qtbot,
    sample_db,  # noqa: F811
    no_recount,
):
    w = window_for(qtbot, sample_db, "Rosa Lindqvist")
    counted(qtbot, w)
    other = next(
        w.version_combo.itemData(i)
        for i in range(w.version_combo.count())
        if w.version_combo.itemData(i) != w.version.id
    )
    no_recount.clear()
    with qtbot.waitSignal(w.version_loaded, timeout=10_000):
        w.version_combo.setCurrentIndex(w.version_combo.findData(other))
        # meanwhile: nothing open, the old rows not clickable
        assert w.trace is None and not w.table.isEnabled() and w.queue_label.text() == "Loading…"
    assert w.version.id == other and w.table.isEnabled() and w.trace is not None
    assert w.model.version_id == other and w.model.total == 150
    counted(qtbot, w)
    assert no_recount == [1] and w.progress == recount(w)  # counted once, on the executor


def test_a_draft_saved_while_counting_is_counted_again(
    qtbot,
    sample_db,  # noqa: F811
):
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    counted(qtbot, w)
    w._recount()
    assert w.counting
    w.panel.set_decision("approve")
    w.save_draft_if_dirty()  # while the count is on its way: it may or may not include it
    counted(qtbot, w)
    assert w.progress == recount(w)


def test_closing_the_window_stops_its_executor(qtbot, sample_db):  # noqa: F811
    w = window_for(qtbot, sample_db, "Kwame Mensah")
    assert w.executor.running
    w.close()
    assert not w.executor.running
