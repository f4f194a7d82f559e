"""The queue pane through its real widgets (pytest-qt, offscreen): search on the worker
thread, filters, saved views, column layout at 1366x768, and the empty states' buttons."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from sqlalchemy import select

from app.review.reviews import get_or_create_judge
from app.review.rubrics import CriterionSpec, create_rubric
from app.review.views import list_views
from app.traces.ingest import import_paths
from app.workspace.db import open_workspace
from app.workspace.models import Judge, RubricVersion


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def _record(ext: str, tool: str, args: dict, reward: float, domain: str, steps: int = 0) -> dict:
    msgs = [
        {"role": "user", "content": f"Please help with {ext}"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": tool, "arguments": json.dumps(args)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "ok"}'},
    ]
    msgs += [{"role": "user", "content": "and?"}, {"role": "assistant", "content": "yes"}] * steps
    msgs.append({"role": "assistant", "content": f"Done with {ext}."})
    return {
        "id": ext,
        "messages": msgs,
        "reward": reward,
        "metadata": {"domain": domain},
        "scores": {"judge_llm": reward},
    }


RECORDS = [
    _record("air-1", "book_reservation", {"flight": "HAT170"}, 1.0, "airline"),
    _record("air-2", "cancel_reservation", {"reservation_id": "Q1W2"}, 0.0, "airline", steps=3),
    _record("shop-1", "track_shipment", {"tracking": "1Z99"}, 0.5, "retail"),
]


@pytest.fixture
def db(tmp_path, write) -> str:
    path = str(tmp_path / "ws.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("t.jsonl", lines=RECORDS)], "benchmark")
    with ws.session() as s:
        get_or_create_judge(s, "Lee", "lead")
        get_or_create_judge(s, "Jo", "judge")
        create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")])
    ws.close()
    return path


def window_for(qtbot, db: str, name: str, role: str = "lead"):
    from ui.application import make_app
    from ui.review.window import MainWindow

    make_app()
    ws = open_workspace(db)
    with ws.session() as s:
        judge = s.scalar(select(Judge).where(Judge.name == name)) or get_or_create_judge(
            s, name, role
        )
    w = MainWindow(ws, judge)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    return w


def shown(w) -> list[str]:
    return [w.model.queue_row(i).external_id for i in range(w.model.rowCount())]


def search(qtbot, w, text: str | None = None) -> None:
    """Type into the search box (if given) and press Enter; wait for the worker's rows."""
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        if text is not None:
            w.search.clear()
            qtbot.keyClicks(w.search, text)
        qtbot.keyClick(w.search, Qt.Key.Key_Return)
        assert w.model.searching  # the query runs on the worker thread, not in this step


def test_search_runs_off_the_ui_thread_and_finds_tool_names(qtbot, db):
    w = window_for(qtbot, db, "Lee")
    assert shown(w) == ["air-1", "air-2", "shop-1"]
    search(qtbot, w, "book_reservation")
    assert shown(w) == ["air-1"] and w.model.total == 1
    assert w.queue_label.text() == "1 trace in the workspace match"
    assert w.trace is not None and w.trace["external_id"] == "air-1"  # the hit is opened
    search(qtbot, w, "hat170")  # an argument value, any case
    assert shown(w) == ["air-1"]
    search(qtbot, w, "shop")  # part of an external id, as before
    assert shown(w) == ["shop-1"]
    search(qtbot, w, "")
    assert shown(w) == ["air-1", "air-2", "shop-1"]


