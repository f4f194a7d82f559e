"""Training throughput and the wrapper's overhead, measured side by side in one run.

    python benchmarks/train_bench.py [--model DIR] [--steps 40] [--repeat 2] [--max-length 1024]

For SFT and KTO (the sample workspace's verdicts, step examples) and DPO (its pairs), each on
the same run config:
- Chambers' trainer (`python -m trainer run CONFIG`: checks, middle-out fitting, events,
  checkpoints, base-weight digests, manifest) against a bare TRL script (the same trainer class
  and LoRA on the same records, TRL's own truncation at the same max_length, nothing else),
  each in its own process, alternating, best of --repeat. Printed as ratios wrapper/bare on
  the training time TRL reports (train_runtime) and on the whole process (start to exit).
  Target: <= 1.05 on training time.
- examples/s, tokens/s and peak memory; steps/s for GRPO (wrapper only).
- Agent GRPO (`--agent`, on by default): the sample's environment file through TRL's
  `environment_factory`, Chambers' trainer (episode log, graders on structured episodes,
  checks, manifest) against a bare TRL script with the same environment class, graders,
  response template and config, in the same run: episodes per second and the ratio. On the
  pre-trained demo model (--agent-model, `tests/fixtures/tiny-qwen2-agent`), so the episodes
  really call the tools (the random model never does).
- On a GPU: model FLOPs utilisation, with about 8*N FLOPs per token for LoRA DPO/KTO with
  gradient checkpointing and the reference pass, 6*N for SFT (N = base parameters), against
  the GPU's dense bf16 peak (--peak-tflops, default 989 for an H100 SXM).
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
    import json, sys, time, resource, random
    t0 = time.time()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import trl
    from trainer.data import arrow_rows, load_jsonl, wrap_tokenizer
    cfg = json.load(open(sys.argv[1]))
    method, t = cfg["algorithm"], cfg["training"]
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    tok = AutoTokenizer.from_pretrained(cfg["base_model"], local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=dtype,
                                                 local_files_only=True)
    rows = load_jsonl(cfg["train_file"])
    if method == "sft":
        rows = [r for r in rows if r.get("label", True)]
    wrap_tokenizer(tok)  # arguments as JSON text through Arrow: any TRL user needs this
    data = arrow_rows(rows, method)
    if method == "kto":
        random.Random(t["seed"]).shuffle(data)
    common = dict(output_dir=sys.argv[2], learning_rate=t["learning_rate"],
                  max_steps=t["max_steps"], per_device_train_batch_size=t["per_device_train_batch_size"],
                  gradient_accumulation_steps=t["gradient_accumulation_steps"],
                  gradient_checkpointing=t["gradient_checkpointing"], logging_steps=t["logging_steps"],
                  save_strategy="no", report_to=[], seed=t["seed"], bf16=cuda, use_cpu=not cuda,
                  disable_tqdm=True, max_length=t["max_length"])
    Config, Trainer = {"sft": (trl.SFTConfig, trl.SFTTrainer), "kto": (trl.KTOConfig, trl.KTOTrainer),
                       "dpo": (trl.DPOConfig, trl.DPOTrainer)}[method]
    if method != "sft":
        common.update(beta=t["beta"], loss_type=t["loss_type"])
    tr = Trainer(model=model, args=Config(**common), train_dataset=Dataset.from_list(data),
                 processing_class=tok,
                 peft_config=LoraConfig(r=t["lora_r"], lora_alpha=t["lora_alpha"],
                                        lora_dropout=t["lora_dropout"],
                                        target_modules=t["lora_target_modules"], task_type="CAUSAL_LM"))
    out = tr.train()
    tokens = max((h.get("num_tokens") or 0 for h in tr.state.log_history), default=None)
    print("BARE " + json.dumps({"train_runtime": out.metrics["train_runtime"], "num_tokens": tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}))
""")


