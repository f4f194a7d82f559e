"""ECHO: learning from the environment's tokens.

Agent RL masks observation (tool-result) tokens out of the loss: the model is trained on what it
wrote, never on what the tools answered. ECHO adds `echo_lambda` x the mean cross-entropy on the
observation tokens, computed from the log-probabilities the trainer's own forward pass already
produced, so the model also learns to predict its environment. Published with λ = 0.005; 0.05
collapsed a model, hence the small default in the help line and the README.

`echo_trainer(cls)` subclasses TRL's `GRPOTrainer` or `SFTTrainer` (overriding their loss, not
forking it) and logs, in the trainer's metrics (so they reach the run's `log` and `evaluate`
events):
    obs_ce      mean cross-entropy (nats per token) on the batch's observation tokens; logged
                whenever a batch has any, also with echo_lambda = 0
    echo_loss   echo_lambda x obs_ce, the term added to the loss (echo_lambda > 0 only)

Which tokens are observation tokens:
    GRPO  the tokens TRL inserts for a tool result in a multi-turn episode: `tool_mask` is 0 on
          them (the template's tool turn, its content, and the header of the next assistant
          turn), inside the completion mask. A tool result in the prompt is context, not
          scored (TRL scores completion positions only).
    SFT   the tokens the chat template renders for each `tool` message of the record's prompt
          (its wrapper and content), found by rendering the prompt's prefixes; a message the
          template does not render as a prefix of the record is left out. The completion (one
          assistant step) stays the only target of the SFT loss.
Cross-entropy is that of the distribution the trainer scores with (GRPO: at its sampling
temperature, 1.0 in Chambers).
"""

from __future__ import annotations

from typing import Any

from trainer.data import render_ids, restore_messages

OBS_MASK = "observation_mask"


def echo_trainer(cls: type) -> type:
    """`cls` (a GRPOTrainer or SFTTrainer, or a subclass) with the ECHO term in its loss; the
    new class takes `echo_lambda=` as a keyword."""
    from trl import GRPOTrainer, SFTTrainer

    if issubclass(cls, GRPOTrainer):
        mixin = _GRPOEcho
    elif issubclass(cls, SFTTrainer):
        mixin = _SFTEcho
    else:
        raise TypeError(f"ECHO needs a GRPOTrainer or SFTTrainer, not {cls.__name__}")
    return type(f"Echo{cls.__name__}", (mixin, cls), {})


def _log_obs_ce(trainer, mode: str, ce_sum, count) -> None:
    """obs_ce over every process's observation tokens (nothing when there are none)."""
    import torch

    totals = trainer.accelerator.reduce(torch.stack([ce_sum.detach(), count.float()]), "sum")
    if totals[1] > 0:
        trainer._metrics[mode]["obs_ce"].append((totals[0] / totals[1]).item())


class _GRPOEcho:
    """GRPO: the log-probabilities of the policy's own forward over the completion (which TRL
    computes for every completion token, tool results included) give the observation CE."""

    def __init__(self, *args, echo_lambda: float = 0.0, **kwargs):
        self.echo_lambda = float(echo_lambda)
        self._echo_capture = False
        self._echo_logps = None
        super().__init__(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._echo_capture:  # the forward of the loss, not the old/reference ones
            self._echo_logps = out[0]
        return out

    def _compute_loss(self, model, inputs):
        self._echo_capture = True
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._echo_capture = False
        logps, self._echo_logps = self._echo_logps, None
        tool_mask = inputs.get("tool_mask")
        if tool_mask is None or logps is None:
            return loss
        obs = inputs["completion_mask"] * (1 - tool_mask)
        ce_sum, count = -(logps * obs).sum(), obs.sum()
        mode = "train" if self.model.training else "eval"
        _log_obs_ce(self, mode, ce_sum, count)
        if self.echo_lambda > 0:
            ce = ce_sum / count.clamp(min=1)
            # like TRL's MoE aux loss here: a per-micro-batch mean, scaled for accumulation
            normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            loss = loss + self.echo_lambda * ce / normalizer
            self._metrics[mode]["echo_loss"].append(self.echo_lambda * ce.item())
        return loss


class _SFTEcho:
    """SFT: observation tokens are labelled too in the one forward pass (TRL's fused LM head
    scores only labelled positions); the SFT loss sees its own positions only, ECHO the
    observation ones."""

    def __init__(self, *args, echo_lambda: float = 0.0, **kwargs):
        self.echo_lambda = float(echo_lambda)
        super().__init__(*args, **kwargs)
        self.data_collator = _ObservationCollator(self.data_collator)

    def _prepare_dataset(self, dataset, processing_class, args, packing, *rest, **kwargs):
        dataset = super()._prepare_dataset(
            dataset, processing_class, args, packing, *rest, **kwargs
        )
        columns = dataset.column_names or []
        if packing or "prompt" not in columns or "input_ids" not in columns:
            return dataset  # packed or prompt-less records: no messages to find tool turns in
        tok = getattr(processing_class, "tokenizer", processing_class)
        return dataset.map(
            lambda ex: {
                OBS_MASK: observation_mask(tok, ex["prompt"], ex.get("tools"), ex["input_ids"])
            }
        )

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if OBS_MASK not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, OBS_MASK]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        obs = inputs.pop(OBS_MASK, None)
        if obs is None or not bool(obs.any()):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        split = _ObservationSplit(model, obs)
        result = super().compute_loss(split, inputs, return_outputs, num_items_in_batch)
        if split.obs_log_probs is None:  # a path that did not score through the fused head
            return result
        loss = result[0] if return_outputs else result
        mode = "train" if self.model.training else "eval"
        ce_sum, count = -split.obs_log_probs.sum(), split.obs_count
        _log_obs_ce(self, mode, ce_sum, count)
        if self.echo_lambda > 0:
            ce = ce_sum / count.clamp(min=1)
            # as SFTTrainer adds its MoE aux loss: with num_items_in_batch, the trainer leaves
            # gradient accumulation to the loss
            steps = (
                self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            )
            loss = loss + self.echo_lambda * ce / steps
            self._metrics[mode]["echo_loss"].append(self.echo_lambda * ce.item())
        return (loss, result[1]) if return_outputs else loss


