"""Lead commands: agreement, the HTML report, rubrics as YAML, review rounds, adjudication."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.agreement import DEFAULT_BOOT, LEVELS
from app.cli import _open
from app.cli import _print_json as _dump
from app.errors import ChambersError
from app.paths import write_atomic


def cmd_agreement(args: argparse.Namespace) -> int:
    from app import agreement as ag

    if args.csv:
        if not args.level:
            raise ChambersError("--csv needs --level (nominal, ordinal, interval or ratio)")
        cats = [c.strip() for c in args.categories.split(",")] if args.categories else None
        ratings = ag.ratings_from_csv(args.csv, args.level, cats)
        result = ag.compute(ratings, n_boot=args.bootstrap, seed=args.seed)
        if args.json:
            _dump(result.as_dict())
        else:
            print(f"{args.csv}: {result.n_items} items, {result.n_judges} judges, "
                  f"{args.level} level, categories {result.categories}")
            _print_coefficients(result)
        return 0
    from app.reliability import version_report
    from app.rubrics import get_version

    ws = _open(args)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        round_id = _round_id(s, args.round) if args.round else None
        rep = version_report(s, version.id, round_id, args.criterion, n_boot=args.bootstrap,
                             seed=args.seed, include_auto=not args.no_auto)
    if args.json:
        _dump(rep.as_dict())
        return 0
    print(f"{rep.rubric} v{rep.version}" + (f", {rep.round_name}" if rep.round_name else "")
          + f": {rep.n_reviews} reviews of {rep.n_traces} traces by {len(rep.judges)} judges")
    for t in rep.targets:
        print(f"\n{t.target.key} ({t.result.level}, {t.result.n_items} items, "
              f"{t.result.n_judges} judges): {t.band}")
        _print_coefficients(t.result)
    if rep.disagreements:
        print("\nmost disagreement:")
        for d in rep.disagreements[:10]:
            print(f"  {d.trace_id:>6}  {d.score:.2f}  {d.external_id}")
    return 0


def _print_coefficients(result) -> None:
    for name, coef in result.coefficients.items():
        shown = coef.fmt() if coef.value is not None else f"n/a ({coef.note})"
        print(f"  {name.replace('_', ' '):<24} {shown}")


def _round_id(session, name: str) -> int:
    from sqlalchemy import select

    from app.models import ReviewRound

    rid = session.scalar(select(ReviewRound.id).where(ReviewRound.name == name))
    if rid is None:
        raise ChambersError(f"no review round named {name!r}")
    return rid


def cmd_report(args: argparse.Namespace) -> int:
    from app import report
    from app.reliability import trend, version_report
    from app.rubrics import get_version

    ws = _open(args)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        round_id = _round_id(s, args.round) if args.round else None
        rep = version_report(s, version.id, round_id, n_boot=args.bootstrap, seed=args.seed)
        points = trend(s, version.rubric_id, seed=args.seed)
    text = report.render(rep, points)
    out = Path(args.out)
    try:
        write_atomic(out, text.encode("utf-8"))
    except OSError as exc:
        raise ChambersError(f"{out}: cannot write ({exc.strerror})") from None
    print(f"wrote {out} ({len(text) // 1024} KB)")
    return 0


def cmd_rubric_export(args: argparse.Namespace) -> int:
    from app import rubric_yaml
    from app.rubrics import get_version

    ws = _open(args)
    with ws.session() as s:
        text = rubric_yaml.dump(get_version(s, args.name, args.version))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_rubric_import(args: argparse.Namespace) -> int:
    from app import rubric_yaml
    from app.reviews import get_judge
    from app.rubrics import save_rubric

    doc = rubric_yaml.load_file(args.path)
    ws = _open(args)
    with ws.session() as s:
        actor = get_judge(s, args.as_judge).id if args.as_judge else None
        version, what = save_rubric(s, doc["name"], doc["criteria"], doc["description"] or None,
                                    doc["notes"], actor)
        print(f"{doc['name']}: {what} (v{version.version}, {len(doc['criteria'])} criteria)")
    return 0


def cmd_rubric_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.models import Rubric
    from app.rubrics import is_frozen

    ws = _open(args)
    rows = []
    with ws.session() as s:
        for r in s.scalars(select(Rubric).order_by(Rubric.name)):
            for v in r.versions:
                rows.append({"rubric": r.name, "version": v.version, "criteria": len(v.criteria),
                             "frozen": is_frozen(s, v.id), "notes": v.notes,
                             "created_at": v.created_at})
    if args.json:
        _dump(rows)
    else:
        for r in rows:
            lock = "in use" if r["frozen"] else "editable"
            print(f"{r['rubric']} v{r['version']}: {r['criteria']} criteria, {lock}. {r['notes']}")
    return 0


def cmd_rubric_diff(args: argparse.Namespace) -> int:
    from app.rubrics import diff_versions, get_version, specs_of

    ws = _open(args)
    with ws.session() as s:
        a = specs_of(get_version(s, args.name, args.old))
        b = specs_of(get_version(s, args.name, args.new))
    lines = diff_versions(a, b)
    print("\n".join(lines) if lines else "no differences")
    return 0


def cmd_round_create(args: argparse.Namespace) -> int:
    from app.reviews import get_judge
    from app.rounds import create_round
    from app.rubrics import get_version
    from app.traces import TraceFilter

    ws = _open(args)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        judges = [get_judge(s, n.strip()) for n in args.judges.split(",") if n.strip()]
        lead = get_judge(s, args.as_judge).id if args.as_judge else None
        cal = [int(x) for x in args.calibration.split(",")] if args.calibration else None
        flt = TraceFilter(source=args.source, search=args.search)
        rnd = create_round(s, args.name, version.id, [j.id for j in judges], args.overlap, flt,
                           args.sample, args.seed, cal, lead)
        print(f"round {rnd.name!r}: {rnd.selection['n_traces']} traces, overlap {rnd.overlap}, "
              f"{len(judges)} judges, rubric v{version.version}")
    return 0


def cmd_round_progress(args: argparse.Namespace) -> int:
    from app.rounds import progress

    ws = _open(args)
    with ws.session() as s:
        rows = progress(s, _round_id(s, args.name))
    if args.json:
        _dump(rows)
    else:
        for r in rows:
            print(f"{r['judge']:<24} {r['submitted']:>5} / {r['assigned']:<5}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser(
        "agreement",
        help="inter-judge agreement on the workspace, or on a long-format CSV",
        description="Krippendorff's alpha, Fleiss' kappa (Gwet's form for missing data), "
        "Gwet's AC1/AC2, Cohen's kappa per pair and percent agreement, each with a 95%% "
        "bootstrap interval over items.",
    )
    sp.add_argument("--rubric", help="rubric name (default: the most recent)")
    sp.add_argument("--version", type=int, help="rubric version (default: the latest)")
    sp.add_argument("--round", help="only traces of this review round")
    sp.add_argument("--criterion", help="one criterion key (or 'decision')")
    sp.add_argument("--no-auto", action="store_true",
                    help="leave out automated scores imported with the traces")
    sp.add_argument("--csv", metavar="FILE", help="long-format CSV with header item,judge,value")
    sp.add_argument("--level", choices=LEVELS, help="with --csv: the level of measurement")
    sp.add_argument("--categories", help="with --csv: the full category set, e.g. 1,2,3,4,5")
    sp.add_argument("--bootstrap", type=int, default=DEFAULT_BOOT, metavar="N",
                    help=f"bootstrap resamples (default {DEFAULT_BOOT}; 0: no intervals)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_agreement)

    rp = sub.add_parser("report", help="write reports")
    rsub = rp.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    rsub.required = True
    sp = rsub.add_parser("agreement", help="a self-contained HTML agreement report with plots")
    sp.add_argument("--out", required=True, metavar="FILE.html")
    sp.add_argument("--rubric")
    sp.add_argument("--version", type=int)
    sp.add_argument("--round")
    sp.add_argument("--bootstrap", type=int, default=DEFAULT_BOOT, metavar="N")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=cmd_report)

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
    sp = rbs.add_parser("import", help="create or update a rubric from YAML (a new version "
                        "once the latest is in use)")
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