BARE_AGENT = textwrap.dedent("""
    import copy, json, sys, time, resource
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template
    from app.training.environment import environment_class
    from app.training.graders import grade_one
    from trainer.data import load_jsonl, to_arrow_messages, wrap_tokenizer
    cfg = json.load(open(sys.argv[1]))
    t = cfg["training"]
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    tok = AutoTokenizer.from_pretrained(cfg["base_model"], local_files_only=True)
    tok.response_template = copy.deepcopy(qwen3_template)  # the demo template's tool calls
    wrap_tokenizer(tok)
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=dtype,
                                                 local_files_only=True)
    data = [{"prompt": to_arrow_messages(r["prompt"]), "reference": json.dumps(r["reference"]),
             "task_key": r["task_key"]} for r in load_jsonl(cfg["train_file"])]
    def reward(g):
        def fn(prompts, completions, reference, **kw):
            return [grade_one(g["name"], g["path"], c, json.loads(r))
                    for c, r in zip(completions, reference)]
        fn.__name__ = g["name"]
        return fn
    n = t["num_generations"]  # the batch the wrapper uses: whole groups of generations
    args = GRPOConfig(output_dir=sys.argv[2], learning_rate=t["learning_rate"], max_steps=t["max_steps"],
                      per_device_train_batch_size=max(t["per_device_train_batch_size"] // n, 1) * n,
                      gradient_accumulation_steps=t["gradient_accumulation_steps"],
                      logging_steps=t["logging_steps"], save_strategy="no", report_to=[],
                      seed=t["seed"], bf16=cuda, use_cpu=not cuda, disable_tqdm=True,
                      num_generations=t["num_generations"],
                      max_completion_length=t["max_completion_length"], temperature=1.0,
                      beta=t["beta"], loss_type=t["loss_type"],
                      reward_weights=[g["weight"] for g in cfg["graders"]],
                      max_tool_calling_iterations=int(sys.argv[3]))
    tr = GRPOTrainer(model=model, reward_funcs=[reward(g) for g in cfg["graders"]], args=args,
                     train_dataset=Dataset.from_list(data), processing_class=tok,
                     environment_factory=environment_class(cfg["environment"]["path"]),
                     peft_config=LoraConfig(r=t["lora_r"], lora_alpha=t["lora_alpha"],
                                            lora_dropout=t["lora_dropout"],
                                            target_modules=t["lora_target_modules"],
                                            task_type="CAUSAL_LM"))
    out = tr.train()
    print("BARE " + json.dumps({"train_runtime": out.metrics["train_runtime"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def env() -> dict[str, str]:
    e = dict(
        os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false"
    )
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def prepare(
    tmp: Path,
    model: Path,
    algorithm: str,
    steps: int,
    name: str,
    max_length: int | None,
    environment: str | None = None,
) -> Path:
    from app.sample import build_sample
    from app.training import pairs, runs
    from app.training.examples import ExampleFilter, create_verdict_snapshot
    from app.workspace.db import open_workspace

    db = tmp / "bench.sqlite"
    fresh = not db.exists()
    ws = open_workspace(str(db))
    if fresh:
        build_sample(ws)
        with ws.session() as s:
            pairs.derive_pairs(s)
            pairs.create_snapshot(s, "bench", pairs.PairFilter(heldout=0.0))
            create_verdict_snapshot(s, "bench-verdicts", ExampleFilter(heldout=0.0))
    over = {"max_steps": steps, "save_steps": 10**6, "logging_steps": 5, "max_length": max_length}
    if algorithm == "grpo":
        over.update({"num_generations": 4, "max_completion_length": 128 if environment else 32})
    snapshot = "bench-verdicts" if algorithm in ("sft", "kto") else "bench"
    graders = runs.parse_graders(["match:1.0", "tools:0.5"]) if environment else None
    with ws.session() as s:
        run = runs.prepare_run(
            s,
            algorithm,
            snapshot,
            model,
            tmp / name,
            over,
            graders,
            name=name,
            force=True,
            environment=environment,
        )
        path = Path(run.run_dir) / "config.json"
    ws.close()
    return path


def _child_cpu() -> float:
    """CPU seconds used by finished child processes (less sensitive than wall time to other
    work on a shared machine)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrapper(config: Path) -> dict:
    t, cpu = time.time(), _child_cpu()
    subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(config)],
        env=env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall, cpu = time.time() - t, _child_cpu() - cpu
    events = [json.loads(x) for x in (config.parent / "events.jsonl").read_text().splitlines()]
    final = events[-1]
    assert final["event"] == "finished", final
    summary = [e for e in events if e["event"] == "log" and "train_runtime" in e["metrics"]][-1]
    logs = [e for e in events if e["event"] == "log" and e["metrics"].get("num_tokens")]
    return {
        "wall": wall,
        "cpu": cpu,
        "train_runtime": summary["metrics"]["train_runtime"],
        "num_tokens": logs[-1]["metrics"]["num_tokens"] if logs else None,
        "peak_rss_mb": final.get("peak_rss_mb"),
        "peak_cuda_mb": final.get("peak_cuda_mb"),
        "n_params": final.get("n_params"),
    }


