"""`chambers init`, `stats` and `sample`."""

from __future__ import annotations

import argparse

from app.cli.common import open_ws, print_json

# ---------------------------------------------------------------------------------------------
# Commands


def cmd_init(args: argparse.Namespace) -> int:
    from app.workspace.db import current_revision

    ws = open_ws(args)
    print(
        f"workspace ready: {ws.display_name} (schema {current_revision(ws.engine)}, {ws.dialect})"
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from app.traces.queries import stats

    ws = open_ws(args)
    with ws.session() as s:
        data = stats(s)
    if args.json:
        print_json(data)
        return 0
    print(f"workspace: {ws.display_name}")
    for key, value in data.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
            print(f"  {key.replace('_', ' ')}: {inner}")
        else:
            shown = (
                f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else value)
            )
            print(f"  {key.replace('_', ' ')}: {shown}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from app.sample import build_sample

    ws = open_ws(args)
    counts = build_sample(ws, n_traces=args.traces, seed=args.seed)
    print(
        f"sample workspace ready at {ws.display_name}: {counts['traces']} traces, {counts['reviews']} reviews, {counts['judges']} judges"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("init", help="create the workspace or upgrade its schema in place")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("stats", help="counts of traces, reviews, pairs and runs")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_stats)

    sp = sub.add_parser(
        "sample",
        help="fill an empty workspace with a realistic sample (traces, rubric, judges, reviews)",
    )
    sp.add_argument("--traces", type=int, default=300, help="number of traces (default 300)")
    sp.add_argument("--seed", type=int, default=7)
    sp.set_defaults(func=cmd_sample)
