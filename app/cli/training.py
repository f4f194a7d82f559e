"""ML engineer commands: pairs, snapshots, exports, training runs, the demo model."""

from __future__ import annotations

import sys
from pathlib import Path

from app.cli.common import open_ws, out_file, print_json
from app.workspace.errors import ChambersError


def _filter(s, args):
    from app.review.reviews import get_judge
    from app.review.rubrics import get_version
    from app.training.pairs import PairFilter

    vid = None
    if getattr(args, "rubric", None) or getattr(args, "version", None):
        vid = get_version(s, args.rubric, args.version).id
    judges = None
    if getattr(args, "judges", None):
        judges = [get_judge(s, n.strip()).id for n in args.judges.split(",") if n.strip()]
    return PairFilter(
        rubric_version_id=vid,
        rules=args.rules.split(",") if getattr(args, "rules", None) else None,
        adjudicated_only=getattr(args, "adjudicated_only", False),
        judge_ids=judges,
        since=getattr(args, "since", None),
        until=getattr(args, "until", None),
        min_margin=getattr(args, "min_margin", None),
        min_agreement=getattr(args, "min_agreement", None),
        heldout=getattr(args, "heldout", 0.1),
        seed=getattr(args, "seed", 0),
    )


def cmd_pairs_list(args) -> int:
    from app.training.pairs import derive_pairs, list_pairs

    ws = open_ws(args)
    with ws.session() as s:
        derive_pairs(s)
        rows = list_pairs(s, _filter(s, args), args.limit)
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['id']:>6}  {r['rule']:<19} {r['split']:<8} "
                f"margin={'-' if r['margin'] is None else format(r['margin'], '.3f'):<6} "
                f"traces={r['trace_ids']} judges={', '.join(r['judges'])}"
            )
    return 0


def cmd_pairs_stats(args) -> int:
    from app.training.pairs import derive_pairs, stats

    ws = open_ws(args)
    with ws.session() as s:
        new = derive_pairs(s)
        data = stats(s, _filter(s, args))
    data["new_this_run"] = new
    if args.json:
        print_json(data)
    else:
        print(f"{data['pairs']} pairs ({data['adjudicated']} from adjudicated traces)")
        print("  by rule: " + ", ".join(f"{k} {v}" for k, v in data["by_rule"].items()))
        print(
            "  by split: "
            + ", ".join(f"{k} {v} ({data['tasks'][k]} tasks)" for k, v in data["by_split"].items())
        )
    return 0


def cmd_snapshot_create(args) -> int:
    from app.training.pairs import create_snapshot, derive_pairs

    ws = open_ws(args)
    with ws.session() as s:
        derive_pairs(s)
        snap = create_snapshot(s, args.name, _filter(s, args))
        out = {
            "name": snap.name,
            "id": snap.id,
            "sha256": snap.sha256,
            "counts": snap.counts,
            "filters": snap.filters,
        }
    if args.json:
        print_json(out)
    else:
        c = out["counts"]
        print(
            f"snapshot {out['name']!r}: {c['pairs']} pairs "
            f"({', '.join(f'{k} {v}' for k, v in c['by_split'].items())}), "
            f"sha256 {out['sha256'][:16]}…"
        )
    return 0


def cmd_snapshot_list(args) -> int:
    from sqlalchemy import select

    from app.workspace.models import DatasetSnapshot

    ws = open_ws(args)
    with ws.session() as s:
        rows = [
            {
                "name": x.name,
                "pairs": x.counts.get("pairs"),
                "by_split": x.counts.get("by_split"),
                "sha256": x.sha256,
                "created_at": x.created_at,
                "filters": x.filters,
            }
            for x in s.scalars(select(DatasetSnapshot).order_by(DatasetSnapshot.id))
        ]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']}: {r['pairs']} pairs {r['by_split']} sha256 {r['sha256'][:16]}…")
    return 0


