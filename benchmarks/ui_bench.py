"""Review-bench responsiveness, as ratios against a bare Qt window in the same run.

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_bench.py [--n 100000]

1. First paint: MainWindow on an N-trace workspace (a lead: every trace in the queue) against
   a bare QMainWindow holding a QListView over N rows. Target: within 2x.
2. A 500-step trace (tool outputs up to 1 MB): time to show it against a bare QListView of
   500 rows. Reported as a ratio; the target is no UI-thread stall over 50 ms.
3. Stalls: the longest single UI-thread step while scrolling the whole loaded queue page by
   page (fetching more rows as Qt asks) and while opening 50 traces one after another.
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


def build_workspace(db: Path, n: int) -> None:
    from app.review.reviews import get_or_create_judge
    from app.review.rubrics import CriterionSpec, create_rubric
    from app.traces.ingest import import_paths
    from app.workspace.db import open_workspace

    rng = random.Random(3)
    path = db.with_suffix(".jsonl")
    with path.open("w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"Task {i}: refund order {rng.randint(1, 10**6)}"}]
            msgs.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": json.dumps({"order": i})},
                        }
                    ],
                }
            )
            msgs.append(
                {
                    "role": "tool",
                    "tool_call_id": f"c{i}",
                    "content": json.dumps({"status": "delivered"}),
                }
            )
            msgs.append({"role": "assistant", "content": f"Order {i} refunded."})
            f.write(json.dumps({"id": f"t{i}", "messages": msgs, "reward": rng.random()}) + "\n")
        big = [
            {"role": "system", "content": "You are an agent."},
            {"role": "user", "content": "Long task"},
        ]
        for k in range(166):
            big.append(
                {
                    "role": "assistant",
                    "content": f"step {k}",
                    "tool_calls": [
                        {
                            "id": f"b{k}",
                            "type": "function",
                            "function": {
                                "name": "bash",
                                "arguments": json.dumps({"cmd": f"cat file{k}"}),
                            },
                        }
                    ],
                }
            )
            out = ("x" * 80 + "\n") * (12_500 if k % 40 == 0 else 40)  # 1 MB every 40 steps
            big.append({"role": "tool", "tool_call_id": f"b{k}", "content": out})
            big.append({"role": "user", "content": "continue"})
        big.append({"role": "assistant", "content": "Done."})
        f.write(json.dumps({"id": "big-500", "messages": big, "reward": 1}) + "\n")
    ws = open_workspace(str(db))
    import_paths(ws, [path])
    with ws.session() as s:
        get_or_create_judge(s, "Bench Lead", "lead")
        create_rubric(s, "Bench", [CriterionSpec("ok", "OK", "binary")])
    ws.close()


def settle(app) -> None:
    for _ in range(3):
        app.processEvents()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from PySide6.QtCore import QSettings, QStringListModel
    from PySide6.QtWidgets import QListView, QMainWindow
    from sqlalchemy import select

    from app.workspace.db import open_workspace
    from app.workspace.models import Judge, Trace
    from ui.application import make_app
    from ui.review.window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
        db = Path(tmp) / "bench.sqlite"
        t0 = time.perf_counter()
        build_workspace(db, args.n)
        print(
            f"workspace: {args.n:,} traces + one 500-step trace, built in {time.perf_counter() - t0:.1f}s"
        )
        app = make_app()
        ws = open_workspace(str(db))
        with ws.session() as s:
            lead = s.scalar(select(Judge))
            big_id = s.scalar(select(Trace.id).where(Trace.external_id == "big-500"))
        rows = [f"Task {i}" for i in range(args.n + 1)]

        def bare_window(n_rows: int):
            w = QMainWindow()
            view = QListView()
            view.setModel(QStringListModel(rows[:n_rows], w))
            w.setCentralWidget(view)
            w.resize(1500, 920)
            w.show()
            settle(app)
            return w

        def ours():
            w = MainWindow(ws, lead)
            w.resize(1500, 920)
            w.show()
            settle(app)
            return w

        bare_t, ours_t = [], []
        holder: list = []
        for _ in range(args.repeat):  # interleaved, best of N
            bare_t.append(timed(lambda: holder.append(bare_window(args.n + 1))))
            holder.pop().close()
            ours_t.append(timed(lambda: holder.append(ours())))
            holder.pop().close()
        first_ratio = min(ours_t) / min(bare_t)
        print(
            f"first paint: bare QListView {min(bare_t) * 1000:7.1f} ms   chambers {min(ours_t) * 1000:7.1f} ms"
        )

        w = ours()
        bare_big = min(timed(lambda: bare_window(500).close()) for _ in range(args.repeat))
        w.model.set_filter(search="big-500")

        def show_big() -> None:
            w.trace_view.show_trace(None)
            w.open_row(0)
            settle(app)

        open_big = [timed(show_big) for _ in range(args.repeat)]
        assert w.trace is not None and w.trace["id"] == big_id
        w.model.set_filter()
        big_ratio = min(open_big) / bare_big
        print(
            f"500-step trace: bare 500-row QListView {bare_big * 1000:7.1f} ms   chambers {min(open_big) * 1000:7.1f} ms"
        )

        # stalls while scrolling the queue and opening traces
        w.select_row(0)
        settle(app)
        sb = w.table.verticalScrollBar()
        import gc

        gc_pauses: list[float] = []
        gc_start = [0.0]

        def gc_watch(phase: str, info: dict) -> None:
            if info.get("generation") == 2:
                if phase == "start":
                    gc_start[0] = time.perf_counter()
                else:
                    gc_pauses.append(time.perf_counter() - gc_start[0])

        gc.callbacks.append(gc_watch)
        steps = []
        while sb.value() < sb.maximum() and len(steps) < 2000:
            steps.append(timed(lambda: (sb.setValue(sb.value() + sb.pageStep()), settle(app))))
        gc.callbacks.remove(gc_watch)
        pages = len(steps)
        if gc_pauses:
            print(
                f"full garbage collections while scrolling: {len(gc_pauses)}, longest {max(gc_pauses) * 1000:.1f} ms"
            )
        scroll_worst = max(steps)
        slow = sorted(((t, i) for i, t in enumerate(steps)), reverse=True)[:3]
        print(
            "slowest scroll steps: "
            + ", ".join(f"page {i}: {t * 1000:.1f} ms" for t, i in slow)
            + f"; median {sorted(steps)[len(steps) // 2] * 1000:.1f} ms"
        )
        open_worst = 0.0
        for row in range(50):
            open_worst = max(open_worst, timed(lambda row=row: (w.select_row(row), settle(app))))
        print(
            f"scrolling {pages} pages ({w.model.rowCount():,} rows loaded): worst UI-thread step {scroll_worst * 1000:6.1f} ms"
        )
        print(
            f"opening 50 traces: worst {open_worst * 1000:6.1f} ms; opening the 500-step trace: {min(open_big) * 1000:6.1f} ms"
        )
        stall = max(scroll_worst, open_worst, min(open_big))
        print(
            f"no stall over 50 ms: {'met' if stall <= 0.05 else 'MISSED'} (worst {stall * 1000:.1f} ms)"
        )
        print(f"ratio 500-step trace / bare 500-row list: {big_ratio:.2f}x")
        print(
            f"ratio first paint chambers / bare window: {first_ratio:.2f}x (target <= 2x: {'met' if first_ratio <= 2 else 'MISSED'})"
        )
        w.dirty = False
        w.close()
        ws.close()


if __name__ == "__main__":
    main()