def test_filters_outcome_steps_tool_score_metadata(qtbot, db):
    w = window_for(qtbot, db, "Lee")
    pane = w.queue_pane
    qtbot.wait_until(lambda: pane.tool.count() > 1)
    assert [pane.tool.itemText(i) for i in range(pane.tool.count())] == [
        "any tool",
        "book_reservation",
        "cancel_reservation",
        "track_shipment",
    ]
    qtbot.mouseClick(pane.filter_button, Qt.MouseButton.LeftButton)
    assert pane.filters.isVisible()
    qtbot.keyClicks(pane.max_outcome, "0.5")
    search(qtbot, w)
    assert shown(w) == ["air-2", "shop-1"]
    assert pane.filter_button.text() == "Filters (1)"
    qtbot.keyClicks(pane.meta, "domain=airline")
    search(qtbot, w)
    assert shown(w) == ["air-2"]
    pane.meta.clear()
    pane.max_outcome.clear()
    qtbot.keyClicks(pane.min_steps, "6")
    search(qtbot, w)
    assert shown(w) == ["air-2"]  # 10 messages; the others have 4
    pane.min_steps.clear()
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        pane.tool.setCurrentIndex(pane.tool.findData("track_shipment"))
        pane.tool.activated.emit(pane.tool.currentIndex())
    assert shown(w) == ["shop-1"]
    pane.tool.setCurrentIndex(0)
    pane.score.setCurrentIndex(pane.score.findData("judge_llm"))
    qtbot.keyClicks(pane.min_score, "0.75")
    search(qtbot, w)
    assert shown(w) == ["air-1"]
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        qtbot.mouseClick(pane.clear_button, Qt.MouseButton.LeftButton)
    assert shown(w) == ["air-1", "air-2", "shop-1"] and pane.filter_button.text() == "Filters"


def test_saved_views_are_per_judge_and_restore_their_filters(qtbot, db):
    w = window_for(qtbot, db, "Lee")
    pane = w.queue_pane
    pane.filter_button.setChecked(True)
    qtbot.keyClicks(pane.meta, "domain=airline")
    pane.status_filter.setCurrentIndex(pane.status_filter.findData("todo"))
    qtbot.wait_until(lambda: not w.model.searching, timeout=10_000)
    search(qtbot, w, "reservation")
    pane.save_current_view(name="Airline bookings")
    assert pane.views.currentText() == "Airline bookings" and pane.delete_button.isEnabled()
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        pane.views.setCurrentIndex(0)
        pane.views.activated.emit(0)
    assert shown(w) == ["air-1", "air-2", "shop-1"] and w.search.text() == ""
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        pane.views.setCurrentIndex(1)
        pane.views.activated.emit(1)
    assert w.search.text() == "reservation" and pane.meta.text() == "domain=airline"
    assert pane.status_filter.currentData() == "todo" and shown(w) == ["air-1", "air-2"]
    with w.ws.session() as s:
        lee = s.scalar(select(Judge.id).where(Judge.name == "Lee"))
        jo = s.scalar(select(Judge.id).where(Judge.name == "Jo"))
        assert [v.name for v in list_views(s, lee)] == ["Airline bookings"]
        assert list_views(s, jo) == []
    other = window_for(qtbot, db, "Jo")
    assert [other.queue_pane.views.itemText(i) for i in range(other.queue_pane.views.count())] == [
        "All traces"
    ]
    pane.delete_current_view()
    assert pane.views.count() == 1
    with w.ws.session() as s:
        assert list_views(s, lee) == []


def test_layout_at_1366x768_keeps_outcome_visible_and_gives_task_the_room(qtbot, db):
    w = window_for(qtbot, db, "Lee")
    qtbot.wait_until(lambda: w.table.isVisible())
    cols = w.model.COLUMNS
    qtbot.wait_until(lambda: w.table.isColumnHidden(cols.index("Source")))  # all "benchmark"
    viewport = w.table.viewport().width()
    outcome = cols.index("Outcome")
    assert w.table.columnViewportPosition(outcome) + w.table.columnWidth(outcome) <= viewport
    task = cols.index("Task")
    assert w.table.columnWidth(task) >= 0.3 * viewport
    assert w.table.horizontalScrollBar().maximum() == 0  # nothing hidden behind a scrollbar


def test_nothing_matches_offers_to_clear(qtbot, db):
    w = window_for(qtbot, db, "Lee")
    search(qtbot, w, "zebra")
    pane = w.queue_pane
    assert pane.stack.currentWidget() is pane.empty
    assert pane.empty.title.text().endswith("Nothing matches</b>")
    with qtbot.waitSignal(w.model.loaded, timeout=10_000):
        qtbot.mouseClick(pane.empty.button("Clear search and filters"), Qt.MouseButton.LeftButton)
    assert shown(w) == ["air-1", "air-2", "shop-1"] and pane.stack.currentWidget() is w.table


