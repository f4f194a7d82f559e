"""One training run: SFT, KTO, DPO or GRPO with a LoRA adapter, via TRL, reporting JSON-lines
events.

Events (one JSON object per line, in run_dir/events.jsonl and on stdout; rank 0 only):
    start       config, library versions, device, world_size, resume_from
    data        how the data was fitted to max_length: shortened and dropped examples, why
    train_begin n_train, n_eval, trainable_params
    log         step, max_steps, epoch, metrics, elapsed_s, eta_s (metrics include obs_ce and
                echo_loss: trainer.echo)
    evaluate    step, metrics
    watch       GRPO: step, n, reward_mean, rewards, kl, completion_length, copy_share, obs_ce
                on held-out prompts (trainer.watch; episodes in run_dir/episodes.jsonl)
    alert       step, kind ("reward_hacking"), message, signals (trainer.watch.AlertRule)
    checkpoint  step, path
    finished    adapter_dir, manifest, metrics          (exit 0)
    failed      error                                   (exit 1)
    cancelled   step, checkpoint                        (exit 0; SIGTERM or SIGINT)

Nothing here loads SQLAlchemy (tests/test_trainer.py checks): the configuration is the typed
`app.training.config.TrainConfig`, hashes come from `app.training.manifest`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import platform
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.training.config import TrainConfig, memory_cap, model_max_positions
from app.training.graders import reference_from
from app.training.manifest import base_model_hashes, file_sha256, last_checkpoint
from app.workspace.paths import write_atomic
from trainer.data import (
    COMPLETION_KEYS,
    DataError,
    arrow_rows,
    check_records,
    fit_records,
    load_jsonl,
    to_arrow_messages,
    wrap_tokenizer,
)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class Events:
    """events.jsonl and stdout; only rank 0 writes, so a multi-GPU run logs each event once."""

    def __init__(self, path: Path):
        self.path = path
        self.enabled = rank() == 0
        self.fh = None
        if self.enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def emit(self, event: str, **data: Any) -> dict[str, Any]:
        rec = {"event": event, "time": datetime.now(UTC).isoformat(), **data}
        if not self.enabled:
            return rec
        line = json.dumps(rec, default=_jsonable, ensure_ascii=False)
        try:
            self.fh.write(line + "\n")
            self.fh.flush()
        except OSError as exc:  # a full disk: say so where it can still be read
            sys.stderr.write(f"cannot write {self.path}: {exc}\n{line}\n")
        try:  # stdout is a log file, never a pipe that a dead launcher could close
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
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


def versions(
    libraries: tuple[str, ...] = ("torch", "transformers", "peft", "trl"),
) -> dict[str, str]:
    """The Python and library versions behind a run (or an evaluation, which needs no TRL)."""
    import importlib

    return {
        "python": platform.python_version(),
        **{name: importlib.import_module(name).__version__ for name in libraries},
    }


def base_key(name: str) -> str:
    """A PEFT-wrapped parameter's name as in the base model."""
    return name.replace("base_model.model.", "").replace(".base_layer", "")


