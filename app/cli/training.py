"""ML engineer commands: pairs, snapshots, exports, training runs, the demo model."""

from __future__ import annotations

import sys
from pathlib import Path

from app.cli.common import open_ws, out_file, print_json
from app.workspace.errors import ChambersError


def _filter(s, args):
    from app.review.reviews import get_judge
    from app.review.rubrics import get_version
    from app.training.pairs import DEFAULT_MAX_PER_TASK, PairFilter

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
        max_per_task=getattr(args, "max_per_task", DEFAULT_MAX_PER_TASK) or None,
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
        changes = derive_pairs(s)
        data = stats(s, _filter(s, args))
    data["derived"] = changes.as_dict()
    if args.json:
        print_json(data)
    else:
        added, removed = sum(changes.added.values()), sum(changes.removed.values())
        print(f"{data['pairs']} pairs ({data['adjudicated']} from adjudicated traces)")
        print(f"  this derivation: {added} added, {removed} removed, {changes.updated} updated")
        print("  by rule: " + ", ".join(f"{k} {v}" for k, v in data["by_rule"].items()))
        print(
            "  by split: "
            + ", ".join(f"{k} {v} ({data['tasks'][k]} tasks)" for k, v in data["by_split"].items())
        )
    return 0


def cmd_snapshot_create(args) -> int:
    from app.training.pairs import create_snapshot, derive_pairs

    ws = open_ws(args)
    if getattr(args, "source", "pairs") == "verdicts":
        return _snapshot_verdicts(ws, args)
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


def _snapshot_verdicts(ws, args) -> int:
    """A snapshot of step examples from verdicts (SFT and KTO train on these)."""
    from app.training.examples import KINDS, ExampleFilter, create_verdict_snapshot

    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    bad = sorted(set(kinds or []) - set(KINDS))
    if bad:
        raise ChambersError(
            f"--kinds: unknown judgement kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}"
        )
    with ws.session() as s:
        flt = _filter(s, args)
        snap = create_verdict_snapshot(
            s,
            args.name,
            ExampleFilter(
                rubric_version_id=flt.rubric_version_id,
                kinds=kinds,
                adjudicated_only=flt.adjudicated_only,
                heldout=flt.heldout,
                seed=flt.seed,
            ),
        )
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
            f"snapshot {out['name']!r}: {c['examples']} step examples from verdicts "
            f"({c['desirable']} desirable, {c['undesirable']} undesirable; "
            f"{', '.join(f'{k} {v}' for k, v in c['by_split'].items())}), "
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
                "examples": x.counts.get("examples"),
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
            size = (
                f"{r['pairs']} pairs"
                if r["pairs"] is not None
                else f"{r['examples']} step examples (verdicts)"
            )
            print(f"{r['name']}: {size} {r['by_split']} sha256 {r['sha256'][:16]}…")
    return 0


def cmd_export_pairs(args) -> int:
    from app.training.pairs import export_snapshot

    out = out_file(args.out)
    ws = open_ws(args)
    with ws.session() as s:
        info = export_snapshot(s, args.snapshot, args.format, out)
    for f in info["files"]:
        split = "" if f["split"] == "all" else f" {f['split']}"
        print(
            f"wrote {f['pairs']}{split} pairs to {f['path']} ({info['format']}, sha256 "
            f"{f['sha256'][:16]}…)"
        )
    return 0


def _train_overrides(args) -> dict:
    """The TrainConfig fields given on the command line (None: not given)."""
    from app.training.config import TrainConfig

    return {name: getattr(args, name, None) for name in TrainConfig.help_lines()}


def cmd_train(args) -> int:
    from app.training import runs
    from app.training.config import TrainConfig

    ws = open_ws(args)
    if args.resume:
        with ws.session() as s:
            run_id = runs.prepare_resume(s, args.resume).id
        return _follow(ws, run_id, args)
    missing = [f"--{k}" for k in ("snapshot", "model", "out") if not getattr(args, k)]
    if missing:
        raise ChambersError(
            f"train {args.algorithm}: {', '.join(missing)} required (or --resume RUN)"
        )
    graders = None
    if args.algorithm == "grpo":
        graders = runs.parse_graders(
            args.grader or ([] if args.grader_file else ["match:1.0"]),
            [Path(p) for p in args.grader_file or []],
        )
    overrides = _train_overrides(args)
    if args.config:
        overrides = TrainConfig.from_file(Path(args.config)).update(overrides)
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
            environment=_environment(args.environment),
        )
        run_id = run.id
        if args.environment:
            print(_agent_summary(run.config))
    return _follow(ws, run_id, args)