def observation_mask(tok, prompt: list[dict[str, Any]], tools, input_ids: list[int]) -> list[int]:
    """1 on the tokens of each tool message of `prompt` inside `input_ids` (the record as
    SFTTrainer tokenised it), 0 elsewhere."""
    import json

    tools = json.loads(tools) if isinstance(tools, str) else tools
    messages = restore_messages(prompt)
    mask = [0] * len(input_ids)
    for k, m in enumerate(messages):
        if m.get("role") != "tool" or k == 0:
            continue
        before = render_ids(tok, messages[:k], tools)
        after = render_ids(tok, messages[: k + 1], tools)
        if after[: len(before)] != before or input_ids[: len(after)] != after:
            continue  # not rendered as a prefix of the record: its tokens cannot be located
        for i in range(len(before), len(after)):
            mask[i] = 1
    return mask


class _ObservationCollator:
    """The trainer's collator, plus the observation mask padded like the input ids."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples):
        import torch

        masks = [ex.pop(OBS_MASK, None) for ex in examples]
        batch = self.inner(examples)
        if any(m is not None for m in masks) and "attention_mask" in batch:
            out = torch.zeros_like(batch["input_ids"])
            for row, m in enumerate(masks):
                if m:
                    n = min(len(m), out.shape[1])
                    out[row, :n] = torch.tensor(m[:n])
            batch[OBS_MASK] = out
        return batch

    def __getattr__(self, name):
        if name == "inner":  # not set yet (a copy being built)
            raise AttributeError(name)
        return getattr(self.inner, name)


class _ObservationSplit:
    """The model, called through SFTTrainer's loss: one fused forward scores the SFT labels and
    the observation tokens; the loss gets back an output holding its own positions only."""

    def __init__(self, model, obs_mask):
        self.model = model
        self.obs_mask = obs_mask.bool()
        self.obs_log_probs = None
        self.obs_count = None

    def __getattr__(self, name):
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, *args, fused_lm_head=False, labels=None, **kwargs):
        import torch

        if not fused_lm_head or labels is None or "shift_labels" in kwargs:
            if labels is not None:
                kwargs["labels"] = labels
            if fused_lm_head:
                kwargs["fused_lm_head"] = True
            return self.model(*args, **kwargs)
        obs = self.obs_mask & (labels == -100)
        combined = torch.where(obs, kwargs["input_ids"], labels)
        out = self.model(*args, fused_lm_head=True, labels=combined, **kwargs)
        keep, obs_next = labels[:, 1:] != -100, obs[:, 1:]  # the fused head scores label t+1 at t
        self.obs_log_probs = out.log_probs * obs_next
        self.obs_count = obs_next.sum()
        for name in ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"):
            value = getattr(out, name)
            if value is not None:
                setattr(out, name, value * keep if value.dtype != torch.bool else value & keep)
        out.label_mask = keep
        n = kwargs.get("num_items_in_batch")
        out.loss = -out.log_probs.sum() / (keep.sum().clamp(min=1) if n is None else n)
        return out
