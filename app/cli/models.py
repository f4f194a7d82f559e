"""Closing the loop: `chambers eval`, `evals`, `models` and `compare` (comparison rounds)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from app.cli.common import EXIT_USER_ERROR, open_ws, print_json


def _fmt(est: dict | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    low, high = est.get("low", est.get("ci_low")), est.get("high", est.get("ci_high"))
    if low is None or high is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} [{low:.3f}, {high:.3f}]"


def print_eval_summary(info: dict) -> None:
    print(
        f"evaluation {info['name']}: {info['status']}  {info['candidate_model']} vs {info['baseline_model']}"
    )
    if info.get("error"):
        print(f"  error: {info['error']}")
    t = info.get("tasks", {})
    print(
        f"  tasks: {info['tasks'] if isinstance(info['tasks'], str) else t.get('spec')} "
        f"({info.get('n_items', t.get('n', 0))} items; {t.get('excluded_trained', 0)} trained-on tasks excluded)"
    )
    if "difference" not in info:
        return
    for side in ("baseline", "candidate"):
        s = info[side]
        print(f"  {side:<9} mean score {_fmt(s['score'])}  invalid outputs {s['invalid']}")
    print(f"  paired difference candidate - baseline {_fmt(info['difference'])}")
    for g, d in info.get("graders", {}).items():
        print(
            f"    {g:<10} {_fmt(d['baseline'])} -> {_fmt(d['candidate'])}  diff {_fmt(d['difference'])}"
        )
    for side, tp in info.get("throughput", {}).items():
        print(f"  {side}: {tp['outputs_per_s']} outputs/s, {tp['tokens_per_s']} tokens/s")


def cmd_eval(args) -> int:
    from app.training import evaluation as ev_mod
    from app.training.graders import parse as parse_graders

    ws = open_ws(args)
    graders = None
    if args.grader or args.grader_file:
        graders = parse_graders(args.grader or [], [Path(p) for p in args.grader_file or []])
    decoding = {
        k: v
        for k, v in {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "top_p": args.top_p,
        }.items()
        if v is not None
    }
    with ws.session() as s:
        ev = ev_mod.prepare_eval(
            s,
            args.run,
            against=args.against,
            tasks=args.tasks,
            n=args.n,
            decoding=decoding,
            seed=args.seed,
            name=args.name,
            eval_dir=Path(args.out) if args.out else None,
            graders=graders,
        )
        eid, name = ev.id, ev.name
        if args.detach:
            pid = ev_mod.launch(s, ev)
    if args.detach:
        print(f"evaluation {name} started (pid {pid}); `chambers evals show {name}` reads it")
        return 0
    code = ev_mod.run_foreground(ws, eid, echo=not args.json)
    with ws.session() as s:
        info = ev_mod.show(s, ev_mod.get_eval(s, name))
    if args.json:
        print_json(info)
    else:
        print_eval_summary(info)
    return 0 if code == 0 and info["status"] == "finished" else 1


def cmd_evals_list(args) -> int:
    from app.training.evaluation import list_evals

    ws = open_ws(args)
    with ws.session() as s:
        rows = list_evals(s)
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['id']:>4}  {r['name']:<28} {r['status']:<9} {r['candidate_model']} vs {r['baseline_model']}"
                f"  diff {_fmt(r['difference'])}"
            )
    return 0


def cmd_evals_show(args) -> int:
    from app.training import evaluation as ev_mod

    ws = open_ws(args)
    with ws.session() as s:
        info = ev_mod.show(s, ev_mod.get_eval(s, args.name))
    if args.json:
        print_json(info)
    else:
        print_eval_summary(info)
    return 0


def cmd_evals_cancel(args) -> int:
    from app.training import evaluation as ev_mod

    ws = open_ws(args)
    with ws.session() as s:
        print(ev_mod.cancel(s, args.name))
    return 0


def _actor(args) -> str:
    return args.by or getpass.getuser()


def cmd_models_list(args) -> int:
    from app.training.registry import tree

    ws = open_ws(args)
    with ws.session() as s:
        rows = tree(s)
    if args.json:
        print_json([r | {"depth": d} for d, r in rows])
        return 0
    for depth, r in rows:
        mark = " (current)" if r["current"] else ""
        print(f"{'  ' * depth}{'└ ' if depth else ''}{r['name']}  [{r['kind']}]{mark}")
    return 0


def print_gate(g: dict) -> None:
    print(f"gate ({g['rule_text']}): {'PASSED' if g['passed'] else 'FAILED'}")
    for c in g["conditions"]:
        print(f"  [{'x' if c['passed'] else ' '}] {c['name']}: {c['detail']}")


def cmd_models_show(args) -> int:
    from app.training.modelinfo import show_model
    from app.training.registry import get_model

    ws = open_ws(args)
    with ws.session() as s:
        info = show_model(s, get_model(s, args.name))
    if args.json:
        print_json(info)
        return 0
    cur = " (current)" if info["current"] else ""
    print(f"{info['name']}  [{info['kind']}]{cur}  parent: {info['parent'] or '-'}")
    print(f"  path: {info['path']}")
    lin = info["lineage"]
    if lin.get("snapshot"):
        print(f"  snapshot {lin['snapshot']['name']} sha256 {lin['snapshot']['sha256'][:16]}…")
        print(
            f"  run {lin['run']['name']} ({lin['run']['algorithm']}), rubric versions {lin['rubric_version_ids']}, graders {[g['name'] for g in lin['graders']]}"
        )
    for e in info["evaluations"]:
        print(f"  evaluation {e['name']}: {e['status']}, difference {_fmt(e.get('difference'))}")
    for c in info["comparisons"]:
        print(
            f"  comparison {c['round']}: win rate {_fmt(c['win_rate'])}, ties {_fmt(c['tie_share'])}, alpha {_fmt(c['alpha'])}, {c['verdicts']}/{c['assigned']} verdicts"
        )
    if info["reward_hacking"]:
        print("  REWARD HACKING WATCH: graders say the candidate improved, the judges do not")
    bt = info.get("bradley_terry") or {}
    for m, e in sorted(bt.items(), key=lambda kv: -kv[1]["value"]):
        print(f"  Bradley-Terry {m}: {_fmt(e)}")
    for p in info["promotions"]:
        print(
            f"  {p['action']} by {p['actor']} at {p['at']}{' (forced)' if p['forced'] else ''}: {p['reason']}"
        )
    if "gate" in info:
        print_gate(info["gate"])
    return 0


def cmd_models_promote(args) -> int:
    from app.training import gate
    from app.training.registry import get_model

    ws = open_ws(args)
    try:
        with ws.session() as s:
            result = gate.promote(
                s, get_model(s, args.name), _actor(args), args.reason or "", args.force
            )
    except gate.GateFailed as exc:
        print(f"chambers: refused: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print_gate(result)
    forced = " (forced past the gate)" if not result["passed"] else ""
    print(f"{args.name} is now the current model{forced}")
    return 0


def cmd_models_rollback(args) -> int:
    from app.training.registry import rollback

    ws = open_ws(args)
    with ws.session() as s:
        left, back = rollback(s, _actor(args), args.reason or "")
        print(f"rolled back: {left.name} -> {back.name} is the current model again")
    return 0


def cmd_models_export(args) -> int:
    from app.training.modelinfo import export_model
    from app.training.registry import get_model

    if bool(args.merged) == bool(args.adapter):
        print("chambers: error: give one of --merged DIR or --adapter DIR", file=sys.stderr)
        return EXIT_USER_ERROR
    ws = open_ws(args)
    with ws.session() as s:
        model = get_model(s, args.name)
        res = export_model(
            s, model, "merged" if args.merged else "adapter", Path(args.merged or args.adapter)
        )
    print(f"{res['mode']} export of {res['model']} written to {res['out']}")
    return 0


def cmd_models_gate(args) -> int:
    from app.training import gate

    ws = open_ws(args)
    with ws.session() as s:
        if args.set:
            changes = {}
            for item in args.set:
                k, _, v = item.partition("=")
                if k not in gate.DEFAULT_RULE:
                    changes[k] = v  # set_rule names it
                elif isinstance(gate.DEFAULT_RULE[k], bool):
                    changes[k] = v.lower() in ("1", "true", "yes", "on")
                else:
                    try:
                        changes[k] = float(v)
                    except ValueError:
                        print(f"chambers: error: {k}: {v!r} is not a number", file=sys.stderr)
                        return EXIT_USER_ERROR
            rule = gate.set_rule(s, changes, _actor(args))
        else:
            rule = gate.get_rule(s)
    if args.json:
        print_json(rule)
    else:
        print(gate.describe(rule))
    return 0


# ---------------------------------------------------------------------------------------------
# Comparison rounds


def cmd_compare_create(args) -> int:
    from app.review.reviews import get_judge
    from app.training.comparison import create_round

    ws = open_ws(args)
    with ws.session() as s:
        judges = [get_judge(s, n.strip()).id for n in args.judges.split(",") if n.strip()]
        rnd = create_round(s, args.name, args.eval, judges, args.k, args.seed)
        print(f"comparison round {rnd.name}: {len(judges)} judges, k={rnd.k}")
    return 0


def print_results(r: dict) -> None:
    print(
        f"comparison {r['round']}: {r['verdicts']}/{r['assigned']} verdicts on {r['items']} items"
    )
    print(f"  candidate win rate (ties half) {_fmt(r['win_rate'])}")
    print(f"  tie share {_fmt(r['tie_share'])}")
    note = (r["alpha"] or {}).get("note", "")
    print(f"  judges' agreement (Krippendorff alpha, nominal) {_fmt(r['alpha'])} {note}".rstrip())
    print(f"  position bias: share of A among decided {_fmt(r['position_bias_A'])}")
    rh = r["reward_hacking"]
    if rh["flagged"]:
        print(f"  REWARD HACKING WATCH: {rh['reason']}")
    for m, e in (r.get("bradley_terry") or {}).items():
        print(f"  Bradley-Terry {m}: {_fmt(e)}")


def cmd_compare_results(args) -> int:
    from app.training.comparison import get_round, results, strengths

    ws = open_ws(args)
    with ws.session() as s:
        r = results(s, get_round(s, args.name))
        r["bradley_terry"] = strengths(s)
    if args.json:
        print_json(r)
    else:
        print_results(r)
    return 0


def cmd_compare_pairs(args) -> int:
    from app.training.comparison import get_round, to_pairs

    ws = open_ws(args)
    with ws.session() as s:
        n = to_pairs(s, get_round(s, args.name))
    print(f"{n} new preference pairs from {args.name}'s verdicts (rule 'comparison')")
    return 0


def cmd_compare_list(args) -> int:
    from sqlalchemy import select

    from app.workspace.models import ComparisonRound, Evaluation

    ws = open_ws(args)
    with ws.session() as s:
        rows = [
            {"name": r.name, "evaluation": s.get(Evaluation, r.evaluation_id).name, "k": r.k}
            for r in s.scalars(select(ComparisonRound).order_by(ComparisonRound.id))
        ]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:<24} evaluation {r['evaluation']}  k={r['k']}")
    return 0


def register(sub) -> None:
    sp = sub.add_parser(
        "eval",
        help="evaluate a run's candidate against its base (or a registered model) on held-out tasks",
    )
    sp.add_argument("run", help="training run name or id")
    sp.add_argument(
        "--against", default="base", help="base (the run's base model) or a registered model's name"
    )
    sp.add_argument(
        "--tasks",
        default="heldout",
        help="heldout (default: the run's snapshot held-out split), round:NAME or snapshot:NAME",
    )
    sp.add_argument("--n", type=int, help="at most N tasks")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--max-new-tokens", type=int)
    sp.add_argument("--temperature", type=float, help="0 (default) decodes greedily")
    sp.add_argument("--top-p", type=float)
    sp.add_argument(
        "--grader",
        action="append",
        help="NAME:WEIGHT (default: the run's graders, else match, tools, format, json)",
    )
    sp.add_argument("--grader-file", action="append")
    sp.add_argument("--name", help="evaluation name (default RUN-evalN)")
    sp.add_argument("--out", help="evaluation directory (default RUN_DIR/evals/NAME)")
    sp.add_argument("--detach", action="store_true", help="start it in the background and return")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_eval)

    ev = sub.add_parser("evals", help="evaluations: list, show, cancel").add_subparsers(
        dest="evals_cmd", required=True
    )
    sp = ev.add_parser("list")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_evals_list)
    sp = ev.add_parser("show")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_evals_show)
    sp = ev.add_parser("cancel")
    sp.add_argument("name")
    sp.set_defaults(func=cmd_evals_cancel)
    sp = ev.add_parser("regrade", help="score the stored outputs with other graders")
    sp.add_argument("name")
    sp.add_argument("--grader", action="append")
    sp.add_argument("--grader-file", action="append")
    sp.set_defaults(func=cmd_evals_regrade)

    md = sub.add_parser(
        "models", help="model registry: list, show, promote, rollback, export, gate"
    ).add_subparsers(dest="models_cmd", required=True)
    sp = md.add_parser("list", help="the lineage tree")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_models_list)
    sp = md.add_parser("show", help="lineage, evaluations, comparisons, gate, reward-hacking watch")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_models_show)
    sp = md.add_parser("promote", help="make a candidate current if it passes the gate")
    sp.add_argument("name")
    sp.add_argument(
        "--force", action="store_true", help="past a failed gate (needs --reason; audited)"
    )
    sp.add_argument("--reason")
    sp.add_argument("--by", help="who (default: the login name)")
    sp.set_defaults(func=cmd_models_promote)
    sp = md.add_parser("rollback", help="make the previously promoted model current again")
    sp.add_argument("--reason")
    sp.add_argument("--by")
    sp.set_defaults(func=cmd_models_rollback)
    sp = md.add_parser("export", help="write a merged model (safetensors) or the adapter alone")
    sp.add_argument("name")
    sp.add_argument("--merged", metavar="DIR")
    sp.add_argument("--adapter", metavar="DIR")
    sp.set_defaults(func=cmd_models_export)
    sp = md.add_parser("gate", help="show or set the workspace's promotion rule")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE")
    sp.add_argument("--by")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_models_gate)

    cp = sub.add_parser(
        "compare", help="blind A/B comparison rounds over an evaluation"
    ).add_subparsers(dest="compare_cmd", required=True)
    sp = cp.add_parser("create")
    sp.add_argument("name")
    sp.add_argument("--eval", required=True, help="evaluation name")
    sp.add_argument("--judges", required=True, help="comma-separated judge names")
    sp.add_argument("--k", type=int, default=2, help="judges per item")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=cmd_compare_create)
    sp = cp.add_parser("list")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_compare_list)
    sp = cp.add_parser("results")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_compare_results)
    sp = cp.add_parser("pairs", help="decided verdicts become preference pairs")
    sp.add_argument("name")
    sp.set_defaults(func=cmd_compare_pairs)


def cmd_evals_regrade(args) -> int:
    from app.training import evaluation as ev_mod
    from app.training.graders import parse as parse_graders

    graders = parse_graders(args.grader or [], [Path(p) for p in args.grader_file or []])
    ws = open_ws(args)
    with ws.session() as s:
        ev = ev_mod.get_eval(s, args.name)
        ev_mod.regrade(s, ev, graders)
        info = ev_mod.show(s, ev)
    print_eval_summary(info)
    return 0
