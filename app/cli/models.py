"""Closing the loop: `chambers eval`, `evals`, `models` and `compare` (comparison rounds)."""

from __future__ import annotations

from pathlib import Path

from app.cli.common import open_ws, print_json


def _fmt(est: dict | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


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
