"""One evaluation: each model continues every task's prompt (the next assistant turn), with the
same decoding settings and seed; outputs are parsed into the app's structured form and graded.

Events (JSON lines, in eval_dir/events.jsonl and on stdout):
    start      config, library versions, device
    progress   side, done, total
    finished   outputs, throughput {side: outputs_per_s, tokens_per_s}   (exit 0)
    failed     error                                                     (exit 1)
    cancelled  side, done                                                (exit 0; SIGTERM/SIGINT)

Throughput counts generation, parsing, grading and writing each output; prompts are rendered
and tokenised before the clock starts, after one warm-up generation (benchmarks/eval_bench.py
times plain `generate` the same way).

Reproducible: item i is generated after torch.manual_seed(seed + i), for both models, so the
same config gives the same outputs whatever ran before.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from app.training.graders import GraderSpec, combined
from app.training.toolcalls import parse_output
from trainer.data import load_jsonl
from trainer.run import Cancel, Events, versions


def load_model(spec: dict[str, Any], device: str):
    """A base model, or base + LoRA adapter (peft), in eval mode; and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec["base"], local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cuda = device != "cpu"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=dtype, local_files_only=True)
    if spec.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec["adapter"])
    return model.to(device).eval(), tok


def chat_messages(prompt: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content never None (templates concatenate it)."""
    return [{**m, "content": m.get("content") or ""} for m in prompt]


def encode(tok, task: dict[str, Any]):
    text = tok.apply_chat_template(
        chat_messages(task["prompt"]),
        tools=task.get("tools") or None,
        add_generation_prompt=True,
        tokenize=False,
    )
    return tok(text, return_tensors="pt", add_special_tokens=False)


def generation_kwargs(decoding: dict[str, Any], tok) -> dict[str, Any]:
    sample = float(decoding.get("temperature", 0.0)) > 0
    kw: dict[str, Any] = {
        "max_new_tokens": int(decoding["max_new_tokens"]),
        "do_sample": sample,
        "pad_token_id": tok.pad_token_id,
    }
    if sample:
        kw.update(temperature=float(decoding["temperature"]), top_p=float(decoding["top_p"]))
    else:
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw


def warm_up(model, enc, kw: dict[str, Any]) -> None:
    """One short generation before the clock starts: the first call on a fresh model pays for
    CUDA context, cuBLAS handles and allocator growth, which is not the model's throughput."""
    import torch

    with torch.no_grad():
        model.generate(**enc, **{**kw, "max_new_tokens": 2})
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def generate_one(model, tok, enc, kw: dict[str, Any], seed: int):
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, **kw)
    new = out[0, enc["input_ids"].shape[1] :]
    return tok.decode(new, skip_special_tokens=True), int(new.shape[0])


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    events = Events(Path(config["eval_dir"]) / "events.jsonl")
    Cancel.install()
    try:
        return _evaluate(config, events)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as an event
        traceback.print_exc(file=sys.stderr)
        events.emit("failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:2000])
        return 1


def _evaluate(config: dict[str, Any], events: Events) -> int:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    events.emit(
        "start", config=config, versions=versions(("torch", "transformers", "peft")), device=device
    )
    tasks = load_jsonl(config["tasks_file"])
    graders = [GraderSpec(g["name"], g["weight"], g.get("path")) for g in config["graders"]]
    dec, seed = config["decoding"], int(config["seed"])
    out_path = Path(config["eval_dir"]) / "outputs.jsonl"
    part = out_path.with_suffix(".part")
    throughput: dict[str, Any] = {}
    with open(part, "w", encoding="utf-8") as fh:
        for side in ("baseline", "candidate"):
            model, tok = load_model(config["models"][side], device)
            kw = generation_kwargs(dec, tok)
            encoded = [encode(tok, task).to(device) for task in tasks]
            if encoded:
                warm_up(model, encoded[0], kw)
            t0, n_tok = time.perf_counter(), 0
            for done, (task, enc) in enumerate(zip(tasks, encoded, strict=True), 1):
                if Cancel.requested:
                    events.emit("cancelled", side=side, done=done - 1)
                    return 0
                item_seed = seed + int(task["position"])
                text, n = generate_one(model, tok, enc, kw, item_seed)
                n_tok += n
                parsed = parse_output(text)
                score, parts = combined(graders, parsed.chat(), task["reference"])
                rec = {
                    "position": task["position"],
                    "side": side,
                    "model": config["models"][side]["name"],
                    "text": text,
                    "message": parsed.message,
                    "valid": parsed.valid,
                    "error": parsed.error,
                    "scores": parts,
                    "score": score,
                    "decoding": dec,
                    "seed": item_seed,
                    "n_tokens": n,
                }
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                events.emit("progress", side=side, done=done, total=len(tasks))
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            throughput[side] = {
                "outputs_per_s": round(len(tasks) / dt, 3) if dt else None,
                "tokens_per_s": round(n_tok / dt, 1) if dt else None,
                "seconds": round(dt, 3),
                "tokens": n_tok,
            }
            del model, encoded
            if device == "cuda":
                torch.cuda.empty_cache()
    part.replace(out_path)
    events.emit("finished", outputs=str(out_path), n=len(tasks), throughput=throughput)
    return 0
