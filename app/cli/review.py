"""`chambers rubric ...` and `chambers round ...`: what leads set up for judges."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import open_ws, out_file, print_json, write_out
from app.workspace.errors import ChambersError


def _round_id(session, name: str) -> int:
    from sqlalchemy import select

    from app.workspace.models import ReviewRound

    rid = session.scalar(select(ReviewRound.id).where(ReviewRound.name == name))
    if rid is None:
        raise ChambersError(f"no review round named {name!r}")
    return rid


def cmd_rubric_export(args: argparse.Namespace) -> int:
    from app.review import rubric_yaml
    from app.review.rubrics import get_version

    out = out_file(args.out) if args.out else None
    ws = open_ws(args)
    with ws.session() as s:
        text = rubric_yaml.dump(get_version(s, args.name, args.version))
    if out is not None:
        write_out(out, text.encode("utf-8"))
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_rubric_import(args: argparse.Namespace) -> int:
    from app.review import rubric_yaml
    from app.review.reviews import get_judge
    from app.review.rubrics import save_rubric

    doc = rubric_yaml.load_file(args.path)
    ws = open_ws(args)
    with ws.session() as s:
        actor = get_judge(s, args.as_judge).id if args.as_judge else None
        version, what = save_rubric(
            s, doc["name"], doc["criteria"], doc["description"] or None, doc["notes"], actor
        )
        print(f"{doc['name']}: {what} (v{version.version}, {len(doc['criteria'])} criteria)")
    return 0


def cmd_rubric_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.review.rubrics import is_frozen
    from app.workspace.models import Rubric

    ws = open_ws(args)
    rows = []
    with ws.session() as s:
        for r in s.scalars(select(Rubric).order_by(Rubric.name)):
            for v in r.versions:
                rows.append(
                    {
                        "rubric": r.name,
                        "version": v.version,
                        "criteria": len(v.criteria),
                        "frozen": is_frozen(s, v.id),
                        "notes": v.notes,
                        "created_at": v.created_at,
                    }
                )
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            lock = "in use" if r["frozen"] else "editable"
            print(f"{r['rubric']} v{r['version']}: {r['criteria']} criteria, {lock}. {r['notes']}")
    return 0


def cmd_rubric_diff(args: argparse.Namespace) -> int:
    from app.review.rubrics import diff_versions, get_version, specs_of

    ws = open_ws(args)
    with ws.session() as s:
        a = specs_of(get_version(s, args.name, args.old))
        b = specs_of(get_version(s, args.name, args.new))
    lines = diff_versions(a, b)
    print("\n".join(lines) if lines else "no differences")
    return 0


def cmd_round_create(args: argparse.Namespace) -> int:
    from app.cli.traces import searchable
    from app.review.reviews import get_judge
    from app.review.rounds import create_round
    from app.review.rubrics import get_version
    from app.traces.queries import TraceFilter

    ws = open_ws(args)
    if args.search:
        searchable(ws)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        judges = [get_judge(s, n.strip()) for n in args.judges.split(",") if n.strip()]
        lead = get_judge(s, args.as_judge).id if args.as_judge else None
        cal = [int(x) for x in args.calibration.split(",")] if args.calibration else None
        flt = TraceFilter(source=args.source, search=args.search)
        rnd = create_round(
            s,
            args.name,
            version.id,
            [j.id for j in judges],
            args.overlap,
            flt,
            args.sample,
            args.seed,
            cal,
            lead,
        )
        print(
            f"round {rnd.name!r}: {rnd.selection['n_traces']} traces, overlap {rnd.overlap}, "
            f"{len(judges)} judges, rubric v{version.version}"
        )
    return 0


def cmd_round_progress(args: argparse.Namespace) -> int:
    from app.review.rounds import progress

    ws = open_ws(args)
    with ws.session() as s:
        rows = progress(s, _round_id(s, args.name))
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['judge']:<24} {r['submitted']:>5} / {r['assigned']:<5}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    rb = sub.add_parser("rubric", help="rubrics: list, export/import YAML, diff versions")
    rbs = rb.add_subparsers(dest="rubric_command", metavar="SUBCOMMAND")
    rbs.required = True
    sp = rbs.add_parser("list", help="rubrics and their versions")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_rubric_list)
    sp = rbs.add_parser("export", help="write a version as YAML")
    sp.add_argument("name")
    sp.add_argument("--version", type=int)
    sp.add_argument("--out", metavar="FILE.yaml", help="default: stdout")
    sp.set_defaults(func=cmd_rubric_export)
    sp = rbs.add_parser(
        "import",
        help="create or update a rubric from YAML (a new version once the latest is in use)",
    )
    sp.add_argument("path")
    sp.add_argument("--as", dest="as_judge", metavar="LEAD", help="record this lead as author")
    sp.set_defaults(func=cmd_rubric_import)
    sp = rbs.add_parser("diff", help="what changed between two versions")
    sp.add_argument("name")
    sp.add_argument("old", type=int)
    sp.add_argument("new", type=int)
    sp.set_defaults(func=cmd_rubric_diff)

    rd = sub.add_parser("round", help="review rounds: create, progress")
    rds = rd.add_subparsers(dest="round_command", metavar="SUBCOMMAND")
    rds.required = True
    sp = rds.add_parser("create", help="assign traces to judges with overlap k")
    sp.add_argument("name")
    sp.add_argument("--rubric")
    sp.add_argument("--version", type=int)
    sp.add_argument("--judges", required=True, help="comma-separated judge names")
    sp.add_argument("--overlap", type=int, default=1, help="judges per trace (k)")
    sp.add_argument("--sample", type=int, help="a seeded random sample of this many traces")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--source", help="only traces from this source format")
    sp.add_argument("--search", help="only traces containing this text")
    sp.add_argument("--calibration", help="trace ids every judge gets (comma-separated)")
    sp.add_argument("--as", dest="as_judge", metavar="LEAD")
    sp.set_defaults(func=cmd_round_create)
    sp = rds.add_parser("progress", help="per-judge progress")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_round_progress)
