"""Agent GRPO: episodes in which the model calls tools, through TRL's `environment_factory`.

- The environment: the run's copy of an environment file (`app.training.environment`) or the
  replay of the reviewed traces (`app.training.replay`); TRL makes one instance per rollout,
  calls `reset(**task)` with the task's fields (prompt, reference, task_key), shows the model
  the schema of its methods, and runs the calls the model makes.
- Tool calls are parsed from the model's output with a response template (transformers 5):
  the one TRL knows for the model's chat template, else, for a template that writes Hermes /
  Qwen-style `<tool_call>{"name", "arguments"}</tool_call>` (the demo model's), Qwen's.
- Graders receive the structured episode: assistant messages with parsed tool calls, the tool
  results, the final answer; never text with the special tokens stripped.
- `run_dir/episodes.jsonl`: a few episodes per logged step (format in the README).
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from app.training.environment import environment_class
from app.training.graders import grade_one
from app.training.manifest import file_sha256
from app.training.replay import replay_environment
from trainer.data import DataError, to_arrow_messages
from trainer.watch import copies_prompt, prompt_text, written_text

MAX_TOOL_ITERATIONS = 8  # tool rounds per episode (the completion budget bounds it too)
LOGGED_PROMPTS = 2  # prompts per logged step written to episodes.jsonl, each x num_generations


def environment_factory(config: dict[str, Any]) -> type:
    """The environment class of the run, after checking it is the file that was prepared."""
    env = config["environment"]
    path = Path(env["path"])
    if not path.is_file():
        raise DataError(f"{path}: the run's environment is missing")
    if file_sha256(path) != env["sha256"]:
        raise DataError(f"{path}: changed since the run was prepared (sha256 differs)")
    if env["kind"] == "replay":
        return replay_environment(path)
    return environment_class(path)


# ---------------------------------------------------------------------------------------------
# Parsing tool calls


def writes_hermes_calls(tok) -> bool:
    """Does the chat template write a call as <tool_call>{"name": ..., "arguments": {...}}?"""
    call = {"type": "function", "function": {"name": "probe_tool", "arguments": {"x": 1}}}
    try:
        text = tok.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}],
            tokenize=False,
        )
    except Exception:  # noqa: BLE001 - a template that cannot render calls: not this form
        return False
    body = r'\{"name": "probe_tool", "arguments": \{"x": 1\}\}'
    return re.search(rf"<tool_call>\s*{body}\s*</tool_call>", text) is not None


def enable_tool_parsing(tok) -> str:
    """Give the tokenizer a response template so TRL parses tool calls; returns which."""
    if getattr(tok, "response_template", None) or getattr(tok, "response_schema", None):
        return "the model's own"
    from trl.chat_template_utils import add_response_schema, qwen3_template

    try:
        add_response_schema(tok)
        return "TRL's for this chat template"
    except ValueError:
        pass
    if writes_hermes_calls(tok):
        tok.response_template = copy.deepcopy(qwen3_template)
        return "Hermes/Qwen <tool_call> JSON"
    raise DataError(
        "the model's chat template writes tool calls in a form Chambers cannot parse "
        "(known: TRL's templates and <tool_call>{json}</tool_call>); set a response_template "
        "on the tokenizer"
    )


# ---------------------------------------------------------------------------------------------
# Data, graders, episodes


def check_tasks(rows: list[dict[str, Any]], where: str) -> None:
    for n, r in enumerate(rows, 1):
        if r.get("kind") != "agent" or not isinstance(r.get("reference"), dict):
            raise DataError(f"{where}: record {n}: not an agent task (kind, reference)")
        if not r.get("prompt"):
            raise DataError(f"{where}: record {n}: field 'prompt' is empty")


def dataset_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Arrow rows TRL samples; `reset(**row)` receives them as the task."""
    return [
        {
            "prompt": to_arrow_messages(r["prompt"]),
            "reference": json.dumps(r["reference"]),
            "task_key": r["task_key"],
        }
        for r in rows
    ]