def _bound(x: dict) -> str:
    """A statistic with its CI as `0.87 [0.65, 0.96]` (a dash where undefined)."""
    if x.get("value") is None:
        return "-"
    return f"{x['value']:.2f} [{x['ci_low']:.2f}, {x['ci_high']:.2f}]"


def cmd_graders_check(args) -> int:
    from app.training import runs

    graders = runs.parse_graders(
        args.grader or ([] if args.grader_file else ["match:1.0"]),
        [Path(p) for p in args.grader_file or []],
    )
    ws = open_ws(args)
    with ws.session() as s:
        v = runs.validate_graders(s, graders, args.part)
    if args.json:
        print_json(v)
        return 0 if v["ok"] else 1
    sp = v["split"]
    print(
        f"{args.part} half: {v['n']} traces of {v['n_tasks']} tasks "
        f"({sp['tasks_checked']} of {sp['tasks_with_reference']} tasks with an independent "
        f"reference; references: {', '.join(f'{k} {n}' for k, n in v['sources'].items())})"
    )
    print(f"{'grader':<12} {'n':>4}  {'κ [95% CI]':<22} {'within-task AUC [95% CI]':<26} result")
    for r in [*v["per_grader"], v["combined"]]:
        print(
            f"{r['name']:<12} {r['n']:>4}  {_bound(r['kappa']):<22} "
            f"{_bound(r['rank']):<26} {r['status']}"
        )
    t = v["thresholds"]
    print(
        f"gate: κ CI lower bound >= {t['kappa_ci_low_min']} and AUC CI lower bound > "
        f"{t['rank_ci_low_above']} for each grader and combined: "
        + ("passed" if v["ok"] else "FAILED")
    )
    for line in v["failures"] + v["warnings"]:
        print(f"  {line}")
    for reason, n in v["left_out"].items():
        print(f"  left out: {n} ({reason})")
    return 0 if v["ok"] else 1


def _environment(value: str | None) -> str | None:
    """`sample` names the sample's environment file; a path or `replay` pass through."""
    if value == "sample":
        from app.sample import SAMPLE_ENVIRONMENT

        return str(SAMPLE_ENVIRONMENT)
    return value


def _agent_summary(config: dict) -> str:
    """One line on agent GRPO's data: tasks per split, the environment, refusals by reason."""
    data, env = config["data"], config["environment"]
    refused = data.get("refused") or {}
    why = "; ".join(f"{n} {reason}" for reason, n in sorted(refused.items()))
    return (
        f"agent GRPO: {data['train']} train and {data['heldout']} held-out tasks in the "
        f"{env['kind']} environment ({len(env['tools'])} tools); refused "
        f"{sum(refused.values())} task(s)" + (f": {why}" if why else "")
    )


def _follow(ws, run_id: int, args) -> int:
    from app.training import runs

    code = runs.run_foreground(ws, run_id, echo=not args.quiet)
    with ws.session() as s:
        r = runs.get_run(s, run_id)
        print(f"run {r.name}: {r.status}" + (f" ({r.error})" if r.error else "") + f"; {r.run_dir}")
    return 0 if code == 0 else 1


def cmd_runs_resume(args) -> int:
    from app.training import runs

    ws = open_ws(args)
    with ws.session() as s:
        run = runs.prepare_resume(s, args.run)
        if args.detach:
            runs.launch(s, run)
            print(
                f"resuming run {run.name} (pid {run.pid}) from "
                f"{run.config['resume_from']}; follow it with `chambers runs show {run.name}`"
            )
            return 0
        run_id = run.id
    return _follow(ws, run_id, args)


def _config_options(tp) -> None:
    """One option per TrainConfig field, its help line from the dataclass."""
    import argparse

    from app.training.config import TrainConfig

    types = TrainConfig.option_types()
    aliases = {"num_train_epochs": ["--epochs"]}
    for name, help_line in TrainConfig.help_lines().items():
        flags = [f"--{name.replace('_', '-')}", *aliases.get(name, [])]
        default = TrainConfig.field_default(name)
        shown = f" [for a tiny model: {default}]" if default is not None else ""
        if types[name] is bool:
            tp.add_argument(
                *flags,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_line,
            )
        else:
            tp.add_argument(
                *flags, dest=name, type=types[name], default=None, help=help_line + shown
            )


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


