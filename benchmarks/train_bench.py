"""Training throughput and the wrapper's overhead, measured side by side in one run.

    python benchmarks/train_bench.py [--model DIR] [--steps 40] [--repeat 2]

On the same snapshot (the sample workspace's pairs) and the same settings:
- DPO through Chambers' trainer (`python -m trainer run CONFIG`: events, checkpoints,
  manifest) against a bare TRL script (DPOTrainer + LoRA, nothing else), each in its own
  process, alternating, best of --repeat. Overhead = wrapper / bare - 1 on the training time
  TRL reports (train_runtime) and on the whole process (start to exit). Target: <= 5%.
- pairs/s, tokens/s and peak memory for DPO; steps/s for GRPO.
- On a GPU: model FLOPs utilisation, with about 8*N FLOPs per token for LoRA DPO with
  gradient checkpointing and the reference pass (N = base parameters), against the GPU's
  dense bf16 peak (--peak-tflops, default 989 for an H100 SXM).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = textwrap.dedent("""
    import json, sys, time, resource
    t0 = time.time()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from trainer.run import _flat_messages, _load_jsonl
    cfg = json.load(open(sys.argv[1]))
    t = cfg["training"]
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    tok = AutoTokenizer.from_pretrained(cfg["base_model"], local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=dtype,
                                                 local_files_only=True)
    rows = [{"prompt": _flat_messages(r["prompt"]), "chosen": _flat_messages(r["chosen"]),
             "rejected": _flat_messages(r["rejected"])} for r in _load_jsonl(cfg["train_file"])]
    args = DPOConfig(output_dir=sys.argv[2], learning_rate=t["learning_rate"],
                     max_steps=t["max_steps"], per_device_train_batch_size=t["per_device_train_batch_size"],
                     gradient_accumulation_steps=t["gradient_accumulation_steps"],
                     gradient_checkpointing=t["gradient_checkpointing"], logging_steps=t["logging_steps"],
                     save_strategy="no", report_to=[], seed=t["seed"], bf16=cuda, use_cpu=not cuda,
                     disable_tqdm=True, beta=t["beta"], loss_type=t["loss_type"], max_length=t["max_length"])
    tr = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                    processing_class=tok,
                    peft_config=LoraConfig(r=t["lora_r"], lora_alpha=t["lora_alpha"],
                                           lora_dropout=t["lora_dropout"],
                                           target_modules=t["lora_target_modules"], task_type="CAUSAL_LM"))
    out = tr.train()
    tokens = tr.state.log_history[-2].get("num_tokens") if len(tr.state.log_history) > 1 else None
    print("BARE " + json.dumps({"train_runtime": out.metrics["train_runtime"], "num_tokens": tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}))
""")


def env() -> dict[str, str]:
    e = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false"
    )
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def prepare(tmp: Path, model: Path, algorithm: str, steps: int, name: str) -> Path:
    from app.sample import build_sample
    from app.training import pairs, runs
    from app.workspace.db import open_workspace

    db = tmp / "bench.sqlite"
    fresh = not db.exists()
    ws = open_workspace(str(db))
    if fresh:
        build_sample(ws)
        with ws.session() as s:
            pairs.derive_pairs(s)
            pairs.create_snapshot(s, "bench", pairs.PairFilter(heldout=0.0))
    over = {"max_steps": steps, "save_steps": 10**6, "logging_steps": 5}
    if algorithm == "grpo":
        over.update({"num_generations": 4, "max_completion_length": 32})
    with ws.session() as s:
        run = runs.prepare_run(
            s, algorithm, "bench", model, tmp / name, over, name=name, force=True
        )
        path = Path(run.run_dir) / "config.json"
    ws.close()
    return path


def wrapper(config: Path) -> dict:
    t = time.time()
    subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(config)],
        env=env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.time() - t
    events = [json.loads(x) for x in (config.parent / "events.jsonl").read_text().splitlines()]
    final = events[-1]
    assert final["event"] == "finished", final
    summary = [e for e in events if e["event"] == "log" and "train_runtime" in e["metrics"]][-1]
    logs = [e for e in events if e["event"] == "log" and "num_tokens" in e["metrics"]]
    return {
        "wall": wall,
        "train_runtime": summary["metrics"]["train_runtime"],
        "num_tokens": logs[-1]["metrics"]["num_tokens"] if logs else None,
        "peak_rss_mb": final.get("peak_rss_mb"),
        "peak_cuda_mb": final.get("peak_cuda_mb"),
        "n_params": final.get("n_params"),
    }


def bare(config: Path, out: Path) -> dict:
    t = time.time()
    p = subprocess.run(
        [sys.executable, "-c", BARE, str(config), str(out)],
        env=env(),
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.time() - t
    line = next(x for x in p.stdout.splitlines() if x.startswith("BARE "))
    return {"wall": wall, **json.loads(line[5:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "tiny-qwen2"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()
    model = Path(a.model).resolve()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w_runs, b_runs = [], []
        for i in range(a.repeat):
            cfg = prepare(tmp, model, "dpo", a.steps, f"dpo{i}")
            b_runs.append(bare(cfg, tmp / f"bare{i}"))
            w_runs.append(wrapper(cfg))
        w = min(w_runs, key=lambda r: r["train_runtime"])
        b = min(b_runs, key=lambda r: r["train_runtime"])
        cfg = json.loads(cfg.read_text())["training"]
        pairs_done = (
            a.steps * cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"]
        )
        print(
            f"model {model.name}: {w['n_params']:,} parameters (with LoRA); {a.steps} DPO steps, "
            f"batch {cfg['per_device_train_batch_size']}x{cfg['gradient_accumulation_steps']}"
        )
        print(
            f"DPO wrapper: train {w['train_runtime']:.2f} s, process {w['wall']:.2f} s; "
            f"bare TRL: train {b['train_runtime']:.2f} s, process {b['wall']:.2f} s"
        )
        print(
            f"  overhead on training time: {w['train_runtime'] / b['train_runtime'] - 1:+.1%}; "
            f"on the whole process: {w['wall'] / b['wall'] - 1:+.1%} (target <= 5%)"
        )
        print(
            f"  pairs/s {pairs_done / w['train_runtime']:.1f}; tokens/s "
            f"{(w['num_tokens'] or 0) / w['train_runtime']:.0f}; peak RSS "
            f"{w['peak_rss_mb']:.0f} MB (bare {b['peak_rss_mb']:.0f} MB)"
            + (f"; peak GPU {w['peak_cuda_mb']:.0f} MB" if w.get("peak_cuda_mb") else "")
        )
        if w.get("peak_cuda_mb") and w["num_tokens"]:
            flops = 8 * w["n_params"] * w["num_tokens"] / w["train_runtime"]
            print(f"  MFU {flops / (a.peak_tflops * 1e12):.1%} (8*N FLOPs/token)")
        else:
            print("  MFU: n/a on CPU")
        g = wrapper(prepare(tmp, model, "grpo", max(a.steps // 4, 2), "grpo"))
        steps = max(a.steps // 4, 2)
        print(
            f"GRPO wrapper: {steps} steps in {g['train_runtime']:.2f} s: "
            f"{steps / g['train_runtime']:.2f} steps/s (4 generations of 32 tokens per prompt)"
        )


if __name__ == "__main__":
    main()