def cmd_export_pairs(args) -> int:
    from app.training.pairs import export_snapshot

    out = out_file(args.out)
    ws = open_ws(args)
    with ws.session() as s:
        info = export_snapshot(s, args.snapshot, args.format, out)
    print(
        f"wrote {info['pairs']} pairs to {info['path']} ({info['format']}, sha256 "
        f"{info['sha256'][:16]}…)"
    )
    return 0


def cmd_train(args) -> int:
    from app.training import runs

    ws = open_ws(args)
    overrides = {
        k: v
        for k, v in {
            "max_steps": args.max_steps,
            "learning_rate": args.learning_rate,
            "num_train_epochs": args.epochs,
            "beta": args.beta,
            "lora_r": args.lora_r,
            "lora_alpha": args.lora_alpha,
            "max_length": args.max_length,
            "num_generations": args.num_generations,
            "max_completion_length": args.max_completion_length,
            "loss_type": args.loss_type,
        }.items()
        if v is not None
    }
    graders = None
    if args.algorithm == "grpo":
        graders = runs.parse_graders(
            args.grader or ([] if args.grader_file else ["match:1.0"]),
            [Path(p) for p in args.grader_file or []],
        )
    with ws.session() as s:
        run = runs.prepare_run(
            s,
            args.algorithm,
            args.snapshot,
            Path(args.model),
            Path(args.out),
            overrides,
            graders,
            name=args.name,
            force=args.force,
        )
        run_id = run.id
    code = runs.run_foreground(ws, run_id, echo=not args.quiet)
    with ws.session() as s:
        r = runs.get_run(s, run_id)
        print(f"run {r.name}: {r.status}" + (f" ({r.error})" if r.error else "") + f"; {r.run_dir}")
    return 0 if code == 0 else 1


def cmd_runs_list(args) -> int:
    from app.training import runs

    ws = open_ws(args)
    with ws.session() as s:
        rows = runs.list_runs(s)
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['id']:>4}  {r['name']:<28} {r['algorithm']:<5} {r['status']:<10} "
                f"{r['snapshot'] or '-':<16} {r['run_dir']}"
            )
    return 0


def cmd_runs_show(args) -> int:
    from app.training import runs

    ws = open_ws(args)
    with ws.session() as s:
        info = runs.show_run(s, args.run)
    if args.json:
        print_json(info)
    else:
        for k in (
            "name",
            "algorithm",
            "status",
            "error",
            "snapshot",
            "base_model",
            "run_dir",
            "started_at",
            "finished_at",
        ):
            print(f"{k:<12} {info.get(k)}")
        m = info.get("manifest")
        if m:
            print(f"adapter      {m['artifacts'].get('adapter_dir')}")
            print(f"verified     {info['verified']}")
            last = (m.get("metrics") or [{}])[-1]
            print(
                "last metrics "
                + ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, int | float))
            )
    return 0


def cmd_runs_cancel(args) -> int:
    from app.training import runs

    ws = open_ws(args)
    with ws.session() as s:
        print(runs.cancel_run(s, args.run))
    return 0


def cmd_demo_model(args) -> int:
    import subprocess

    from app.training.runs import trainer_env

    code = subprocess.call(
        [sys.executable, "-m", "trainer", "demo-model", args.dir], env=trainer_env()
    )
    if code != 0:
        raise ChambersError(f"could not build the demo model in {args.dir}")
    return 0


def _filter_args(sp) -> None:
    sp.add_argument("--rubric", help="only pairs under this rubric")
    sp.add_argument("--version", type=int, help="…and this version")
    sp.add_argument("--rules", help="comma-separated: modify,reject_with_answer,ranked")
    sp.add_argument(
        "--adjudicated-only", action="store_true", help="only pairs from traces a lead adjudicated"
    )
    sp.add_argument(
        "--min-agreement",
        type=float,
        metavar="SHARE",
        help="only traces where at least this share of judges chose the same decision (e.g. 0.67)",
    )
    sp.add_argument("--judges", help="only pairs involving these judges (comma-separated)")
    sp.add_argument("--since", metavar="YYYY-MM-DD")
    sp.add_argument("--until", metavar="YYYY-MM-DD")
    sp.add_argument("--min-margin", type=float, help="ranked pairs: minimum score margin")
    sp.add_argument(
        "--heldout",
        type=float,
        default=0.1,
        help="share of tasks held out (split by task; default 0.1)",
    )
    sp.add_argument("--seed", type=int, default=0, help="seed of the task split")