def tensor_digests(model) -> dict[str, str]:
    """sha256 of every base (non-LoRA) tensor, one tensor at a time: the check that LoRA left
    the base weights alone costs one tensor of host memory, not a copy of the model."""
    import torch

    out = {}
    for name, t in model.state_dict().items():
        if "lora_" in name:
            continue
        flat = t.detach().contiguous().reshape(-1)
        raw = flat.view(torch.uint8) if flat.dtype != torch.uint8 else flat
        h = hashlib.sha256(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(memoryview(raw.cpu().numpy()))
        out[base_key(name)] = h.hexdigest()
    return out


class _Tracker:
    def __init__(self, events: Events, history: list[dict[str, Any]] | None = None):
        self.events = events
        self.history: list[dict[str, Any]] = history or []
        self.t0 = time.time()
        self.first_step = 0


def make_callback(tracker: _Tracker):
    from transformers import TrainerCallback

    class EventCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            tracker.first_step = state.global_step  # a resumed run starts past 0

        def on_log(self, args, state, control, logs=None, **kw):
            logs = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if not logs:
                return
            elapsed = time.time() - tracker.t0
            step, total = state.global_step, state.max_steps
            done = step - tracker.first_step
            eta = elapsed / done * (total - step) if done > 0 and total else None
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
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    run_dir = Path(config["run_dir"])
    events = Events(run_dir / "events.jsonl")
    Cancel.install()
    try:
        return _run(config, run_dir, events)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as an event
        msg = describe_error(exc, run_dir)
        if not isinstance(exc, DataError):
            traceback.print_exc(file=sys.stderr)
        if disk_full(exc):
            remove_partial_files(run_dir)
        events.emit("failed", error=msg.splitlines()[0][:2000])
        return 1


def disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left on device" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def describe_error(exc: BaseException, run_dir: Path) -> str:
    if disk_full(exc):
        try:
            import shutil

            free = f" ({shutil.disk_usage(run_dir).free // 2**20} MB free)"
        except OSError:
            free = ""
        return (
            f"the disk is full: no space left on the device holding {run_dir}{free}; "
            "free some space, then resume the run from its last checkpoint"
        )
    if "out of memory" in str(exc).lower():
        return f"out of memory: {exc}"
    if isinstance(exc, DataError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def remove_partial_files(run_dir: Path) -> None:
    """What a failed write left behind: *.part files and half-written checkpoints."""
    import shutil

    for p in run_dir.rglob("*.part"):
        p.unlink(missing_ok=True)
    for p in (run_dir / "checkpoints").glob("tmp-checkpoint-*"):
        shutil.rmtree(p, ignore_errors=True)


def _check_data_files(config: dict[str, Any]) -> None:
    """The run's data is what was prepared (a resume reads the same examples)."""
    snap = config.get("snapshot") or {}
    for key, sha_key in (("train_file", "train_sha256"), ("eval_file", "heldout_sha256")):
        path = config.get(key)
        if path and snap.get(sha_key) and file_sha256(Path(path)) != snap[sha_key]:
            raise DataError(
                f"{path}: changed since the run was prepared (sha256 differs from config.json)"
            )


def _previous_history(run_dir: Path) -> list[dict[str, Any]]:
    """A resumed run's metrics so far (the manifest keeps the whole history)."""
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "log" and "train_runtime" not in e.get("metrics", {}):
            out.append({"step": e["step"], **e["metrics"]})
    return out


def _fit(tok, config, method, cfg, rows, eval_rows, events):
    """Shorten prompts from the middle to fit max_length (derived from the data if unset)."""
    base = Path(config["base_model"])
    window = model_max_positions(base) or 10**9
    cap = min(window, memory_cap(int(config.get("n_params") or 0)))
    rows, report = fit_records(tok, rows, method, cfg.max_length, cfg.length_percentile, cap)
    eval_rows, eval_report = fit_records(tok, eval_rows, method, report.max_length, 100, cap)
    data = {"train": report.as_dict(), "eval": eval_report.as_dict() if eval_rows else None}
    events.emit("data", **data)
    if not rows:
        reasons = ", ".join(f"{n} {k}" for k, n in report.dropped.items())
        raise DataError(
            f"{config['train_file']}: every example was dropped at max_length "
            f"{report.max_length} ({reasons}); raise max_length"
        )
    return rows, eval_rows, data


def _run(config: dict[str, Any], run_dir: Path, events: Events) -> int:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    method = config["algorithm"]
    cfg = TrainConfig.from_dict(config["training"], "config.json: training").resolved()
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    resume_from = config.get("resume_from")
    history = _previous_history(run_dir) if resume_from else []
    events.emit(
        "start",
        config=config,
        versions=versions(),
        device=device,
        world_size=world_size(),
        resume_from=resume_from,
    )
    base = Path(config["base_model"])
    if config.get("fail_for_test"):  # the crash path, exercised by the tests
        raise RuntimeError(config["fail_for_test"])
    _check_data_files(config)
    rows = load_jsonl(config["train_file"])
    eval_rows = load_jsonl(config.get("eval_file"))
    if not config.get("environment"):  # agent tasks are checked in trainer.agent
        check_records(rows, method, config["train_file"])
        check_records(eval_rows, method, str(config.get("eval_file")))
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, local_files_only=True)
    before = tensor_digests(model)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules,
        task_type="CAUSAL_LM",
    )
    fit_info = None
    if method != "grpo":
        rows, eval_rows, fit_info = _fit(tok, config, method, cfg, rows, eval_rows, events)
    common = dict(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_strategy="steps",
        save_total_limit=cfg.save_total_limit,
        report_to=[],
        seed=cfg.seed,
        bf16=dtype == torch.bfloat16,
        use_cpu=not cuda,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    tracker = _Tracker(events, history)
    callback = make_callback(tracker)
    trainer, extra = build_trainer(
        method, model, tok, lora, cfg, common, rows, eval_rows, config, callback, Dataset
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # the events are the log; no dict prints
    trainer.remove_callback(ProgressCallback)
    if method == "grpo":
        from trainer.watch import add_watch

        add_watch(trainer, cfg, run_dir, events.emit)
    events.emit(
        "train_begin",
        n_train=len(rows),
        n_eval=len(eval_rows),
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        **extra,
    )
    tracker.t0 = time.time()
    trainer.train(resume_from_checkpoint=resume_from)
    if Cancel.requested:
        ckpt = last_checkpoint(run_dir)
        events.emit(
            "cancelled", step=trainer.state.global_step, checkpoint=str(ckpt) if ckpt else None
        )
        return 0
    if not trainer.is_world_process_zero():
        return 0  # rank 0 writes the adapter and the manifest
    adapter_dir = run_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    after = tensor_digests(trainer.model)
    changed = sorted(k for k, v in before.items() if k in after and after[k] != v)
    compared = sum(1 for k in before if k in after)
    manifest = write_manifest(
        config, run_dir, adapter_dir, tracker.history, changed, compared, fit_info, extra
    )
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


def kto_weights(rows: list[dict[str, Any]], cfg: TrainConfig) -> tuple[float, float]:
    """Desirable and undesirable weights: as set, else the ones that make both classes weigh
    the same (KTO paper, eq. 8: lambda_D n_D / lambda_U n_U in [1, 4/3])."""
    n_d = sum(1 for r in rows if r["label"])
    n_u = len(rows) - n_d
    if cfg.desirable_weight is not None or cfg.undesirable_weight is not None:
        return cfg.desirable_weight or 1.0, cfg.undesirable_weight or 1.0
    if not n_d or not n_u:
        return 1.0, 1.0
    # rounded to 4 places in the direction that keeps the ratio at 1 or above
    if n_d > n_u:
        return math.ceil(n_u / n_d * 1e4) / 1e4, 1.0
    return 1.0, max(math.floor(n_d / n_u * 1e4) / 1e4, 1e-4)


def build_trainer(
    method, model, tok, lora, cfg, common, rows, eval_rows, config, callback, Dataset
):  # noqa: N803 - the datasets class, imported late
    """The TRL trainer for this method, on the fitted records (Arrow form, see trainer.data)."""
    import random

    evaluating = bool(eval_rows)
    eval_kw = dict(
        eval_strategy="steps" if evaluating else "no",
        eval_steps=cfg.eval_steps,
        per_device_eval_batch_size=2,
    )
    extra: dict[str, Any] = {}
    if method != "grpo":
        wrap_tokenizer(tok)
        train_ds = Dataset.from_list(arrow_rows(rows, method))
        eval_ds = Dataset.from_list(arrow_rows(eval_rows, method)) if evaluating else None

    def make(trainer_cls, args, **kw):
        """What every method's trainer takes: the model, the data, the tokenizer, LoRA."""
        return trainer_cls(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tok,
            peft_config=lora,
            callbacks=[callback],
            **kw,
        )

    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        from trainer.echo import echo_trainer

        # prompt-completion records: only the completion (the assistant step) is in the loss
        # (and, with echo_lambda > 0, the prompt's tool results through ECHO: trainer.echo)
        args = SFTConfig(
            max_length=None, completion_only_loss=True, loss_type=cfg.loss_type, **eval_kw, **common
        )
        trainer = make(echo_trainer(SFTTrainer), args, echo_lambda=cfg.echo_lambda)
    elif method == "kto":
        from trl import KTOConfig, KTOTrainer

        # KTO estimates its KL term from the neighbours in a batch (sequential sampling):
        # shuffled once here, seeded, so a batch mixes labels and tasks
        order = list(range(len(train_ds)))
        random.Random(cfg.seed).shuffle(order)
        train_ds = train_ds.select(order)
        d_w, u_w = kto_weights(rows, cfg)
        extra = {
            "desirable": sum(1 for r in rows if r["label"]),
            "undesirable": sum(1 for r in rows if not r["label"]),
            "desirable_weight": d_w,
            "undesirable_weight": u_w,
        }
        args = KTOConfig(
            max_length=None,
            beta=cfg.beta,
            loss_type=cfg.loss_type,
            desirable_weight=d_w,
            undesirable_weight=u_w,
            **eval_kw,
            **common,
        )
        trainer = make(KTOTrainer, args)
    elif method == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(
            max_length=None, beta=cfg.beta, loss_type=cfg.loss_type, **eval_kw, **common
        )
        trainer = make(DPOTrainer, args)
    else:
        trainer, extra = _grpo_trainer(
            model, tok, lora, cfg, common, rows, eval_rows, config, callback, Dataset
        )
    return trainer, extra


def _grpo_trainer(
    model, tok, lora, cfg, common, rows, eval_rows, config, callback, Dataset, trainer_class=None
):  # noqa: N803
    """GRPOTrainer with ECHO (or `trainer_class`, a GRPOTrainer subclass) on the pairs' prompts,
    or on agent tasks with the run's environment (trainer.agent); the held-out prompts are its
    eval dataset, what the reward-hacking watch generates on (trainer.watch). Returns the
    trainer and what the run records."""
    from trl import GRPOConfig, GRPOTrainer

    from trainer.echo import echo_trainer

    graders = config["graders"]
    trainer_kw: dict[str, Any] = {}
    args_kw: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if config.get("environment"):
        from trainer.agent import agent_inputs, dataset_rows

        data, reward_funcs, trainer_kw, args_kw, extra, episodes = agent_inputs(
            config, tok, rows, cfg, Path(config["run_dir"])
        )
        heldout = dataset_rows(eval_rows)
    else:
        data, reward_funcs = _pair_inputs(rows, graders)
        heldout = _grpo_rows(eval_rows)
        episodes = None
        extra = {"tool_call_parser": _pair_tool_parsing(tok)}
    wrap_tokenizer(tok)
    n_gen = cfg.num_generations
    common = {
        **common,
        "per_device_train_batch_size": max(cfg.per_device_train_batch_size // n_gen, 1) * n_gen,
    }
    args = GRPOConfig(
        num_generations=n_gen,
        max_completion_length=cfg.max_completion_length,
        reward_weights=[g["weight"] for g in graders],
        temperature=1.0,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        **args_kw,
        **common,
    )
    trainer = echo_trainer(trainer_class or GRPOTrainer)(
        echo_lambda=cfg.echo_lambda,
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_list(data),
        eval_dataset=Dataset.from_list(heldout) if heldout else None,
        processing_class=tok,
        peft_config=lora,
        callbacks=[callback],
        **trainer_kw,
    )
    trainer.episode_log = episodes  # trainer.agent.EpisodeLog: the training episodes
    return trainer, extra


def _grpo_rows(rows):
    """One row per distinct prompt, with its reference (JSON text: one Arrow schema)."""
    seen, data = set(), []
    for r in rows:
        key = json.dumps(r["prompt"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        data.append(
            {
                "prompt": to_arrow_messages(r["prompt"]),
                "reference": json.dumps(reference_from(r["chosen"])),
            }
        )
    return data


def _pair_tool_parsing(tok) -> str | None:
    """The pairs' GRPO parses tool calls as agent GRPO does, where the chat template's form is
    known (TRL then hands graders messages with structured calls, not text with the call's
    special tokens stripped); None, and text completions, for a form it cannot parse."""
    from trainer.agent import enable_tool_parsing

    try:
        return enable_tool_parsing(tok)
    except DataError:
        return None


def _pair_inputs(rows, graders):
    """The pairs' distinct prompts with their reference, and one reward function per grader;
    a grader gets the completion as chat messages with parsed tool calls (arguments as
    objects) when the tokenizer parses them."""
    from app.training.graders import grade_one
    from trainer.agent import episode_messages

    def reward_fn(g):
        def fn(prompts, completions, reference, **_kw):
            return [
                grade_one(
                    g["name"],
                    g["path"],
                    episode_messages(c) if isinstance(c, list) else c,
                    json.loads(ref),
                )
                for c, ref in zip(completions, reference, strict=True)
            ]

        fn.__name__ = g["name"]
        return fn

    return _grpo_rows(rows), [reward_fn(g) for g in graders]


def write_manifest(
    config, run_dir: Path, adapter_dir: Path, history, changed_base, compared, fit_info, extra
) -> Path:
    files = [
        run_dir / "config.json",
        *sorted((run_dir / "data").glob("*.jsonl")),
        *([run_dir / "environment.py"] if (run_dir / "environment.py").is_file() else []),
        *sorted(p for p in adapter_dir.rglob("*") if p.is_file()),
    ]
    manifest = {
        "format": "chambers-run-manifest/2",
        "name": config["name"],
        "algorithm": config["algorithm"],
        "created_at": datetime.now(UTC).isoformat(),
        "base_model": {
            "path": config["base_model"],
            "sha256": base_model_hashes(Path(config["base_model"])),
        },
        "snapshot": config["snapshot"],
        "data": {**(config.get("data") or {}), "fit": fit_info, **extra},
        "rubric_version_ids": config.get("rubric_version_ids", []),
        "review_ids": config.get("review_ids", []),
        "graders": config.get("graders", []),
        "grader_check": config.get("grader_check"),
        "environment": config.get("environment"),
        "config": config["training"],
        "echo_lambda": config["training"].get("echo_lambda", 0.0),
        "resumed_from": config.get("resume_from"),
        "world_size": world_size(),
        "versions": versions(),
        "metrics": history,
        "base_weights_unchanged": not changed_base and compared > 0,
        "base_tensors_checked": compared,
        "artifacts": {
            "adapter_dir": str(adapter_dir),
            "sha256": {str(p.relative_to(run_dir)): file_sha256(p) for p in files},
        },
    }
    path = run_dir / "manifest.json"
    write_atomic(path, json.dumps(manifest, indent=2, default=_jsonable).encode())
    return path


__all__ = ["COMPLETION_KEYS", "main"]