def episode_messages(completion: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's completion as plain chat messages (parsed calls with object arguments)."""
    out = []
    for m in completion:
        msg = {"role": m.get("role", "assistant"), "content": m.get("content") or ""}
        if m.get("tool_calls"):
            msg["tool_calls"] = [
                {
                    "type": "function",
                    "function": {
                        "name": c.get("function", {}).get("name"),
                        "arguments": c.get("function", {}).get("arguments"),
                    },
                }
                for c in m["tool_calls"]
            ]
        if m.get("role") == "tool" and m.get("name"):
            msg["name"] = m["name"]
        if not isinstance(msg["content"], str):
            msg["content"] = json.dumps(msg["content"], default=str)
        out.append(msg)
    return out


class EpisodeLog:
    """Scores each grader on the structured episodes and writes a few of them per logged step.

    TRL calls the reward functions one after another on the same batch; the last one of the
    run's graders writes the batch's episodes with every grader's reward. The reward-hacking
    watch (trainer.watch) turns it off while it generates on held-out prompts and writes those
    episodes itself, labelled "heldout"."""

    def __init__(self, run_dir: Path, graders: list[dict[str, Any]], logging_steps: int):
        self.path = run_dir / "episodes.jsonl"
        self.graders = graders
        self.logging_steps = max(int(logging_steps), 1)
        self.enabled = True
        self.pending: dict[str, list[float]] = {}
        self.logged: set[int] = set()
        self.lock = threading.Lock()

    def reward_funcs(self) -> list[Any]:
        return [self._reward_fn(i, g) for i, g in enumerate(self.graders)]

    def _reward_fn(self, i: int, g: dict[str, Any]):
        last = i == len(self.graders) - 1

        def fn(prompts, completions, reference, completion_ids=None, trainer_state=None, **kw):
            episodes = [episode_messages(c) for c in completions]
            refs = [json.loads(r) for r in reference]
            scores = [
                grade_one(g["name"], g["path"], ep, ref)
                for ep, ref in zip(episodes, refs, strict=True)
            ]
            self.pending[g["name"]] = scores
            if last:
                step = (trainer_state.global_step if trainer_state is not None else 0) + 1
                self.write(step, prompts, episodes, completion_ids, kw.get("task_key"))
            return scores

        fn.__name__ = g["name"]
        return fn

    def due(self, step: int) -> bool:
        first_rank = os.environ.get("RANK", "0") == "0"
        return self.enabled and first_rank and (step == 1 or step % self.logging_steps == 0)

    def write(self, step, prompts, episodes, completion_ids, task_keys) -> None:
        with self.lock:
            if not self.due(step) or step in self.logged:
                return
            self.logged.add(step)
            total = sum(g["weight"] for g in self.graders) or 1.0
            keys = task_keys or [None] * len(episodes)
            wanted = list(dict.fromkeys(keys))[:LOGGED_PROMPTS]
            lines = []
            for i, (prompt, ep, task) in enumerate(zip(prompts, episodes, keys, strict=True)):
                if task not in wanted:
                    continue
                rewards = {g["name"]: self.pending[g["name"]][i] for g in self.graders}
                lines.append(
                    {
                        "step": step,
                        "split": "train",
                        "task_key": task,
                        "index": i,
                        "messages": ep,
                        "prompt_messages": len(prompt),
                        "rewards": rewards,
                        "reward": sum(g["weight"] * rewards[g["name"]] for g in self.graders)
                        / total,
                        "completion_tokens": len(completion_ids[i]) if completion_ids else None,
                        "tool_calls": sum(len(m.get("tool_calls") or []) for m in ep),
                        "copied_prompt": copies_prompt(written_text(ep), prompt_text(prompt)),
                    }
                )
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    for rec in lines:
                        f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            except OSError as exc:  # the episodes are a view; a full disk fails the checkpoint
                import sys

                sys.stderr.write(f"cannot write {self.path}: {exc}\n")


def agent_inputs(config: dict[str, Any], tok, rows: list[dict[str, Any]], cfg, run_dir: Path):
    """What GRPO needs for agent tasks: dataset rows, reward functions, trainer and config
    arguments, and what the run records about it."""
    check_tasks(rows, config["train_file"])
    factory = environment_factory(config)
    parser = enable_tool_parsing(tok)
    log = EpisodeLog(run_dir, config["graders"], cfg.logging_steps)
    env = config["environment"]
    info = {"environment": env["kind"], "tools": env["tools"], "tool_call_parser": parser}
    return (
        dataset_rows(rows),
        log.reward_funcs(),
        {"environment_factory": factory},
        {"max_tool_calling_iterations": MAX_TOOL_ITERATIONS},
        info,
        log,
    )
