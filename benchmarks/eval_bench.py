"""Evaluation throughput and the wrapper's overhead against plain `transformers.generate`,
measured side by side in one run.

    python benchmarks/eval_bench.py [--model DIR] [--n 16] [--max-new-tokens 64] [--repeat 2]
    python benchmarks/eval_bench.py --config EVAL_DIR/config.json [--synthetic 1024:16]

The second form reuses a prepared evaluation (its tasks) without a workspace or training, for a
GPU machine; --synthetic HIDDEN:LAYERS swaps in a randomly initialised Qwen2 of that size (the
config's tokenizer) and a random LoRA adapter, so the timing is not a toy model's.

A sample workspace, a 2-step DPO run on --model, then on the same held-out prompts:
- Chambers' evaluation (trainer/evaluate.py: chat template with tools, seeded generation,
  tool-call parse, graders, JSON lines) for the base and the candidate (base + LoRA):
  outputs/s and tokens/s of each;
- plain `model.generate` on the same prompt strings with the same settings, for the same two
  models, nothing else.
Ratio = plain tokens/s / Chambers tokens/s (target <= 1.2). Best of --repeat, alternating.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(root: Path, model: Path, n: int, max_new: int):
    from app.sample import build_sample
    from app.training import pairs as pr
    from app.training import runs
    from app.workspace.db import open_workspace

    ws = open_workspace(str(root / "bench.sqlite"))
    build_sample(ws, n_traces=300)
    with ws.session() as s:
        pr.derive_pairs(s)
        pr.create_snapshot(s, "bench", pr.PairFilter(heldout=0.5))
        rid = runs.prepare_run(
            s, "dpo", "bench", model, root / "run", {"max_steps": 2}, name="run"
        ).id
    if runs.run_foreground(ws, rid, echo=False) != 0:
        sys.exit(f"training failed: see {root / 'run' / 'stdout.log'}")
    return ws


def prepare(ws, k: int, n: int, max_new: int) -> Path:
    from app.training import evaluation as ev_mod

    with ws.session() as s:
        ev = ev_mod.prepare_eval(
            s, "run", n=n, decoding={"max_new_tokens": max_new}, name=f"bench{k}"
        )
        return Path(ev.eval_dir) / "config.json"


def chambers_eval(cfg: Path) -> dict:
    import contextlib
    import io

    from trainer.evaluate import main as eval_main

    (cfg.parent / "events.jsonl").unlink(missing_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the events go to the file too
        assert eval_main(str(cfg)) == 0
    events = [json.loads(x) for x in (cfg.parent / "events.jsonl").read_text().splitlines()]
    (cfg.parent / "outputs.jsonl").unlink(missing_ok=True)
    return events[-1]["throughput"], json.loads(cfg.read_text())


def plain_generate(config: dict, side: str) -> dict:
    """The same prompts, the same settings, model.generate and nothing else."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.evaluate import generation_kwargs, warm_up

    spec = config["models"][side]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    tok = AutoTokenizer.from_pretrained(spec["base"])
    model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=dtype)
    if spec["adapter"]:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec["adapter"])
    model = model.to(device).eval()
    kw = generation_kwargs(config["decoding"], tok)
    with open(config["tasks_file"], encoding="utf-8") as f:
        tasks = [json.loads(line) for line in f if line.strip()]
    texts = [
        tok.apply_chat_template(
            [{**m, "content": m.get("content") or ""} for m in t["prompt"]],
            tools=t.get("tools") or None,
            add_generation_prompt=True,
            tokenize=False,
        )
        for t in tasks
    ]
    encoded = [tok(t, return_tensors="pt", add_special_tokens=False).to(device) for t in texts]
    warm_up(model, encoded[0], kw)  # as the evaluation does: the first call is not throughput
    t0, n_tok = time.perf_counter(), 0
    for enc in encoded:
        with torch.no_grad():
            out = model.generate(**enc, **kw)
        n_tok += out.shape[1] - enc["input_ids"].shape[1]
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"outputs_per_s": len(texts) / dt, "tokens_per_s": n_tok / dt, "tokens": n_tok}


