"""Queue search and filters at 100,000 traces, as ratios measured side by side in one run.

    QT_QPA_PLATFORM=offscreen python benchmarks/search_bench.py [--n 100000] [--db URL]

1. Each query (search words, a tool, metadata, an automated score, combined) as the lead's
   queue asks for it: the count and the first page of 200 rows. Against the search Chambers
   had before the index (a substring scan of task, answer and external id) for the same words,
   and against the unfiltered queue. Target: every query under 50 ms, like the plain queue.
2. The worst UI-thread step while the search box is used in the review window at 1366x768:
   pressing Enter on a query, the rows arriving, scrolling the hits (their pages are read on
   the worker thread), against the worst step scrolling the plain queue in the same window.
   Target: no step over 50 ms.
`--db` runs part 1 on a PostgreSQL URL instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOOLS = [f"tool_{k:02d}" for k in range(19)] + ["book_reservation"]
WORDS = [
    "refund",
    "order",
    "flight",
    "denver",
    "parcel",
    "ticket",
    "password",
    "policy",
    "cabin",
    "baggage",
    "invoice",
]


def _record(i: int, rng: random.Random) -> dict:
    tool = TOOLS[i % len(TOOLS)]
    words = " ".join(rng.choice(WORDS) for _ in range(8))
    call = {
        "id": f"c{i}",
        "type": "function",
        "function": {"name": tool, "arguments": json.dumps({"ref": f"R{i:06d}", "n": i % 7})},
    }
    msgs = [
        {"role": "user", "content": f"Task {i}: {words}"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"ok": i % 3 != 0})},
        {"role": "assistant", "content": f"Done with {words.split()[0]} for case {i}."},
    ]
    return {
        "id": f"t{i:06d}",
        "messages": msgs,
        "reward": round(rng.random(), 2),
        "metadata": {"domain": ["airline", "retail", "telecom"][i % 3], "seed": i % 10},
        "scores": {"judge_llm": round(rng.random(), 2)},
    }


def build_workspace(db: str, n: int, tmp: Path) -> float:
    from app.review.reviews import get_or_create_judge
    from app.review.rubrics import CriterionSpec, create_rubric
    from app.traces.ingest import import_paths
    from app.workspace.db import open_workspace

    rng = random.Random(5)
    path = tmp / "traces.jsonl"
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps(_record(i, rng)) + "\n")
    ws = open_workspace(db)
    t0 = time.perf_counter()
    import_paths(ws, [path], "benchmark")
    took = time.perf_counter() - t0
    with ws.session() as s:
        get_or_create_judge(s, "Bench Lead", "lead")
        create_rubric(s, "Bench", [CriterionSpec("ok", "OK", "binary")])
    ws.close()
    return took


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def legacy_filter(text: str):
    """The search before the index: a substring of the task, answer or external id."""
    from sqlalchemy import or_

    from app.traces.search import escape_like
    from app.workspace.models import Trace

    like = f"%{escape_like(text)}%"
    return or_(
        Trace.task.ilike(like, escape="\\"),
        Trace.final_output.ilike(like, escape="\\"),
        Trace.external_id.ilike(like, escape="\\"),
    )


def domain_part(db: str, repeat: int) -> float:
    from sqlalchemy import func, select

    from app.review.queue import _base, queue_count, queue_rows
    from app.traces.queries import TraceFilter
    from app.workspace.db import open_workspace
    from app.workspace.models import Judge, RubricVersion

    ws = open_workspace(db)
    with ws.session() as s:
        lead = s.scalar(select(Judge))
        version = s.scalar(select(RubricVersion.id))

    def page(flt: TraceFilter):
        with ws.session() as s:
            queue_count(s, lead, version, flt)
            queue_rows(s, lead, version, flt, limit=200)

    def legacy(text: str):
        with ws.session() as s:
            q = _base(lead, version, None, None).where(legacy_filter(text))
            s.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
            list(s.execute(q.limit(200)))

    plain = best_ms(lambda: page(TraceFilter()), repeat)
    print(f"unfiltered queue (count + first 200 rows): {plain:8.1f} ms")
    cases = {
        "search book_reservation (5%)": TraceFilter(search="book_reservation"),
        "search refund (common word)": TraceFilter(search="refund"),
        "search R004242 (one trace)": TraceFilter(search="R004242"),
        'search "denver parcel" flight': TraceFilter(search='"denver parcel" flight'),
        "external id substring 0424": TraceFilter(search="0424"),
        "tool = book_reservation": TraceFilter(tools=["book_reservation"]),
        "metadata domain=airline": TraceFilter(meta=[("domain", "airline")]),
        "score judge_llm >= 0.9": TraceFilter(score_name="judge_llm", min_score=0.9),
        "steps 4..4, outcome <= 0.3": TraceFilter(min_steps=4, max_steps=4, max_outcome=0.3),
        "all of the above but id": TraceFilter(
            search="refund",
            tools=["book_reservation"],
            meta=[("domain", "airline")],
            score_name="judge_llm",
            min_score=0.5,
        ),
    }
    worst = 0.0
    for name, flt in cases.items():
        ms = best_ms(lambda flt=flt: page(flt), repeat)
        worst = max(worst, ms)
        with ws.session() as s:
            n = queue_count(s, lead, version, flt)
        print(f"{name:<32} {n:>7,} traces {ms:8.1f} ms  ({ms / plain:5.2f}x unfiltered)")
    for word in ("refund", "R004242"):
        old = best_ms(lambda word=word: legacy(word), repeat)
        new = best_ms(lambda word=word: page(TraceFilter(search=word)), repeat)
        print(
            f"substring scan (before) '{word}': {old:8.1f} ms   index: {new:8.1f} ms  "
            f"({old / new:5.1f}x faster)"
        )
    ws.close()
    return worst


def ui_part(db: str) -> tuple[float, float]:
    """Longest single event-loop step (a) scrolling the plain queue, the floor, and (b) from
    Enter in the search box to the rows on screen, then scrolling the hits page by page."""
    from PySide6.QtCore import QElapsedTimer
    from sqlalchemy import select

    from app.workspace.db import open_workspace
    from app.workspace.models import Judge
    from ui.application import make_app
    from ui.review.window import MainWindow

    app = make_app()
    ws = open_workspace(db)
    with ws.session() as s:
        lead = s.scalar(select(Judge))
    w = MainWindow(ws, lead)
    w.resize(1366, 768)
    w.show()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    timer = QElapsedTimer()

    def step(fn) -> float:
        timer.start()
        fn()
        return float(timer.elapsed())

    def scroll() -> float:
        bar = w.table.verticalScrollBar()
        worst = 0.0
        for _ in range(5):
            worst = max(worst, step(lambda: (bar.setValue(bar.maximum()), app.processEvents())))
            deadline = time.perf_counter() + 10
            while w.model._fetching and time.perf_counter() < deadline:
                worst = max(worst, step(app.processEvents))
        return worst

    floor = scroll()
    worst = 0.0
    for query in ("book_reservation", "refund flight", "R004242", ""):
        w.search.setText(query)
        worst = max(worst, step(w.apply_filter))
        deadline = time.perf_counter() + 10
        while w.model.searching and time.perf_counter() < deadline:
            worst = max(worst, step(app.processEvents))
        worst = max(worst, scroll())
    w.dirty = False
    w.close()
    ws.close()
    return floor, worst


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", help="a PostgreSQL URL (an empty database) instead of SQLite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        from PySide6.QtCore import QSettings

        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
        db = args.db or str(Path(tmp) / "bench.sqlite")
        took = build_workspace(db, args.n, Path(tmp))
        print(f"workspace: {args.n:,} traces imported (and indexed) in {took:.1f}s")
        worst_query = domain_part(db, args.repeat)
        print(f"slowest query: {worst_query:.1f} ms (target < 50 ms)")
        floor, worst_step = ui_part(db)
        print(
            f"worst UI-thread step: scrolling the plain queue {floor:.0f} ms, searching and "
            f"scrolling the hits {worst_step:.0f} ms ({worst_step / max(floor, 1):.1f}x; "
            "target < 50 ms)"
        )


if __name__ == "__main__":
    main()
