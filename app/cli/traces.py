"""`chambers import` and `chambers traces list|show`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.common import EXIT_UNREADABLE, open_ws, print_json
from app.traces.display import printable


def cmd_import(args: argparse.Namespace) -> int:
    from app.traces.importers.conversations import KeyOptions
    from app.traces.ingest import error_line, import_paths

    ws = open_ws(args)
    options = KeyOptions(args.messages_key, args.outcome_key, args.id_key)
    missing = [p for p in args.paths if not Path(p).exists()]
    report = import_paths(
        ws,
        [Path(p) for p in args.paths if Path(p).exists()],
        args.format,
        options,
        catch_up_index=False,  # below, once the result is printed
    )
    for p in missing:
        report.errors.insert(0, {"file": p, "record": None, "message": f"{p}: no such file"})
    if args.json:
        searchable(ws, quiet=True)
        print_json(report.as_json())
    else:
        for f in report.files:
            if f.unreadable:
                continue
            print(
                f"{f.path}: {f.format}, {f.records} records: {f.imported} imported, {f.duplicates} duplicates, {f.errors} errors"
            )
        for e in report.errors:
            print(f"error: {error_line(e)}", file=sys.stderr)
        for w in report.warnings:
            print(f"warning: {error_line(w)}", file=sys.stderr)
        if report.skipped:
            names = ", ".join(Path(s["file"]).name for s in report.skipped[:5])
            more = f" and {len(report.skipped) - 5} more" if len(report.skipped) > 5 else ""
            print(
                f"skipped {len(report.skipped)} files that are not traces: {names}{more}",
                file=sys.stderr,
            )
        print(
            f"imported {report.imported}, duplicates {report.duplicates}, errors {len(report.errors)}",
            flush=True,
        )
        searchable(ws, after_import=True)
    unreadable = missing or report.unreadable
    return EXIT_UNREADABLE if unreadable else 0


def cmd_traces_list(args: argparse.Namespace) -> int:
    from app.traces.queries import TraceFilter, list_traces
    from app.traces.search import FilterError

    if (args.min_score is not None or args.max_score is not None) and not args.score:
        raise FilterError("--min-score/--max-score need --score NAME (which automated score)")
    ws = open_ws(args)
    flt = TraceFilter(
        source=args.source,
        search=args.search,
        min_outcome=args.min_outcome,
        max_outcome=args.max_outcome,
        has_outcome=True if args.has_outcome else None,
        split=args.split,
        min_tool_calls=args.min_tool_calls,
        tools=args.tool or [],
        min_steps=args.min_steps,
        max_steps=args.max_steps,
        score_name=args.score,
        min_score=args.min_score,
        max_score=args.max_score,
        meta=[_key_value(kv) for kv in args.meta or []],
    )
    if flt.search or flt.meta:
        searchable(ws)
    with ws.session() as s:
        rows = list_traces(s, flt, limit=args.limit, offset=args.offset)
    if args.json:
        print_json(rows)
        return 0
    print(f"{'id':>6}  {'source':<16} {'msgs':>4} {'tools':>5} {'outcome':>7}  task")
    for r in rows:
        outcome = "-" if r["outcome"] is None else f"{r['outcome']:.2f}"
        task = printable((r["task"] or "").replace("\n", " ")[:70])  # never raw escapes
        print(
            f"{r['id']:>6}  {r['source']:<16} {r['n_messages']:>4} {r['n_tool_calls']:>5} {outcome:>7}  {task}"
        )
    return 0


def searchable(ws, after_import: bool = False, quiet: bool = False) -> None:
    """The full-text index caught up (SQLite, app.traces.search_index): after an import (the
    traces are stored and counted first), and before a text or metadata search (what an
    interrupted import left)."""
    import time

    from app.traces.search_index import catch_up, pending

    with ws.session() as s:
        todo = pending(s)
    if not todo:
        return
    if not quiet:
        print(f"indexing {todo:,} traces for search…", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = catch_up(ws)
    if quiet:
        return
    if after_import:
        print(f"search index: {done:,} traces added in {time.perf_counter() - t0:.1f} s")
    else:
        print(f"indexed {done:,} traces left by an interrupted import first", file=sys.stderr)


def _key_value(text: str) -> tuple[str, str]:
    from app.traces.search import FilterError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise FilterError(f"--meta {text!r}: expected KEY=VALUE, e.g. --meta domain=airline")
    return key.strip(), value.strip()


def cmd_traces_show(args: argparse.Namespace) -> int:
    from app.traces.queries import get_trace, trace_dict

    ws = open_ws(args)
    with ws.session() as s:
        data = trace_dict(get_trace(s, args.id))
    if args.json:
        print_json(data)
        return 0
    # Trace content is untrusted: ANSI/OSC escapes and bidi overrides are shown, not obeyed.
    print(printable(render_trace_text(data)))
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


def register(sub: argparse._SubParsersAction) -> None:
    from app.traces.importers import FORMATS

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

    tp = sub.add_parser("traces", help="list or show traces")
    tsub = tp.add_subparsers(dest="traces_command", metavar="SUBCOMMAND")
    tsub.required = True
    sp = tsub.add_parser("list", help="list traces with filters")
    sp.add_argument("--source", help="only this source format (e.g. langfuse, otel, benchmark)")
    sp.add_argument(
        "--search",
        help='words or "phrases" in the task, answers, tool names, arguments, results or '
        "metadata (all required; the last token of each is a prefix), or part of an external id",
    )
    sp.add_argument("--min-outcome", type=float)
    sp.add_argument("--max-outcome", type=float)
    sp.add_argument("--has-outcome", action="store_true", help="only traces with an outcome")
    sp.add_argument("--split")
    sp.add_argument("--min-tool-calls", type=int)
    sp.add_argument("--tool", action="append", help="only traces calling this tool (repeatable)")
    sp.add_argument("--min-steps", type=int, help="at least this many messages")
    sp.add_argument("--max-steps", type=int, help="at most this many messages")
    sp.add_argument("--score", metavar="NAME", help="only traces with this automated score")
    sp.add_argument("--min-score", type=float, help="... at least this value (with --score)")
    sp.add_argument("--max-score", type=float, help="... at most this value (with --score)")
    sp.add_argument(
        "--meta",
        action="append",
        metavar="KEY=VALUE",
        help="metadata KEY (a.b for nested keys) equals VALUE (repeatable)",
    )
    sp.add_argument("--limit", type=int)
    sp.add_argument("--offset", type=int, default=0)
    sp.add_argument("--json", action="store_true", help="print an array of objects")
    sp.set_defaults(func=cmd_traces_list)
    sp = tsub.add_parser("show", help="show one trace")
    sp.add_argument("id", help="numeric id or external id")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_traces_show)
