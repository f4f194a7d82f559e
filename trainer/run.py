"""One training run: DPO or GRPO with a LoRA adapter, via TRL, reporting JSON-lines events.

Events (one JSON object per line, in run_dir/events.jsonl and on stdout):
    start       config, library versions, device
    log         step, max_steps, epoch, metrics, elapsed_s, eta_s
    evaluate    step, metrics
    checkpoint  step, path
    finished    adapter_dir, manifest, metrics          (exit 0)
    failed      error                                   (exit 1)
    cancelled   step, checkpoint                        (exit 0; SIGTERM or SIGINT)
"""

from __future__ import annotations

import hashlib
import json
import platform
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.training.runs import file_sha256 as sha256_file  # one hashing routine for trainer and app


class Events:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def emit(self, event: str, **data: Any) -> dict[str, Any]:
        rec = {"event": event, "time": datetime.now(UTC).isoformat(), **data}
        line = json.dumps(rec, default=_jsonable, ensure_ascii=False)
        self.fh.write(line + "\n")
        self.fh.flush()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return rec


def _jsonable(x: Any) -> Any:
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


class Cancel:
    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(_sig, _frame):
            cls.requested = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def base_model_hashes(model_dir: Path) -> dict[str, str]:
    """config.json and the weights index (sharded), or the single weights file (< 2 GB; else
    its safetensors header, which lists every tensor's name, shape and offsets)."""
    out = {"config.json": sha256_file(model_dir / "config.json")}
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (model_dir / index).exists():
            out[index] = sha256_file(model_dir / index)
            return out
    single = model_dir / "model.safetensors"
    if single.exists():
        if single.stat().st_size < 2 << 30:
            out["model.safetensors"] = sha256_file(single)
        else:
            with open(single, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                out["model.safetensors#header"] = hashlib.sha256(f.read(n)).hexdigest()
    return out


def versions() -> dict[str, str]:
    import peft
    import torch
    import transformers
    import trl

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
    }


def _load_jsonl(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}: line {n}: not JSON ({exc})") from None
    return rows


