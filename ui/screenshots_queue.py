"""Screenshots of finding work: `python -m ui.screenshots_queue DIR` (offscreen).

The queue with a search and filters at 1366x768, the empty states (a judge with no
assignments, a lead with no rubric, the first-run guide) and the dark theme, each from a
fresh temporary workspace.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _settle(app) -> None:
    for _ in range(8):
        app.processEvents()


def _shot(app, window, path: Path, size=(1366, 768)) -> None:
    window.resize(*size)
    window.show()
    _settle(app)
    window.grab().save(str(path))
    window.dirty = False
    window.close()
    print(path)


def _wait(app, window) -> None:
    import time

    deadline = time.monotonic() + 20
    while window.model.searching and time.monotonic() < deadline:
        app.processEvents()
    _settle(app)


def _two_traces(tmp: Path) -> Path:
    import json

    path = tmp / "two.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in (
            ("Can I change my seat to 14C?", "Done: you are in 14C now."),
            ("Refund my cancelled flight HAT170", "Your refund of $412 is on its way."),
        )
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main(out_dir: str) -> int:
    from PySide6.QtCore import QSettings
    from sqlalchemy import select

    from app.review.reviews import get_or_create_judge
    from app.sample import build_sample
    from app.traces.ingest import import_paths
    from app.workspace.db import open_workspace
    from app.workspace.models import Judge
    from ui.application import make_app
    from ui.review.window import MainWindow
    from ui.widgets.theme import apply_theme

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
        app = make_app()
        apply_theme(app, dark=False)
        ws = open_workspace(str(Path(tmp) / "sample.sqlite"))
        build_sample(ws)
        with ws.session() as s:
            lead = s.scalar(select(Judge).where(Judge.role == "lead"))
            newcomer = get_or_create_judge(s, "Sam Newcomer", "judge")
            hana = s.scalar(select(Judge).where(Judge.name == "Hana Sato"))

        w = MainWindow(ws, lead)
        w.resize(1366, 768)
        w.show()
        pane = w.queue_pane
        while pane.tool.count() < 2:  # the tools are read on the worker thread
            app.processEvents()
        pane.filter_button.setChecked(True)
        w.search.setText("refund")
        pane.tool.setCurrentIndex(pane.tool.findData("issue_refund"))
        pane.max_outcome.setText("0.5")
        pane.meta.setText("domain=refunds")
        w.apply_filter()
        _wait(app, w)
        pane.save_current_view(name="Failed refunds")
        _shot(app, w, out / "queue-filters.png")

        _shot(app, MainWindow(ws, newcomer), out / "empty-no-assignments.png")
        _indexing_shot(app, ws, lead, Path(tmp), out / "queue-indexing.png")

        apply_theme(app, dark=True)
        _shot(app, MainWindow(ws, hana), out / "dark-theme.png")
        apply_theme(app, dark=False)
        ws.close()

        empty = open_workspace(str(Path(tmp) / "empty.sqlite"))
        with empty.session() as s:
            first_lead = get_or_create_judge(s, "Rosa Lindqvist", "lead")
        _shot(app, MainWindow(empty, first_lead), out / "empty-first-run.png")
        import_paths(empty, [_two_traces(Path(tmp))])
        _shot(app, MainWindow(empty, first_lead), out / "empty-no-rubric.png")
        empty.close()
    return 0


def _indexing_shot(app, ws, lead, tmp: Path, path: Path) -> None:
    """Right after an import of 2,000 more traces, before the search index has caught up: the
    status bar's progress and what the queue says of a search (the indexer is held back for
    the shot, then the index catches up)."""
    import json

    from app.sample_scenarios import generate
    from app.traces.ingest import import_paths
    from app.traces.search_index import catch_up, pending
    from ui.review.window import MainWindow

    more = tmp / "more.jsonl"
    more.write_text("".join(json.dumps(sc.record) + "\n" for sc in generate(2000, seed=11)))
    import_paths(ws, [more], catch_up_index=False)
    with ws.session() as s:
        n = pending(s)
    w = MainWindow(ws, lead)
    w.indexer.start = lambda: None  # held back: the shot shows the state it starts from
    w.resize(1366, 768)
    w.show()
    _settle(app)
    w.search.setText("refund")
    w.apply_filter()
    _wait(app, w)
    w._indexing(0, n)
    _settle(app)
    w.grab().save(str(path))
    print(path)
    w.close()
    catch_up(ws)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots"))