def test_judge_without_assignments_is_told_what_to_do(qtbot, db, monkeypatch):
    import ui.review.window as window

    picked = []
    monkeypatch.setattr(window, "pick_judge", lambda ws, parent, **_kw: picked.append(1))
    w = window_for(qtbot, db, "Jo", "judge")
    pane = w.queue_pane
    # the queue is counted on the workspace executor: the empty state follows when it lands
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.empty, timeout=10_000)
    assert "No traces assigned to you" in pane.empty.title.text()
    assert "Ask your lead" in pane.empty.text.text()
    assert pane.empty.button_labels() == ["Switch profile…"]
    qtbot.mouseClick(pane.empty.button("Switch profile…"), Qt.MouseButton.LeftButton)
    assert picked == [1]  # the profile picker opened


def test_lead_without_rubric_gets_the_rubric_editor(qtbot, tmp_path, write):
    path = str(tmp_path / "norubric.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("t.jsonl", lines=RECORDS)], "benchmark")
    ws.close()
    w = window_for(qtbot, path, "Lee", "lead")
    assert shown(w) == ["air-1", "air-2", "shop-1"]  # the lead can read traces already
    qtbot.mouseClick(w.no_rubric_button, Qt.MouseButton.LeftButton)
    assert w.rubric_editor.isVisible()
    with w.ws.session() as s:  # what saving in the editor does
        create_rubric(s, "First", [CriterionSpec("ok", "OK", "binary")])
    w.rubric_editor.saved.emit()
    w.rubric_editor.close()
    assert w.tabs.widget(0) is w.panel and w.version is not None  # reviewing can start
    assert w.version_combo.currentText() == "First · v1"


def test_judge_without_rubric_is_told_who_writes_it(qtbot, tmp_path, write):
    path = str(tmp_path / "norubric.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("t.jsonl", lines=RECORDS)], "benchmark")
    ws.close()
    j = window_for(qtbot, path, "Jo", "judge")
    assert j.queue_pane.empty.title.text().endswith("No rubric yet</b>")
    assert "your lead has not written one yet" in j.queue_pane.empty.text.text()
    assert j.queue_pane.empty.button_labels() == ["Switch profile…"]


def test_empty_workspace_shows_the_first_run_guide(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    path = str(tmp_path / "empty.sqlite")
    asked = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: asked.append(1) or ([], ""))
    )
    w = window_for(qtbot, path, "Lee", "lead")
    pane = w.queue_pane
    assert pane.stack.currentWidget() is pane.empty
    assert "Welcome to Chambers" in pane.empty.title.text()
    assert "Import traces" in pane.empty.text.text() and "chambers sample" in pane.empty.text.text()
    assert pane.empty.button_labels() == [
        "Import traces…",
        "Open the rubric editor…",
        "Create a review round…",
    ]
    qtbot.mouseClick(pane.empty.button("Import traces…"), Qt.MouseButton.LeftButton)
    assert asked == [1]  # the file picker opened
    qtbot.mouseClick(pane.empty.button("Open the rubric editor…"), Qt.MouseButton.LeftButton)
    assert w.rubric_editor.isVisible()
    w.rubric_editor.close()


def test_scrolling_a_search_loads_pages_on_the_worker(qtbot, tmp_path, write, qtmodeltester):
    from ui.review.queue_model import BATCH, QueueModel

    records = [_record(f"t{i}", "lookup", {"i": i}, i % 2, "airline") for i in range(450)]
    path = str(tmp_path / "many.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("many.jsonl", lines=records)], "benchmark")
    with ws.session() as s:
        lead = get_or_create_judge(s, "Lee", "lead")
    from app.traces.queries import TraceFilter

    model = QueueModel(ws, lead, -1)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.query(TraceFilter(search="lookup", min_outcome=1), None)
    assert model.total == 225 and model.rowCount() == BATCH
    with qtbot.waitSignal(model.rowsInserted, timeout=10_000):
        model.fetchMore()
        assert not model.canFetchMore()  # one page at a time, read off the UI thread
    assert model.rowCount() == 225 and not model.canFetchMore()
    ids = [model.queue_row(i).external_id for i in range(model.rowCount())]
    assert ids == [f"t{i}" for i in range(1, 450, 2)]
    qtmodeltester.check(model)
    model.close()
    ws.close()


def test_the_window_catches_the_search_index_up_and_the_queue_says_what_is_missing(
    qtbot, tmp_path, write
):
    """A killed import left traces stored but not indexed: the queue says a search cannot see
    them yet; the window indexes them in the background when it opens, then the search finds
    them."""
    from app.traces.search_index import pending
    from ui.review.queue_model import QueueModel

    path = str(tmp_path / "pending.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("t.jsonl", lines=RECORDS)], "benchmark", catch_up_index=False)
    with ws.session() as s:
        lead = get_or_create_judge(s, "Lee", "lead")
        create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")])
        version = s.scalars(select(RubricVersion.id)).one()
    model = QueueModel(ws, lead, version)
    model.set_filter(search="book_reservation")
    assert model.total == 0 and model.unindexed == 3
    model.set_filter(search=None)
    assert model.total == 3 and model.unindexed == 0  # no text search: nothing is missing
    model.close()
    ws.close()

    w = window_for(qtbot, path, "Lee")
    seen: list[tuple[int, int]] = []
    w.indexer.progress.connect(lambda n, total: seen.append((n, total)))
    with qtbot.waitSignal(w.indexer.finished, timeout=20_000) as done:
        pass
    assert done.args == [3, ""] and seen == [(3, 3)]
    assert not w.status_index.isVisible()
    with w.ws.session() as s:
        assert pending(s) == 0
    search(qtbot, w, "book_reservation")
    assert shown(w) == ["air-1"]
    assert w.queue_label.text() == "1 trace in the workspace match"


def test_a_search_before_the_index_caught_up_says_so(qtbot, tmp_path, write):
    path = str(tmp_path / "pending.sqlite")
    ws = open_workspace(path)
    import_paths(ws, [write("t.jsonl", lines=RECORDS)], "benchmark", catch_up_index=False)
    with ws.session() as s:
        get_or_create_judge(s, "Lee", "lead")
        create_rubric(s, "R", [CriterionSpec("ok", "OK", "binary")])
    ws.close()
    w = window_for(qtbot, path, "Lee")
    real_start = w.indexer.start
    w.indexer.start = lambda: None  # held back until the search has been seen
    search(qtbot, w, "book_reservation")
    assert shown(w) == [] and w.model.unindexed == 3
    assert w.queue_label.text() == (
        "0 traces in the workspace match · 3 just imported are still being indexed for search"
    )
    assert w.queue_pane.empty.title.text().endswith(">Still indexing</b>")
    assert w.queue_pane.empty.button_labels() == ["Clear search and filters"]
    with qtbot.waitSignal(w.indexer.finished, timeout=20_000):
        real_start()
    qtbot.waitUntil(lambda: shown(w) == ["air-1"], timeout=10_000)  # the window searched again
    assert w.model.unindexed == 0
    assert w.queue_label.text() == "1 trace in the workspace match"


def test_an_import_in_the_app_ends_when_stored_and_the_window_indexes_after(qtbot, db, write):
    """The dialog's import stores the traces and ends (nothing indexed yet); the window then
    indexes them in the background and a search finds them."""
    from ui.traces.import_dialog import ImportDialog

    w = window_for(qtbot, db, "Lee")
    qtbot.waitUntil(lambda: not w.indexer.running)  # nothing pending at open
    more = [_record("new-1", "rebook_flight", {"flight": "ZZ9"}, 1.0, "airline")]
    dlg = ImportDialog(w.ws, [str(write("more.jsonl", lines=more))], w)
    qtbot.addWidget(dlg)
    qtbot.waitSignal(dlg.previewed, timeout=30_000).wait()
    dlg.done.connect(w._imported)  # as File → Import traces does
    seen = []
    w.indexer.progress.connect(lambda n, total: seen.append((n, total)))
    with qtbot.waitSignal(w.indexer.finished, timeout=30_000) as indexed:
        with qtbot.waitSignal(dlg.done, timeout=30_000) as stored:
            qtbot.mouseClick(dlg.import_button, Qt.MouseButton.LeftButton)
        assert stored.args[0].imported == 1 and stored.args[0].indexed == 0
    assert indexed.args == [1, ""] and seen == [(1, 1)]
    search(qtbot, w, "rebook_flight")
    assert shown(w) == ["new-1"]