def synthetic(config_path: Path, spec: str, root: Path, max_new: int) -> Path:
    """A copy of the evaluation config pointing at a random Qwen2 of HIDDEN:LAYERS and a random
    LoRA adapter on it (B not zero, so the adapter changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    cfg = json.loads(config_path.read_text())
    hidden, layers = (int(x) for x in spec.split(":"))
    tok = AutoTokenizer.from_pretrained(config_path.parent / cfg["models"]["baseline"]["base"])
    base_dir, adapter_dir = root / "synthetic-base", root / "synthetic-adapter"
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 4,
            num_hidden_layers=layers,
            num_attention_heads=max(hidden // 64, 1),
            num_key_value_heads=max(hidden // 256, 1),
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    model.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(adapter_dir)
    cfg["models"]["baseline"] = {"name": "synthetic-base", "base": str(base_dir), "adapter": None}
    cfg["models"]["candidate"] = {
        "name": "synthetic-candidate",
        "base": str(base_dir),
        "adapter": str(adapter_dir),
    }
    return rewrite(cfg, config_path, root, max_new)


def rewrite(cfg: dict, config_path: Path, root: Path, max_new: int | None) -> Path:
    """The config in a fresh directory of ours (events and outputs land there)."""
    out = root / "eval"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_path.parent / "tasks.jsonl", out / "tasks.jsonl")
    cfg.update(eval_dir=str(out), tasks_file=str(out / "tasks.jsonl"))
    if max_new:
        cfg["decoding"]["max_new_tokens"] = max_new
    for side in cfg["models"].values():  # paths relative to the config's folder travel
        for key in ("base", "adapter"):
            if side.get(key) and not Path(side[key]).is_absolute():
                side[key] = str((config_path.parent / side[key]).resolve())
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out / "config.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="a prepared evaluation's config.json (no workspace)")
    ap.add_argument("--synthetic", metavar="HIDDEN:LAYERS")
    ap.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "tiny-qwen2"))
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    root = Path(tempfile.mkdtemp(prefix="chambers-evalbench-"))
    try:
        ws = None
        if args.config and args.synthetic:
            cfg_path = synthetic(Path(args.config), args.synthetic, root, args.max_new_tokens)
        elif args.config:
            cfg_path = rewrite(
                json.loads(Path(args.config).read_text()),
                Path(args.config),
                root,
                args.max_new_tokens,
            )
        else:
            ws = setup(root, Path(args.model).resolve(), args.n, args.max_new_tokens)
            cfg_path = prepare(ws, 0, args.n, args.max_new_tokens)
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            ours, config = chambers_eval(cfg_path)
            for side in ("baseline", "candidate"):
                plain = plain_generate(config, side)
                for name, rec in ((f"chambers/{side}", ours[side]), (f"plain/{side}", plain)):
                    if rec["tokens_per_s"] > best.get(name, {}).get("tokens_per_s", 0):
                        best[name] = rec
        print(
            f"device: {device}; model: {args.synthetic and 'random Qwen2 ' + args.synthetic or config['models']['baseline']['base']}; "
            f"{config['tasks']['n']} held-out prompts, "
            f"max_new_tokens {args.max_new_tokens}, greedy; best of {args.repeat}"
        )
        for side in ("baseline", "candidate"):
            ours, plain = best[f"chambers/{side}"], best[f"plain/{side}"]
            ratio = plain["tokens_per_s"] / ours["tokens_per_s"]
            print(
                f"{side:<9}  chambers {ours['outputs_per_s']:.2f} outputs/s, {ours['tokens_per_s']:.1f} tokens/s"
                f" | plain generate {plain['outputs_per_s']:.2f} outputs/s, {plain['tokens_per_s']:.1f} tokens/s"
                f" | ratio plain/chambers {ratio:.3f} (target <= 1.2)"
            )
        if ws is not None:
            ws.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