def register(sub) -> None:
    pp = sub.add_parser("pairs", help="preference pairs derived from reviews")
    ps = pp.add_subparsers(dest="pairs_command", metavar="SUBCOMMAND")
    ps.required = True
    sp = ps.add_parser("list", help="list pairs (derives new ones from reviews first)")
    _filter_args(sp)
    sp.add_argument("--limit", type=int)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_pairs_list)
    sp = ps.add_parser("stats", help="counts per rule and split")
    _filter_args(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_pairs_stats)

    snp = sub.add_parser("snapshot", help="immutable dataset snapshots")
    sns = snp.add_subparsers(dest="snapshot_command", metavar="SUBCOMMAND")
    sns.required = True
    sp = sns.add_parser("create", help="freeze a selection of pairs (no filters: every pair)")
    sp.add_argument("name")
    _filter_args(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_snapshot_create)
    sp = sns.add_parser("list", help="snapshots")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_snapshot_list)

    ep = sub.add_parser("export", help="export data")
    es = ep.add_subparsers(dest="export_command", metavar="SUBCOMMAND")
    es.required = True
    sp = es.add_parser("pairs", help="a snapshot's pairs as TRL JSONL, OpenAI DPO JSONL or Parquet")
    sp.add_argument("--snapshot", required=True)
    sp.add_argument("--format", choices=["trl", "openai", "parquet"], default="trl")
    sp.add_argument("--out", required=True)
    sp.set_defaults(func=cmd_export_pairs)

    tp = sub.add_parser("train", help="launch a LoRA DPO or GRPO run on a snapshot")
    tp.add_argument("algorithm", choices=["dpo", "grpo"])
    tp.add_argument("--snapshot", required=True)
    tp.add_argument("--model", required=True, help="a local Hugging Face model directory")
    tp.add_argument("--out", required=True, help="the run directory (created)")
    tp.add_argument("--name", help="run name (default: the run directory's name)")
    tp.add_argument("--max-steps", type=int)
    tp.add_argument("--epochs", type=float)
    tp.add_argument("--learning-rate", type=float)
    tp.add_argument("--beta", type=float)
    tp.add_argument("--loss-type")
    tp.add_argument("--lora-r", type=int)
    tp.add_argument("--lora-alpha", type=int)
    tp.add_argument("--max-length", type=int)
    tp.add_argument("--num-generations", type=int, help="GRPO: completions per prompt")
    tp.add_argument("--max-completion-length", type=int, help="GRPO")
    tp.add_argument(
        "--grader",
        action="append",
        metavar="NAME:WEIGHT",
        help="GRPO built-in graders: match, tools, format, json (default match:1.0; "
        "repeat the option to combine them by weight)",
    )
    tp.add_argument(
        "--grader-file",
        action="append",
        metavar="FILE.py",
        help="GRPO: a Python file defining grade(sample, reference) -> float",
    )
    tp.add_argument(
        "--force",
        action="store_true",
        help="GRPO: train even if the graders disagree with the judges",
    )
    tp.add_argument("--quiet", action="store_true", help="do not echo events")
    tp.set_defaults(func=cmd_train)

    rp = sub.add_parser("runs", help="training runs")
    rs = rp.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    rs.required = True
    sp = rs.add_parser("list")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_runs_list)
    sp = rs.add_parser("show", help="a run with its manifest (hashes verified)")
    sp.add_argument("run", help="run id or name")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_runs_show)
    sp = rs.add_parser("cancel", help="stop a running run (its last checkpoint stays usable)")
    sp.add_argument("run")
    sp.set_defaults(func=cmd_runs_cancel)

    sp = sub.add_parser(
        "demo-model",
        help="write a tiny Qwen2-style model + tokenizer, built offline, to try training on a CPU",
    )
    sp.add_argument("dir")
    sp.set_defaults(func=cmd_demo_model)
