"""The training run's configuration: one typed dataclass for the run dialog, the command line
and the trainer process.

Standard library only: the trainer reads it without loading SQLAlchemy or Qt. Each field
carries a help line (`metadata={"help": ...}`) that the command line shows; defaults come from
the base model's size (`TrainConfig.for_model`); derived values (LoRA alpha, the KTO weights,
the maximum length from the data) are resolved in one place each (`TrainConfig.resolved`, and
the trainer for what needs the tokenizer).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from app.workspace.errors import ChambersError

Method = Literal["sft", "kto", "dpo", "grpo"]
METHODS: tuple[str, ...] = get_args(Method)

#: Which judgements feed which method (shown in the dialog, recorded in the manifest).
METHOD_DATA = {
    "sft": "approved steps and corrected steps (step-level examples)",
    "kto": "unpaired verdicts: approved and corrected steps desirable, rejected steps undesirable",
    "dpo": "preference pairs: a corrected or better step against the original",
    "grpo": "the pairs' prompts, scored online by graders checked against the judges",
}


class ConfigError(ChambersError):
    """A configuration value a user gave is unusable."""


def _f(default: Any, help: str, **meta: Any) -> Any:  # noqa: A002 - the dataclasses word
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """Hyperparameters of one LoRA run. `None` means "derived" (see `resolved`)."""

    learning_rate: float = _f(5e-4, "peak learning rate (AdamW, linear decay)")
    num_train_epochs: float = _f(1.0, "passes over the training data (ignored if max_steps > 0)")
    max_steps: int = _f(-1, "stop after this many optimizer steps (-1: whole epochs)")
    per_device_train_batch_size: int = _f(4, "examples per device per forward pass")
    gradient_accumulation_steps: int = _f(1, "forward passes per optimizer step")
    lora_r: int = _f(8, "LoRA rank: the size of the adapter's update matrices")
    lora_alpha: int | None = _f(None, "LoRA alpha (default: 2 x lora_r)")
    lora_dropout: float = _f(0.05, "dropout on the LoRA branch")
    lora_target_modules: str = _f("all-linear", "modules that get LoRA adapters")
    gradient_checkpointing: bool = _f(False, "recompute activations to save memory")
    max_length: int | None = _f(
        None,
        "tokens per example; longer prompts are shortened from the middle, the "
        "completion is never cut (default: a percentile of the data's lengths, capped by the "
        "model)",
    )
    length_percentile: float = _f(
        95.0, "with max_length unset: the percentile of the data's token lengths to fit"
    )
    beta: float = _f(
        0.1,
        "DPO/KTO: strength of the pull towards the base model; GRPO: weight of the KL penalty "
        "to the base model (0: none, the GRPO default)",
    )
    loss_type: str = _f(
        "sigmoid",
        "DPO: sigmoid, ipo, ...; KTO: kto, apo_zero_unpaired; GRPO: dapo, grpo, ...; SFT: nll, dft",
    )
    desirable_weight: float | None = _f(
        None, "KTO: weight of desirable examples (default: balances the two classes)"
    )
    undesirable_weight: float | None = _f(
        None, "KTO: weight of undesirable examples (default: balances the two classes)"
    )
    num_generations: int = _f(4, "GRPO: completions sampled per prompt")
    max_completion_length: int = _f(64, "GRPO: tokens per sampled completion")
    echo_lambda: float = _f(
        0.0,
        "ECHO (GRPO, SFT): weight of the cross-entropy on observation (tool-result) tokens "
        "added to the loss; 0 = off. Keep it small: 0.005 was stable in the ECHO paper where "
        "0.05 collapsed a model",
    )
    watch_steps: int = _f(
        10,
        "GRPO: every this many steps, generate on held-out prompts and check for reward "
        "hacking (KL to the base, length, prompt copying); 0 = off",
    )
    watch_prompts: int = _f(4, "GRPO: held-out prompts the reward-hacking watch generates on")
    logging_steps: int = _f(1, "log metrics every this many steps")
    save_steps: int = _f(50, "save a checkpoint every this many steps")
    save_total_limit: int | None = _f(3, "keep at most this many checkpoints (oldest pruned)")
    eval_steps: int | None = _f(
        None, "evaluate on the held-out split every this many steps (default: save_steps)"
    )
    seed: int = _f(0, "random seed (data order, LoRA init)")

    # -----------------------------------------------------------------------------------------
    # Defaults

    @classmethod
    def for_model(cls, method: str, n_params: int) -> TrainConfig:
        """Per model size: tiny models learn fast; large ones need small steps and low rank."""
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if n_params < 50e6:
            lr, r, batch, accum = 5e-4, 8, 4, 1
        elif n_params < 2e9:
            lr, r, batch, accum = 2e-5, 16, 2, 8
        else:
            lr, r, batch, accum = 5e-6, 16, 1, 16
        cfg = cls(
            learning_rate=lr,
            lora_r=r,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accum,
            gradient_checkpointing=n_params >= 50e6,
        )
        if method == "sft":
            cfg = replace(cfg, loss_type="nll", beta=0.0, learning_rate=lr * 2)
        elif method == "kto":
            # KTO estimates its KL term from the other examples of a batch: at least 2
            cfg = replace(cfg, loss_type="kto", per_device_train_batch_size=max(batch, 2))
        elif method == "grpo":
            cfg = replace(
                cfg,
                beta=0.0,
                loss_type="dapo",
                max_completion_length=64 if n_params < 50e6 else 512,
                per_device_train_batch_size=max(batch, 4),
            )
        return cfg

    def resolved(self) -> TrainConfig:
        """A copy with the derived values filled in (the one place LoRA alpha is derived)."""
        return replace(
            self,
            lora_alpha=self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r,
            eval_steps=self.eval_steps if self.eval_steps is not None else max(self.save_steps, 1),
        )

    # -----------------------------------------------------------------------------------------
    # JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """Every key known, every value of its field's type; a message naming the field."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object of training options")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        values = {k: _check(where, k, known[k].type, v) for k, v in data.items()}
        cfg = cls(**values)
        cfg.validate(where)
        return cfg

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "config") -> TrainConfig:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not JSON ({exc})") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        return cls.from_json(text, str(path))

    def update(self, overrides: dict[str, Any], where: str = "options") -> TrainConfig:
        """A copy with these fields changed (None values are left alone)."""
        merged = {**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        return TrainConfig.from_dict(merged, where)

    def validate(self, where: str = "config") -> None:
        positive = (
            "learning_rate",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "lora_r",
            "logging_steps",
            "save_steps",
            "num_generations",
            "max_completion_length",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}: {name} must be positive, not {getattr(self, name)}")
        for name in ("max_length", "lora_alpha", "save_total_limit", "eval_steps"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ConfigError(f"{where}: {name} must be positive, not {v}")
        if not 0 < self.length_percentile <= 100:
            raise ConfigError(f"{where}: length_percentile must be in (0, 100]")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"{where}: lora_dropout must be in [0, 1)")
        for name in ("echo_lambda", "watch_steps", "beta"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}: {name} must be 0 or more, not {getattr(self, name)}")
        if self.watch_prompts <= 0:
            raise ConfigError(f"{where}: watch_prompts must be positive, not {self.watch_prompts}")

    @classmethod
    def help_lines(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}

    @classmethod
    def option_types(cls) -> dict[str, type]:
        """The scalar type of each field (for command-line options)."""
        return {f.name: _scalar(f.type) for f in fields(cls)}

    @classmethod
    def field_default(cls, name: str) -> Any:
        f = next(f for f in fields(cls) if f.name == name)
        return None if f.default is MISSING else f.default


_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


def _scalar(annotation: str | type) -> type:
    text = annotation if isinstance(annotation, str) else annotation.__name__
    return _TYPES[text.split("|")[0].strip()]


def _check(where: str, name: str, annotation: str | type, value: Any) -> Any:
    text = annotation if isinstance(annotation, str) else annotation.__name__
    optional = "None" in text
    kind = _scalar(annotation)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: {name} cannot be null")
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"{where}: {name} must be {kind.__name__}"
        f"{' or null' if optional else ''}, not {json.dumps(value)}"
    )


def model_size(model_dir: Path) -> int:
    """Approximate parameter count from config.json (for defaults per model size)."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{model_dir}: not a Hugging Face model directory (config.json: {exc})"
        ) from None
    cfg = cfg.get("text_config", cfg)
    h = cfg.get("hidden_size", 0)
    n = cfg.get("num_hidden_layers", 0)
    v = cfg.get("vocab_size", 0)
    inter = cfg.get("intermediate_size", 4 * h)
    return int(n * (4 * h * h + 3 * h * inter) + v * h)


def model_max_positions(model_dir: Path) -> int | None:
    """The model's context window from config.json, if it says."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    n = cfg.get("max_position_embeddings")
    return int(n) if isinstance(n, int) and n > 0 else None


def memory_cap(n_params: int) -> int:
    """The longest example a LoRA run of this size should default to on one 80 GB GPU."""
    if n_params < 50e6:
        return 2048
    if n_params < 2e9:
        return 8192
    if n_params < 15e9:
        return 16384
    return 8192
