"""The workspace executor: database work on one worker thread, results back by signal."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.review.reviews import get_or_create_judge
from app.workspace.errors import NotFound
from app.workspace.models import Judge
from ui.widgets.executor import WorkspaceExecutor


@pytest.fixture
def executor(qapp, ws):
    ex = WorkspaceExecutor(ws)
    yield ex
    ex.shutdown()
    assert not ex.running


def test_result_is_delivered_on_the_ui_thread_by_signal(qtbot, executor):
    seen: list[tuple[str, str]] = []

    def work(session):
        seen.append(("worker", threading.current_thread().name))
        get_or_create_judge(session, "Ada", "lead")
        return session.scalar(select(func.count(Judge.id)))

    job = executor.submit(work)
    with qtbot.waitSignal(job.done, timeout=10_000) as blocker:
        pass
    assert blocker.args == [1]
    assert seen == [("worker", "chambers-db")]
    # committed: another session sees the judge
    with executor.ws.session() as s:
        assert s.scalar(select(Judge.name)) == "Ada"


def test_callbacks_run_on_the_ui_thread(qtbot, executor):
    threads: list[str] = []
    job = executor.submit(
        lambda s: 7, on_done=lambda r: threads.append(threading.current_thread().name)
    )
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert threads == [threading.main_thread().name]


def test_an_error_is_delivered_and_rolls_back(qtbot, executor):
    def fails(session):
        get_or_create_judge(session, "Half written", "judge")
        raise NotFound("no trace 99")

    job = executor.submit(fails)
    with qtbot.waitSignal(job.failed, timeout=10_000) as blocker:
        pass
    assert isinstance(blocker.args[0], NotFound) and str(blocker.args[0]) == "no trace 99"
    with executor.ws.session() as s:
        assert s.scalar(select(func.count(Judge.id))) == 0  # nothing half-written
    # the worker goes on after an error
    job2 = executor.submit(lambda s: "still here")
    with qtbot.waitSignal(job2.done, timeout=10_000) as blocker:
        pass
    assert blocker.args == ["still here"]


def test_jobs_run_and_deliver_in_submission_order(qtbot, executor):
    order: list[int] = []
    jobs = [executor.submit(lambda s, i=i: i, on_done=order.append) for i in range(20)]
    qtbot.waitUntil(lambda: all(j.finished for j in jobs), timeout=10_000)
    assert order == list(range(20))


def test_a_write_is_seen_by_the_read_submitted_after_it(qtbot, executor):
    executor.submit(lambda s: get_or_create_judge(s, "Bo", "judge") and None)
    job = executor.submit(lambda s: list(s.scalars(select(Judge.name))))
    with qtbot.waitSignal(job.done, timeout=10_000) as blocker:
        pass
    assert blocker.args == [["Bo"]]


def test_a_cancelled_job_delivers_nothing(qtbot, executor):
    gate = threading.Event()
    first = executor.submit(lambda s: gate.wait(10))
    stale = executor.submit(lambda s: "stale")
    stale.cancel()
    got: list[str] = []
    stale.done.connect(got.append)
    last = executor.submit(lambda s: "fresh", on_done=got.append)
    gate.set()
    qtbot.waitUntil(lambda: last.finished and first.finished, timeout=10_000)
    assert got == ["fresh"]


def test_busy_state_follows_the_queue(qtbot, executor):
    states: list[bool] = []
    executor.busy_changed.connect(states.append)
    job = executor.submit(lambda s: None)
    assert executor.busy
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert not executor.busy and states == [True, False]


def test_shutdown_leaves_no_running_thread(qtbot, ws):
    ex = WorkspaceExecutor(ws)
    assert ex.running
    done = ex.submit(lambda s: 1)
    qtbot.waitUntil(lambda: done.finished, timeout=10_000)
    ex.shutdown()
    assert not ex.running
    assert ex._thread not in threading.enumerate()
    late = ex.submit(lambda s: 2)  # after shutdown: refused quietly, never run
    assert late.cancelled


def test_wait_idle_runs_the_event_loop_until_all_is_delivered(qtbot, executor):
    got: list[int] = []
    for i in range(5):
        executor.submit(lambda s, i=i: i, on_done=got.append)
    assert executor.wait_idle(10)
    assert got == [0, 1, 2, 3, 4] and not executor.busy
