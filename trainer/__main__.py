from __future__ import annotations

import argparse
import os
import sys

# Offline before anything from the Hugging Face stack is imported: nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer")
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("run", help="run a training config (JSON) written by Chambers")
    sp.add_argument("config")
    sp = sub.add_parser("eval", help="run an evaluation config (JSON) written by Chambers")
    sp.add_argument("config")
    sp = sub.add_parser("export", help="export a registered model (JSON job written by Chambers)")
    sp.add_argument("config")
    sp = sub.add_parser("demo-model", help="write a tiny Qwen2-style model + tokenizer")
    sp.add_argument("dir")
    sp.add_argument(
        "--steps",
        type=int,
        default=None,
        help="pre-training steps on the sample's agent conversations (0: the random model)",
    )
    args = p.parse_args(argv)
    if args.command == "run":
        from trainer.run import main as run_main

        return run_main(args.config)
    if args.command == "eval":
        from trainer.evaluate import main as eval_main

        return eval_main(args.config)
    if args.command == "export":
        from trainer.export import main as export_main

        return export_main(args.config)
    from trainer.demo import PRETRAIN_STEPS, build

    path = build(args.dir, steps=PRETRAIN_STEPS if args.steps is None else args.steps)
    print(f"demo model written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
