"""`chambers agreement` and `chambers report agreement`."""

from __future__ import annotations

import argparse

from app.agreement import DEFAULT_BOOT, LEVELS
from app.cli.common import open_ws, out_file, print_json, write_out
from app.cli.review import _round_id
from app.workspace.errors import ChambersError


def cmd_agreement(args: argparse.Namespace) -> int:
    from app.agreement import coefficients as ag

    if args.csv:
        if not args.level:
            raise ChambersError("--csv needs --level (nominal, ordinal, interval or ratio)")
        cats = [c.strip() for c in args.categories.split(",")] if args.categories else None
        ratings = ag.ratings_from_csv(args.csv, args.level, cats)
        result = ag.compute(ratings, n_boot=args.bootstrap, seed=args.seed)
        if args.json:
            print_json(result.as_dict())
        else:
            print(
                f"{args.csv}: {result.n_items} items, {result.n_judges} judges, "
                f"{args.level} level, categories {result.categories}"
            )
            _print_coefficients(result)
        return 0
    from app.agreement.reliability import version_report
    from app.review.rubrics import get_version

    ws = open_ws(args)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        round_id = _round_id(s, args.round) if args.round else None
        rep = version_report(
            s,
            version.id,
            round_id,
            args.criterion,
            n_boot=args.bootstrap,
            seed=args.seed,
            include_auto=not args.no_auto,
        )
    if args.json:
        print_json(rep.as_dict())
        return 0
    print(
        f"{rep.rubric} v{rep.version}"
        + (f", {rep.round_name}" if rep.round_name else "")
        + f": {rep.n_reviews} reviews of {rep.n_traces} traces by {len(rep.judges)} judges"
    )
    for t in rep.targets:
        print(
            f"\n{t.target.key} ({t.result.level}, {t.result.n_items} items, "
            f"{t.result.n_judges} judges): {t.band}"
        )
        _print_coefficients(t.result)
    _print_steps(rep.step_labels)
    if rep.disagreements:
        print("\nmost disagreement:")
        for d in rep.disagreements[:10]:
            print(f"  {d.trace_id:>6}  {d.score:.2f}  {d.external_id}")
    return 0


def _print_steps(steps) -> None:
    if steps is None or not steps.n_reviews:
        return
    exact = steps.exact_step
    shown = "n/a" if exact is None else f"{exact:.3f}"
    alpha = steps.alpha.fmt() if steps.alpha.value is not None else f"n/a ({steps.alpha.note})"
    print(f"\nstep labels ({steps.n_reviews} reviews, {steps.n_steps} steps):")
    print(
        f"  first error, same step       {shown} "
        f"({steps.first_error_same} of {steps.first_error_pairs} judge pairs)"
    )
    print(f"  krippendorff alpha (nominal) {alpha}")


def _print_coefficients(result) -> None:
    for name, coef in result.coefficients.items():
        shown = coef.fmt() if coef.value is not None else f"n/a ({coef.note})"
        print(f"  {name.replace('_', ' '):<24} {shown}")


def cmd_report(args: argparse.Namespace) -> int:
    from app.agreement import report
    from app.agreement.reliability import trend, version_report
    from app.review.rubrics import get_version

    out = out_file(args.out)
    ws = open_ws(args)
    with ws.session() as s:
        version = get_version(s, args.rubric, args.version)
        round_id = _round_id(s, args.round) if args.round else None
        rep = version_report(s, version.id, round_id, n_boot=args.bootstrap, seed=args.seed)
        points = trend(s, version.rubric_id, seed=args.seed)
    text = report.render(rep, points)
    write_out(out, text.encode("utf-8"))
    print(f"wrote {out} ({len(text) // 1024} KB)")
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
    sp.add_argument(
        "--no-auto", action="store_true", help="leave out automated scores imported with the traces"
    )
    sp.add_argument("--csv", metavar="FILE", help="long-format CSV with header item,judge,value")
    sp.add_argument("--level", choices=LEVELS, help="with --csv: the level of measurement")
    sp.add_argument("--categories", help="with --csv: the full category set, e.g. 1,2,3,4,5")
    sp.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOT,
        metavar="N",
        help=f"bootstrap resamples (default {DEFAULT_BOOT}; 0: no intervals)",
    )
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
