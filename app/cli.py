"""The `chambers` command line.

Every error a user can cause is one line on stderr and a non-zero exit, never a traceback.
Heavy modules (Qt, the trainer) are imported only by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from app import __version__
from app.errors import ChambersError

EXIT_USER_ERROR = 2
EXIT_UNREADABLE = 1

Handler = Callable[[argparse.Namespace], int]


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _open(args: argparse.Namespace):
    from app.db import open_workspace

    return open_workspace(args.db)


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_init(args: argparse.Namespace) -> int:
    from app.db import current_revision

    ws = _open(args)
    print(
        f"workspace ready: {ws.display_name} (schema {current_revision(ws.engine)}, {ws.dialect})"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from app.importers.conversations import KeyOptions
    from app.ingest import import_paths

    ws = _open(args)
    options = KeyOptions(args.messages_key, args.outcome_key, args.id_key)
    missing = [p for p in args.paths if not Path(p).exists()]
    report = import_paths(
        ws, [Path(p) for p in args.paths if Path(p).exists()], args.format, options
    )
    for p in missing:
        report.errors.insert(0, {"file": p, "record": None, "message": f"{p}: no such file"})
    if args.json:
        _print_json(report.as_json())
    else:
        for f in report.files:
            if f.unreadable:
                continue
            print(
                f"{f.path}: {f.format}, {f.records} records: {f.imported} imported, {f.duplicates} duplicates, {f.errors} errors"
            )
        for e in report.errors:
            where = f"{e['file']}: {e['record']}: " if e["record"] else ""
            print(f"error: {where}{e['message']}", file=sys.stderr)
        print(
            f"imported {report.imported}, duplicates {report.duplicates}, errors {len(report.errors)}"
        )
    unreadable = missing or report.unreadable
    return EXIT_UNREADABLE if unreadable else 0


def cmd_stats(args: argparse.Namespace) -> int:
    from app.traces import stats

    ws = _open(args)
    with ws.session() as s:
        data = stats(s)
    if args.json:
        _print_json(data)
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


def cmd_traces_list(args: argparse.Namespace) -> int:
    from app.traces import TraceFilter, list_traces

    ws = _open(args)
    flt = TraceFilter(
        source=args.source,
        search=args.search,
        min_outcome=args.min_outcome,
        max_outcome=args.max_outcome,
        has_outcome=True if args.has_outcome else None,
        split=args.split,
        min_tool_calls=args.min_tool_calls,
    )
    with ws.session() as s:
        rows = list_traces(s, flt, limit=args.limit, offset=args.offset)
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'id':>6}  {'source':<16} {'msgs':>4} {'tools':>5} {'outcome':>7}  task")
    for r in rows:
        outcome = "-" if r["outcome"] is None else f"{r['outcome']:.2f}"
        task = (r["task"] or "").replace("\n", " ")[:70]
        print(
            f"{r['id']:>6}  {r['source']:<16} {r['n_messages']:>4} {r['n_tool_calls']:>5} {outcome:>7}  {task}"
        )
    return 0


def cmd_traces_show(args: argparse.Namespace) -> int:
    from app.traces import get_trace, trace_dict

    ws = _open(args)
    with ws.session() as s:
        data = trace_dict(get_trace(s, args.id))
    if args.json:
        _print_json(data)
        return 0
    print(render_trace_text(data))
    return 0


def render_trace_text(t: dict[str, Any]) -> str:
    lines = [
        f"trace {t['id']}  ({t['source']}, external id {t['external_id'] or '-'})",
        f"outcome: {t['outcome'] if t['outcome'] is not None else '-'} {t['outcome_label'] or ''}".rstrip(),
    ]
    for sc in t["scores"]:
        lines.append(f"score {sc['name']}: {sc.get('value')} ({sc.get('source')})")
    lines.append("")
    for i, m in enumerate(t["messages"]):
        for p in m["parts"]:
            if p["type"] == "text":
                body = p["text"]
            elif p["type"] == "reasoning":
                body = "(reasoning) " + p["text"]
            elif p["type"] == "tool_call":
                body = (
                    f"-> {p['name']}({json.dumps(p['arguments'], ensure_ascii=False)})  [{p['id']}]"
                )
            else:
                flag = " ERROR" if p["is_error"] else ""
                body = f"<- [{p['call_id']}]{flag} {p['content']}"
            lines.append(f"[{i}] {m['role']}: {body}")
    if t["final_output"]:
        lines += ["", "final answer:", t["final_output"]]
    return "\n".join(lines)


def cmd_sample(args: argparse.Namespace) -> int:
    from app.sample import build_sample

    ws = _open(args)
    counts = build_sample(ws, n_traces=args.traces, seed=args.seed)
    print(
        f"sample workspace ready at {ws.display_name}: {counts['traces']} traces, {counts['reviews']} reviews, {counts['judges']} judges"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    from app.importers import FORMATS

    p = argparse.ArgumentParser(
        prog="chambers",
        description="Chambers: judge agent traces against a rubric and turn corrections into training data.",
    )
    p.add_argument("--version", action="version", version=f"chambers {__version__}")
    p.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        help="workspace: a SQLite file or a postgresql+psycopg:// URL (default: $CHAMBERS_DB, else a file in the user data directory)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("init", help="create the workspace or upgrade its schema in place")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("import", help="import trace files (format detected from the content)")
    sp.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or directories (.json, .jsonl, .ndjson)"
    )
    sp.add_argument(
        "--format",
        choices=list(FORMATS),
        help="skip detection: " + "; ".join(f"{k}: {v}" for k, v in FORMATS.items()),
    )
    sp.add_argument(
        "--messages-key",
        help="benchmark dumps: the record key (dotted path) holding the message list",
    )
    sp.add_argument(
        "--outcome-key",
        help="benchmark dumps: the key (dotted path) holding the outcome, e.g. info.exit_status",
    )
    sp.add_argument("--id-key", help="benchmark dumps: the key holding the trace id")
    sp.add_argument(
        "--json", action="store_true", help='print {"imported", "duplicates", "errors"} as JSON'
    )
    sp.set_defaults(func=cmd_import)

    sp = sub.add_parser("stats", help="counts of traces, reviews, pairs and runs")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_stats)

    tp = sub.add_parser("traces", help="list or show traces")
    tsub = tp.add_subparsers(dest="traces_command", metavar="SUBCOMMAND")
    tsub.required = True
    sp = tsub.add_parser("list", help="list traces with filters")
    sp.add_argument("--source", help="only this source format (e.g. langfuse, otel, benchmark)")
    sp.add_argument("--search", help="text in the task, final answer or external id")
    sp.add_argument("--min-outcome", type=float)
    sp.add_argument("--max-outcome", type=float)
    sp.add_argument("--has-outcome", action="store_true", help="only traces with an outcome")
    sp.add_argument("--split")
    sp.add_argument("--min-tool-calls", type=int)
    sp.add_argument("--limit", type=int)
    sp.add_argument("--offset", type=int, default=0)
    sp.add_argument("--json", action="store_true", help="print an array of objects")
    sp.set_defaults(func=cmd_traces_list)
    sp = tsub.add_parser("show", help="show one trace")
    sp.add_argument("id", help="numeric id or external id")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_traces_show)

    sp = sub.add_parser(
        "sample",
        help="fill an empty workspace with a realistic sample (traces, rubric, judges, reviews)",
    )
    sp.add_argument("--traces", type=int, default=300, help="number of traces (default 300)")
    sp.add_argument("--seed", type=int, default=7)
    sp.set_defaults(func=cmd_sample)

    from app import cli_lead, cli_train

    cli_lead.register(sub)
    cli_train.register(sub)
    for ep in entry_points(group="chambers.commands"):  # e.g. `app` from ui/, without importing Qt
        ep.load()(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ChambersError as exc:
        print(f"chambers: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("chambers: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