def cmd_runs_episodes(args) -> int:
    """A GRPO run's logged episodes: step, split, rewards per grader, tool calls."""
    from app.training import episodes, runs

    ws = open_ws(args)
    with ws.session() as s:
        run_dir = runs.get_run(s, args.run).run_dir
    rows = episodes.read_episodes(run_dir, split=args.split, step=args.step)
    if args.json:
        print_json(rows)
        return 0
    print(f"{'step':>5} {'split':<8} {'reward':>7} {'calls':>5}  rewards per grader")
    for e in rows:
        reward = "-" if e["reward"] is None else f"{e['reward']:.3f}"
        graders = ", ".join(f"{k}={v:.2f}" for k, v in e["rewards"].items())
        print(f"{e['step']:>5} {e['split']:<8} {reward:>7} {e['tool_calls']:>5}  {graders}")
    return 0


def cmd_runs_send_heldout(args) -> int:
    """The run's held-out episodes as traces in a review round (once: a second send adds
    nothing)."""
    from app.review.reviews import get_judge
    from app.training import episodes, runs

    ws = open_ws(args)
    with ws.session() as s:
        run = runs.get_run(s, args.run)
        if args.judges:
            judges = [get_judge(s, n.strip()).id for n in args.judges.split(",") if n.strip()]
            k = args.k or min(2, len(judges))
        else:
            judges, k = episodes.default_judges(s, args.k or 2)
        lead = get_judge(s, args.as_judge).id if args.as_judge else None
        name = args.name or episodes.round_name(s, run.id)
        rnd = episodes.episodes_to_round(s, run.id, name, judges, k, created_by=lead)
        sel = rnd.selection
        if sel.get("run_id") == run.id and rnd.name == name:
            print(
                f"round {rnd.name!r}: {sel['n_traces']} of {sel['episodes']} held-out episodes "
                f"({sel['new_traces']} new traces), {len(judges)} judges, {rnd.overlap} per item"
            )
        else:
            print(f"every held-out episode of {run.name!r} is with judges already: {rnd.name!r}")
    return 0


def cmd_demo_model(args) -> int:
    import subprocess

    from app.training.runs import trainer_env

    if args.steps is not None and args.steps < 0:
        raise ChambersError(f"demo-model: --steps {args.steps}: must be 0 or more")
    steps = [] if args.steps is None else ["--steps", str(args.steps)]
    code = subprocess.call(
        [sys.executable, "-m", "trainer", "demo-model", args.dir, *steps], env=trainer_env()
    )
    if code != 0:
        raise ChambersError(f"could not build the demo model in {args.dir}")
    return 0


def _filter_args(sp) -> None:
    sp.add_argument("--rubric", help="only pairs under this rubric")
    sp.add_argument("--version", type=int, help="…and this version")
    sp.add_argument("--rules", help="comma-separated: modify,first_error,reject_with_answer,ranked")
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
        "--max-per-task",
        type=int,
        default=10,
        metavar="N",
        help="ranked pairs: at most N per task, largest margins first (default 10; 0: no cap)",
    )
    sp.add_argument(
        "--heldout",
        type=float,
        default=0.1,
        help="share of pairs held out, whole tasks at a time (default 0.1)",
    )
    sp.add_argument("--seed", type=int, default=0, help="seed of the task split")