def bare(config: Path, out: Path, script: str = BARE, *extra: str) -> dict:
    t, cpu = time.time(), _child_cpu()
    p = subprocess.run(
        [sys.executable, "-c", script, str(config), str(out), *extra],
        env=env(),
        check=True,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.time() - t, _child_cpu() - cpu
    line = next(x for x in p.stdout.splitlines() if x.startswith("BARE "))
    return {"wall": wall, "cpu": cpu, **json.loads(line[5:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "tests" / "fixtures" / "tiny-qwen2"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--methods", default="sft,kto,dpo")
    ap.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="tokens per example (default: from the data, as in the app)",
    )
    ap.add_argument("--grpo", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--agent", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--agent-model", default=str(ROOT / "tests" / "fixtures" / "tiny-qwen2-agent"))
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()
    model = Path(a.model).resolve()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for method in filter(None, a.methods.split(",")):
            bench_method(tmp, model, method, a)
        if a.grpo:
            steps = max(a.steps // 4, 2)
            g = wrapper(prepare(tmp, model, "grpo", steps, "grpo", a.max_length))
            print(
                f"GRPO wrapper: {steps} steps in {g['train_runtime']:.2f} s: "
                f"{steps / g['train_runtime']:.2f} steps/s (4 generations of 32 tokens per prompt)"
            )
        if a.agent:
            bench_agent(tmp, Path(a.agent_model).resolve(), max(a.steps // 4, 2), a)


def bench_agent(tmp: Path, model: Path, steps: int, a) -> None:
    """Agent GRPO with the sample's environment: wrapper and bare TRL, alternating."""
    from app.sample import SAMPLE_ENVIRONMENT
    from trainer.agent import MAX_TOOL_ITERATIONS

    w_runs, b_runs = [], []
    for i in range(a.repeat):
        cfg = prepare(tmp, model, "grpo", steps, f"agent{i}", None, str(SAMPLE_ENVIRONMENT))
        order = [0, 1] if i % 2 else [1, 0]
        for which in order:
            if which == 0:
                w_runs.append(wrapper(cfg))
            else:
                out = tmp / f"bare-agent{i}"
                b_runs.append(bare(cfg, out, BARE_AGENT, str(MAX_TOOL_ITERATIONS)))
    w = min(w_runs, key=lambda r: r["train_runtime"])
    b = min(b_runs, key=lambda r: r["train_runtime"])
    t = json.loads(cfg.read_text())["training"]
    n = t["num_generations"]
    batch = max(t["per_device_train_batch_size"] // n, 1) * n  # as the trainer sets it
    episodes = steps * batch * t["gradient_accumulation_steps"]
    print(
        f"Agent GRPO (sample environment, {t['num_generations']} generations of up to "
        f"{t['max_completion_length']} tokens): {steps} steps, {episodes} episodes"
    )
    print(
        f"  wrapper: {episodes / w['train_runtime']:.2f} episodes/s "
        f"(train {w['train_runtime']:.2f} s); bare TRL: {episodes / b['train_runtime']:.2f} "
        f"episodes/s (train {b['train_runtime']:.2f} s)"
    )
    _print_ratios(w, b)


def _print_ratios(w: dict, b: dict) -> None:
    """Wrapper against bare TRL: training time, whole process, CPU time."""
    print(
        f"  wrapper/bare: training time x{w['train_runtime'] / b['train_runtime']:.3f}, "
        f"whole process x{w['wall'] / b['wall']:.3f} (target <= 1.05 on training time)"
    )
    print(
        f"  CPU time of the whole process: wrapper {w['cpu']:.1f} s, bare {b['cpu']:.1f} s, "
        f"x{w['cpu'] / b['cpu']:.3f} (steadier than wall time on a shared machine)"
    )


def bench_method(tmp: Path, model: Path, method: str, a) -> None:
    """Wrapper and bare TRL on the same run config, alternating; best of --repeat each."""
    w_runs, b_runs = [], []
    for i in range(a.repeat):  # alternating which goes first: neither always gets a cold cache
        cfg = prepare(tmp, model, method, a.steps, f"{method}{i}", a.max_length)
        if i % 2:
            w_runs.append(wrapper(cfg))
            b_runs.append(bare(cfg, tmp / f"bare-{method}{i}"))
        else:
            b_runs.append(bare(cfg, tmp / f"bare-{method}{i}"))
            w_runs.append(wrapper(cfg))
    w = min(w_runs, key=lambda r: r["train_runtime"])
    b = min(b_runs, key=lambda r: r["train_runtime"])
    t = json.loads(cfg.read_text())["training"]
    per_step = t["per_device_train_batch_size"] * t["gradient_accumulation_steps"]
    name = method.upper()
    print(
        f"{name}: model {model.name}, {w['n_params']:,} parameters (with LoRA); {a.steps} "
        f"steps, batch {t['per_device_train_batch_size']}x{t['gradient_accumulation_steps']}"
    )
    print(
        f"  wrapper: train {w['train_runtime']:.2f} s, process {w['wall']:.2f} s; bare TRL: "
        f"train {b['train_runtime']:.2f} s, process {b['wall']:.2f} s"
    )
    _print_ratios(w, b)
    print(
        f"  examples/s {a.steps * per_step / w['train_runtime']:.1f}; tokens/s "
        f"{(w['num_tokens'] or 0) / w['train_runtime']:.0f} (tokens trained: wrapper "
        f"{w['num_tokens']}, bare {b['num_tokens']}); peak RSS "
        f"{w['peak_rss_mb']:.0f} MB (bare {b['peak_rss_mb']:.0f} MB)"
        + (
            f"; peak GPU {w['peak_cuda_mb']:.0f} MB (bare {b['peak_cuda_mb']:.0f} MB)"
            if w.get("peak_cuda_mb")
            else ""
        )
    )
    if w.get("peak_cuda_mb") and w["num_tokens"]:
        flops = (8 if method != "sft" else 6) * w["n_params"] * w["num_tokens"] / w["train_runtime"]
        print(
            f"  MFU {flops / (a.peak_tflops * 1e12):.1%} ({8 if method != 'sft' else 6}*N "
            "FLOPs/token)"
        )


if __name__ == "__main__":
    main()