def _flat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Arrow needs one schema: tool-call arguments become JSON strings (the chat template
    renders them verbatim), absent keys become explicit."""
    out = []
    for m in messages:
        calls = [
            {
                "type": "function",
                "id": c.get("id", ""),
                "function": {
                    "name": c["function"]["name"],
                    "arguments": c["function"]["arguments"]
                    if isinstance(c["function"]["arguments"], str)
                    else json.dumps(c["function"]["arguments"]),
                },
            }
            for c in m.get("tool_calls") or []
        ]
        msg = {"role": m["role"], "content": m.get("content") or ""}
        if calls:
            msg["tool_calls"] = calls
        if m.get("tool_call_id"):
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def _final_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "assistant" and (m.get("content") or "").strip():
            return m["content"]
    return ""


class _Tracker:
    def __init__(self, events: Events):
        self.events = events
        self.history: list[dict[str, Any]] = []
        self.t0 = time.time()


def make_callback(tracker: _Tracker):
    from transformers import TrainerCallback

    class EventCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            logs = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if not logs:
                return
            elapsed = time.time() - tracker.t0
            step, total = state.global_step, state.max_steps
            eta = elapsed / step * (total - step) if step and total else None
            if any(k.startswith("eval_") for k in logs):
                tracker.events.emit("evaluate", step=step, metrics=logs)
            else:
                rec = {"step": step, **logs}
                tracker.history.append(rec)
                tracker.events.emit(
                    "log",
                    step=step,
                    max_steps=total,
                    epoch=state.epoch,
                    metrics=logs,
                    elapsed_s=round(elapsed, 2),
                    eta_s=None if eta is None else round(eta, 1),
                )

        def on_save(self, args, state, control, **kw):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            tracker.events.emit("checkpoint", step=state.global_step, path=str(path))

        def on_step_end(self, args, state, control, **kw):
            if Cancel.requested:
                control.should_save = True
                control.should_training_stop = True

    return EventCallback()


def main(config_path: str) -> int:
    cfg_path = Path(config_path)
    config = json.loads(cfg_path.read_text())
    run_dir = Path(config["run_dir"])
    events = Events(run_dir / "events.jsonl")
    Cancel.install()
    try:
        return _run(config, run_dir, events)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as an event
        msg = f"{type(exc).__name__}: {exc}"
        if "out of memory" in str(exc).lower():
            msg = f"out of memory: {exc}"
        traceback.print_exc(file=sys.stderr)
        events.emit("failed", error=msg.splitlines()[0][:2000])
        return 1


def _run(config: dict[str, Any], run_dir: Path, events: Events) -> int:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    algorithm = config["algorithm"]
    t = dict(config["training"])
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    events.emit("start", config=config, versions=versions(), device=device)
    base = Path(config["base_model"])
    if config.get("fail_for_test"):  # the crash path, exercised by the tests
        raise RuntimeError(config["fail_for_test"])
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, local_files_only=True)
    base_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    lora = LoraConfig(
        r=t["lora_r"],
        lora_alpha=t["lora_alpha"],
        lora_dropout=t["lora_dropout"],
        target_modules=t["lora_target_modules"],
        task_type="CAUSAL_LM",
    )
    train_rows = _load_jsonl(config["train_file"])
    eval_rows = _load_jsonl(config.get("eval_file"))
    common = dict(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=t["learning_rate"],
        num_train_epochs=t["num_train_epochs"],
        max_steps=t.get("max_steps", -1),
        per_device_train_batch_size=t["per_device_train_batch_size"],
        gradient_accumulation_steps=t["gradient_accumulation_steps"],
        gradient_checkpointing=t["gradient_checkpointing"],
        logging_steps=t["logging_steps"],
        save_steps=t["save_steps"],
        save_strategy="steps",
        report_to=[],
        seed=t["seed"],
        bf16=dtype == torch.bfloat16,
        use_cpu=not cuda,
        disable_tqdm=True,
        dataloader_num_workers=0,
        beta=t["beta"],
        loss_type=t["loss_type"],
    )
    tracker = _Tracker(events)
    callback = make_callback(tracker)
    if algorithm == "dpo":
        from trl import DPOConfig, DPOTrainer

        def rows(data):
            return Dataset.from_list(
                [
                    {
                        "prompt": _flat_messages(r["prompt"]),
                        "chosen": _flat_messages(r["chosen"]),
                        "rejected": _flat_messages(r["rejected"]),
                    }
                    for r in data
                ]
            )

        eval_ds = rows(eval_rows) if eval_rows else None
        args = DPOConfig(
            max_length=t["max_length"],
            per_device_eval_batch_size=2,
            eval_strategy="steps" if eval_ds is not None else "no",
            eval_steps=t.get("eval_steps", max(t["save_steps"], 1)),
            **common,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=rows(train_rows),
            eval_dataset=eval_ds,
            processing_class=tok,
            peft_config=lora,
            callbacks=[callback],
        )
    else:
        from trl import GRPOConfig, GRPOTrainer

        from app.training.graders import grade_one

        graders = config["graders"]
        seen, data = set(), []
        for r in train_rows:
            prompt = _flat_messages(r["prompt"])
            key = json.dumps(prompt, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            calls = [c["function"]["name"] for m in r["chosen"] for c in m.get("tool_calls") or []]
            data.append(
                {
                    "prompt": prompt,
                    "reference": json.dumps(
                        {"answer": _final_text(r["chosen"]), "tool_calls": calls}
                    ),
                }
            )

        def reward_fn(g):
            def fn(prompts, completions, reference, **_kw):
                return [
                    grade_one(g["name"], g["path"], c, json.loads(ref))
                    for c, ref in zip(completions, reference, strict=True)
                ]

            fn.__name__ = g["name"]
            return fn

        n_gen = t["num_generations"]
        batch = max(t["per_device_train_batch_size"] // n_gen, 1) * n_gen
        common["per_device_train_batch_size"] = batch
        args = GRPOConfig(
            num_generations=n_gen,
            max_completion_length=t["max_completion_length"],
            reward_weights=[g["weight"] for g in graders],
            temperature=1.0,
            **common,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[reward_fn(g) for g in graders],
            args=args,
            train_dataset=Dataset.from_list(data),
            processing_class=tok,
            peft_config=lora,
            callbacks=[callback],
        )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # the events are the log; no dict prints
    trainer.remove_callback(ProgressCallback)
    events.emit(
        "train_begin",
        n_train=len(train_rows),
        n_eval=len(eval_rows),
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    )
    tracker.t0 = time.time()
    trainer.train()
    if Cancel.requested:
        ckpts = sorted(
            (run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])
        )
        events.emit(
            "cancelled",
            step=trainer.state.global_step,
            checkpoint=str(ckpts[-1]) if ckpts else None,
        )
        return 0
    adapter_dir = run_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    # LoRA trains only the adapter: check the base weights did not move.
    merged_base = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in trainer.model.state_dict().items()
        if "lora_" not in k
    }
    changed = [
        k
        for k, v in base_before.items()
        if k in merged_base and not torch.equal(v, merged_base[k].to(v.device))
    ]
    manifest = write_manifest(config, run_dir, adapter_dir, tracker.history, changed)
    import resource

    peak = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if cuda:
        peak["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    events.emit(
        "finished",
        adapter_dir=str(adapter_dir),
        manifest=str(manifest),
        step=trainer.state.global_step,
        n_params=sum(p.numel() for p in trainer.model.parameters()),
        **peak,
        metrics=tracker.history[-1] if tracker.history else {},
    )
    return 0


def write_manifest(config, run_dir: Path, adapter_dir: Path, history, changed_base) -> Path:
    files = [
        run_dir / "config.json",
        *sorted((run_dir / "data").glob("*.jsonl")),
        *sorted(p for p in adapter_dir.rglob("*") if p.is_file()),
    ]
    manifest = {
        "format": "chambers-run-manifest/1",
        "name": config["name"],
        "algorithm": config["algorithm"],
        "created_at": datetime.now(UTC).isoformat(),
        "base_model": {
            "path": config["base_model"],
            "sha256": base_model_hashes(Path(config["base_model"])),
        },
        "snapshot": config["snapshot"],
        "rubric_version_ids": config.get("rubric_version_ids", []),
        "review_ids": config.get("review_ids", []),
        "graders": config.get("graders", []),
        "grader_check": config.get("grader_check"),
        "config": config["training"],
        "versions": versions(),
        "metrics": history,
        "base_weights_unchanged": not changed_base,
        "artifacts": {
            "adapter_dir": str(adapter_dir),
            "sha256": {str(p.relative_to(run_dir)): sha256_file(p) for p in files},
        },
    }
    path = run_dir / "manifest.json"
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(manifest, indent=2, default=_jsonable))
    tmp.replace(path)
    return path