def _grader_options(sp) -> None:
    sp.add_argument(
        "--grader",
        action="append",
        metavar="NAME:WEIGHT",
        help="GRPO built-in graders: match, tools, format, json (default match:1.0; "
        "repeat the option to combine them by weight)",
    )
    sp.add_argument(
        "--grader-file",
        action="append",
        metavar="FILE.py",
        help="GRPO: a Python file defining grade(sample, reference) -> float",
    )


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
    sp.add_argument(
        "--from",
        dest="source",
        choices=["pairs", "verdicts"],
        default="pairs",
        help="pairs (DPO, GRPO; default) or verdicts: step examples for SFT and KTO",
    )
    sp.add_argument(
        "--kinds",
        help="verdicts: only these judgement kinds (comma-separated: "
        "approve,modify,reject,reject_with_answer,step_label)",
    )
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
    sp.add_argument(
        "--out",
        required=True,
        help="the file; openai: the training pairs, held-out ones go to NAME.heldout.jsonl beside it",
    )
    sp.set_defaults(func=cmd_export_pairs)

    tp = sub.add_parser(
        "train",
        help="launch a LoRA run: sft and kto on verdicts, dpo and grpo on pairs",
        description="Train a LoRA adapter. SFT learns from approved and corrected steps, KTO "
        "from unpaired verdicts (approved and corrected desirable, rejected undesirable), DPO "
        "from preference pairs, GRPO from graders checked against the judges. Ctrl+C cancels "
        "(a checkpoint is kept); closing the terminal leaves the run going.",
    )
    tp.add_argument(
        "algorithm",
        choices=["sft", "kto", "dpo", "grpo"],
        metavar="METHOD",
        help="sft, kto, dpo or grpo",
    )
    tp.add_argument("--snapshot", help="a snapshot: of verdicts for sft/kto, of pairs for dpo/grpo")
    tp.add_argument("--model", help="a local Hugging Face model directory")
    tp.add_argument("--out", help="the run directory (created)")
    tp.add_argument("--name", help="run name (default: the run directory's name)")
    tp.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a cancelled or failed run from "
        "its last checkpoint (other options are ignored)",
    )
    tp.add_argument(
        "--config",
        metavar="FILE.json",
        help="training options as JSON (the fields below; options given here win)",
    )
    _config_options(tp)
    _grader_options(tp)
    tp.add_argument(
        "--force",
        action="store_true",
        help="GRPO: train even if the graders disagree with the judges",
    )
    tp.add_argument(
        "--environment",
        metavar="FILE.py|replay|sample",
        help="GRPO for agents: the model calls tools during training, from an environment "
        "file (a class Environment or a TOOLS list), `replay` (the reviewed traces' recorded "
        "tool results) or `sample` (the sample workspace's deterministic tools)",
    )
    tp.add_argument("--quiet", action="store_true", help="do not echo events")
    tp.set_defaults(func=cmd_train)

    gp = sub.add_parser("graders", help="GRPO graders: check them against the judges")
    gs = gp.add_subparsers(dest="graders_command", metavar="SUBCOMMAND")
    gs.required = True
    sp = gs.add_parser(
        "check",
        help="per grader and combined: Cohen's κ and within-task AUC against the judges, "
        "with bootstrap CIs, on held-out traces (exit 1 when the gate fails)",
        description="Grade every reviewed trace of the held-out half of the tasks against a "
        "reference from another trace of its task (a lead's verdict, an approved trace or a "
        "correction; never the trace's own review) and compare with the judges.",
    )
    _grader_options(sp)
    sp.add_argument(
        "--part",
        choices=["heldout", "dev"],
        default="heldout",
        help="heldout (the half that gates GRPO) or dev (the other half, to look at while "
        "writing a grader)",
    )
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_graders_check)

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
    sp = rs.add_parser("resume", help="continue a cancelled or failed run from its last checkpoint")
    sp.add_argument("run")
    sp.add_argument("--detach", action="store_true", help="start it and return")
    sp.add_argument("--quiet", action="store_true", help="do not echo events")
    sp.set_defaults(func=cmd_runs_resume)
    sp = rs.add_parser("episodes", help="a GRPO run's logged episodes (rewards, tool calls)")
    sp.add_argument("run", help="run id or name")
    sp.add_argument("--split", choices=("train", "heldout"))
    sp.add_argument("--step", type=int)
    sp.add_argument("--json", action="store_true", help="the episodes with their messages")
    sp.set_defaults(func=cmd_runs_episodes)
    sp = rs.add_parser(
        "send-heldout",
        help="send a GRPO run's held-out completions to judges as a review round (once)",
    )
    sp.add_argument("run", help="run id or name")
    sp.add_argument("--judges", help="comma-separated names (default: every active judge)")
    sp.add_argument("--k", type=int, help="judges per episode (default: 2)")
    sp.add_argument("--name", help='round name (default: "RUN held-out")')
    sp.add_argument("--as", dest="as_judge", metavar="LEAD", help="record this lead as author")
    sp.set_defaults(func=cmd_runs_send_heldout)

    sp = sub.add_parser(
        "demo-model",
        help="write a tiny Qwen2-style model + tokenizer, built offline, to try training on a CPU",
    )
    sp.add_argument("dir")
    sp.add_argument(
        "--steps",
        type=int,
        default=None,
        help="pre-training steps on the sample's agent conversations so it calls the tools "
        "(default 300, about 2 minutes on 2 cores; 0: the random model, as tests/fixtures/tiny-qwen2)",
    )
    sp.set_defaults(func=cmd_demo_model)
