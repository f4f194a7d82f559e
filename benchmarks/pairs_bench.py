"""Pair derivation: a full derivation against the incremental ones, side by side in one run.

    python benchmarks/pairs_bench.py [--traces 3000]

Builds the sample workspace with N traces (judges' reviews, a lead's verdicts), then times
- the full derivation (every task; what the first derivation after an upgrade does);
- a derivation when nothing changed (the Pairs screen's open and Apply);
- a derivation after one new correction (one task derived again);
- selecting the pairs (filters, the per-task cap and the pair-balanced split).
It prints each time and the incremental ones as a share of the full one. The watermark's
safety margin is set to zero so that "nothing changed" means nothing since the last
derivation (the default 5 s margin would include the just-built sample).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.sample import build_sample
from app.training import derive
from app.training import pairs as pr
from app.workspace.db import open_workspace
from app.workspace.models import Adjudication, Review, Trace


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def one_correction(s) -> None:
    gold = set(s.scalars(select(Adjudication.trace_id)))
    trace = s.scalar(select(Trace).where(Trace.id.not_in(gold)).order_by(Trace.id.desc()))
    vid = s.scalar(select(Review.rubric_version_id).limit(1))
    corrected = copy.deepcopy(trace.messages)
    corrected[-1]["parts"] = [{"type": "text", "text": "A corrected answer (benchmark)."}]
    judge = get_or_create_judge(s, "Benchmark Judge")
    scores = {
        "task_success": 0,
        "policy": 0,
        "tool_use": 1,
        "communication": 1,
        "failure_mode": "hallucination",
    }
    data = ReviewInput("modify", scores, "bench", corrected, "A corrected answer (benchmark).")
    submit_review(s, trace.id, judge.id, vid, data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=3000)
    args = ap.parse_args()
    derive.SLACK = timedelta(0)
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(str(Path(tmp) / "bench.sqlite"))
        counts = build_sample(ws, n_traces=args.traces)
        print(f"workspace: {counts}")
        with ws.session() as s:
            full, changes = timed(lambda: pr.derive_pairs(s))
        print(f"full derivation:        {full * 1000:8.1f} ms  {changes.as_dict()['added']}")
        with ws.session() as s:
            noop, changes = timed(lambda: pr.derive_pairs(s))
        print(f"nothing changed:        {noop * 1000:8.1f} ms  ({changes.scopes} tasks derived)")
        with ws.session() as s:
            one_correction(s)
        with ws.session() as s:
            one, changes = timed(lambda: pr.derive_pairs(s))
        print(
            f"one new correction:     {one * 1000:8.1f} ms  ({changes.scopes} task derived, "
            f"+{sum(changes.added.values())} pairs)"
        )
        with ws.session() as s:
            sel, rows = timed(lambda: pr.select_pairs(s, pr.PairFilter()))
        print(f"select (cap, split):    {sel * 1000:8.1f} ms  ({len(rows)} pairs)")
        ws.close()
    print(f"ratio nothing-changed / full: {noop / full:.4f}")
    print(f"ratio one-correction / full:  {one / full:.4f}")


if __name__ == "__main__":
    main()
