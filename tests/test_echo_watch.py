"""ECHO (cross-entropy on observation tokens) and the reward-hacking watch, on the committed
tiny model, CPU.

The tiny model is random: it never writes a tool call and cannot learn to copy a prompt in a
few steps. So the tests script what the policy *writes* at the lowest level (TRL's
`_generate_single_turn`, which returns token ids); everything after it is the real path: TRL's
tool loop runs the tools and builds the tool mask, the graders score, the loss (GRPO or SFT plus
ECHO) is computed and stepped, and the watch measures the real model (KL to the base, held-out
observation cross-entropy) on the episodes.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from app.training.config import TrainConfig
from tests.test_training import TINY
from trainer.watch import AlertRule, copies_prompt, prompt_text, written_text

# ---------------------------------------------------------------------------------------------
# Copying and the alert rule


def test_a_completion_copies_the_prompt_when_half_its_8_grams_are_in_it():
    prompt = "Where is my order 17? I ordered a blue kettle on Monday and it has not arrived yet."
    assert copies_prompt("I ordered a blue kettle on Monday and it has not arrived", prompt)
    assert copies_prompt("where is my ORDER 17!", prompt)  # 5 words: one 5-gram, case-blind
    assert not copies_prompt("Your blue kettle shipped on Monday and arrives on Friday.", prompt)
    assert not copies_prompt("order 17", prompt)  # too short to tell
    # half the 8-grams from the prompt, half invented: 4 of 8 is the threshold
    copied = "i ordered a blue kettle on monday and it has not"  # 11 words: 4 8-grams
    assert copies_prompt(copied + " zz", prompt)  # 4 of 5 8-grams
    assert not copies_prompt("i ordered a blue kettle on monday and xx yy zz ww", prompt)  # 1 of 5
    episode = [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]},
        {"role": "tool", "content": "I ordered a blue kettle on Monday and it has not arrived"},
        {"role": "assistant", "content": "Done."},
    ]
    assert written_text(episode).strip() == "Done."  # tool results are not the model's words
    assert "blue kettle" in prompt_text([{"role": "user", "content": prompt}])


def _watch(step, reward, copy=0.0, kl=0.0, length=20.0):
    return {
        "step": step,
        "reward_mean": reward,
        "copy_share": copy,
        "kl": kl,
        "completion_length": length,
    }


def test_the_alert_needs_reward_up_and_a_signal_degraded_within_the_window():
    rule = AlertRule()
    assert rule.check([_watch(0, 0.2)]) is None  # one watch: nothing to compare
    # reward up, copy share up by 0.5
    alert = rule.check([_watch(0, 0.2), _watch(10, 0.6, copy=0.5)])
    assert alert["kind"] == "reward_hacking" and alert["signals"]["degraded"] == ["copy_share"]
    assert alert["signals"]["reward_mean"] == [0.2, 0.6] and alert["signals"]["from_step"] == 0
    assert "0.200 -> 0.600" in alert["message"] and "copy share 0.00 -> 0.50" in alert["message"]
    # reward up with healthy signals: learning, not hacking
    assert rule.check([_watch(0, 0.2), _watch(10, 0.6, copy=0.1, kl=0.05, length=25)]) is None
    # signals degrade while the reward falls: no reward hacking
    assert rule.check([_watch(0, 0.6), _watch(10, 0.2, copy=0.9)]) is None
    # KL and length (halved) together
    alert = rule.check([_watch(0, 0.2, kl=0.01), _watch(10, 0.3, kl=0.2, length=9)])
    assert alert["signals"]["degraded"] == ["kl", "completion_length"]
    # the window is the last 3 watches: an old baseline falls out of it
    old = [_watch(0, 0.0), _watch(10, 0.5, copy=0.5), _watch(20, 0.5, copy=0.5)]
    assert rule.check([*old, _watch(30, 0.52, copy=0.5)]) is None


# ---------------------------------------------------------------------------------------------
# ECHO on GRPO episodes with tools


def lookup_order(order_id: int) -> str:
    """Look up an order.

    Args:
        order_id: the order number
    """
    return f"order {order_id}: shipped by parcel post on monday, arriving on friday"


class OrderDesk:
    """A deterministic environment for TRL's `environment_factory`: one tool, a call log."""

    def reset(self, **_kwargs) -> None:
        self.calls: list[int] = []

    def lookup_order(self, order_id: int) -> str:
        """Look up an order.

        Args:
            order_id: the order number
        """
        self.calls.append(order_id)
        return lookup_order(order_id)


def _scripted_agent(self, prompt_ids, images, multimodal_fields, num_generations, **_kw):
    """What the policy writes: a lookup of the prompt's order, then, after the tool result, one
    of two answers (seeded by step and row, so a group's rewards differ)."""
    out = []
    for row, ids in enumerate(prompt_ids):
        text = self.processing_class.decode(ids)
        if "<|im_start|>tool" in text:
            pick = random.Random(self.state.global_step * 1000 + row).random() < 0.5
            reply = ("Your order has shipped." if pick else "I do not know.") + "<|im_end|>"
        else:
            number = re.findall(r"order (\d+)", text)[-1]
            call = {"name": "lookup_order", "arguments": {"order_id": int(number)}}
            reply = f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>"
        out.append(self.processing_class.encode(reply, add_special_tokens=False))
    return out, None


def _shipped(prompts, completions, **_kw):
    return [1.0 if "shipped" in (c[-1].get("content") or "") else 0.0 for c in completions]


def _echo_run(tmp_path: Path, echo_lambda: float, monkeypatch) -> list[dict]:
    """Four GRPO steps in an environment with a tool; the watch's events (before and after)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    from trainer.echo import echo_trainer
    from trainer.watch import RewardHackingWatch

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", _scripted_agent)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(TINY)
    tok.response_template = qwen3_template  # the fixture writes Qwen's <tool_call>{json}
    prompts = [[{"role": "user", "content": f"where is order {n}?"}] for n in range(10, 26)]
    args = GRPOConfig(
        output_dir=str(tmp_path / f"out-{echo_lambda}"),
        max_steps=4,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=96,
        learning_rate=1e-2,
        beta=0.0,
        loss_type="dapo",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
    )
    trainer = echo_trainer(GRPOTrainer)(
        echo_lambda=echo_lambda,
        model=AutoModelForCausalLM.from_pretrained(TINY),
        reward_funcs=[_shipped],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tok,
        peft_config=LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM"),
        environment_factory=OrderDesk,
    )
    events = []
    heldout = [{"prompt": [{"role": "user", "content": f"where is order {n}?"}]} for n in (71, 88)]
    trainer.add_callback(
        RewardHackingWatch(
            trainer,
            heldout,
            4,
            lambda event, **data: events.append({"event": event, **data}),
            tmp_path / f"episodes-{echo_lambda}.jsonl",
        )
    )
    trainer.train()
    # the watch left the trainer's completion logs and eval metrics alone
    assert "order 71" not in json.dumps(list(trainer._logs["prompt"]))
    assert len(trainer._logs["prompt"]) == len(trainer._logs["rewards"]["_shipped"]) == 4
    assert not trainer._metrics["eval"]
    logs = [h for h in trainer.state.log_history if "obs_ce" in h]
    assert len(logs) == 4  # obs_ce logged at every step, also with echo_lambda = 0
    assert all(("echo_loss" in h) == (echo_lambda > 0) for h in logs)
    return events


def test_echo_lowers_heldout_observation_cross_entropy_and_lambda_zero_does_not(
    tmp_path, monkeypatch
):
    off = [e for e in _echo_run(tmp_path, 0.0, monkeypatch) if e["event"] == "watch"]
    on = [e for e in _echo_run(tmp_path, 1.0, monkeypatch) if e["event"] == "watch"]
    assert [e["step"] for e in off] == [0, 4] == [e["step"] for e in on]
    assert off[0]["obs_ce"] == pytest.approx(on[0]["obs_ce"])  # same seed, same base model
    drop_on = on[0]["obs_ce"] - on[1]["obs_ce"]
    drop_off = off[0]["obs_ce"] - off[1]["obs_ce"]
    # λ = 0: the policy gradient moves the adapter as far (Adam), but not towards the tool's
    # words; measured here: ECHO 0.22 nats, λ = 0 0.02 to 0.04
    assert drop_on > 0.1 and drop_on > 4 * abs(drop_off), (on, off)
    # the held-out episodes hold the parsed call and the tool's result
    lines = (tmp_path / "episodes-1.0.jsonl").read_text().splitlines()
    ep = json.loads(lines[0])
    assert ep["split"] == "heldout" and ep["tool_calls"] == 1
    call = ep["messages"][0]["tool_calls"][0]["function"]
    assert call == {"name": "lookup_order", "arguments": {"order_id": 71}}
    assert ep["messages"][1] == {
        "role": "tool",
        "name": "lookup_order",
        "content": lookup_order(71),
    }


# ---------------------------------------------------------------------------------------------
# SFT with ECHO through the trainer process


def _sft_record(n: int) -> dict:
    call = {"type": "function", "id": f"c{n}", "function": {"name": "lookup_order"}}
    call["function"]["arguments"] = {"order_id": n}
    return {
        "prompt": [
            {"role": "user", "content": f"where is order {n}?"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{n}", "content": lookup_order(n)},
        ],
        "completion": [{"role": "assistant", "content": "It has shipped and arrives on friday."}],
        "tools": TOOLS,
    }


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        },
    }
]


def test_sft_observation_tokens_are_the_tool_turns_and_the_completion_stays_the_target():
    from transformers import AutoTokenizer

    from trainer.data import wrap_tokenizer
    from trainer.echo import observation_mask

    tok = AutoTokenizer.from_pretrained(TINY)
    wrap_tokenizer(tok)
    rec = _sft_record(42)
    ids = tok.apply_chat_template(
        rec["prompt"] + rec["completion"], tools=TOOLS, tokenize=True, return_dict=True
    )["input_ids"]
    mask = observation_mask(tok, rec["prompt"], json.dumps(TOOLS), list(ids))
    observed = tok.decode([t for t, m in zip(ids, mask, strict=True) if m])
    assert observed == f"<|im_start|>tool\n{lookup_order(42)}<|im_end|>\n"


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_sft_run_with_echo_logs_observation_ce_and_records_lambda(tmp_path):
    from trainer.run import main

    run_dir = tmp_path / "sft"
    (run_dir / "data").mkdir(parents=True)
    cfg = TrainConfig.for_model("sft", 10**6).update(
        {
            "max_steps": 3,
            "echo_lambda": 0.5,
            "eval_steps": 3,
            "save_steps": 3,
            "learning_rate": 5e-3,
        }
    )
    config = {
        "algorithm": "sft",
        "name": "echo-sft",
        "base_model": str(TINY),
        "run_dir": str(run_dir),
        "train_file": _write_jsonl(
            run_dir / "data/train.jsonl", [_sft_record(n) for n in range(8)]
        ),
        "eval_file": _write_jsonl(run_dir / "data/heldout.jsonl", [_sft_record(90)]),
        "snapshot": {},
        "training": cfg.resolved().to_dict(),
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(str(run_dir / "config.json")) == 0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    logs = [e["metrics"] for e in events if e["event"] == "log" and "loss" in e["metrics"]]
    assert len(logs) == 3 and all(m["obs_ce"] > 0 for m in logs)
    assert all(m["echo_loss"] == pytest.approx(0.5 * m["obs_ce"]) for m in logs)
    assert logs[-1]["obs_ce"] < logs[0]["obs_ce"]
    evals = [e["metrics"] for e in events if e["event"] == "evaluate"]
    assert evals and evals[-1]["eval_obs_ce"] > 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["echo_lambda"] == 0.5 and manifest["config"]["echo_lambda"] == 0.5


# ---------------------------------------------------------------------------------------------
# The watch on a rigged grader, through the trainer process


def _drifting_copier(self, prompt_ids, images, multimodal_fields, num_generations, **_kw):
    """A policy drifting into reward hacking: at step s, a share s/4 of its completions repeats
    the user's message; the others answer honestly."""
    share = min(self.state.global_step / 4, 1.0)
    out = []
    for row, ids in enumerate(prompt_ids):
        text = self.processing_class.decode(ids)
        task = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", text, re.S)[-1]
        reply = task if (row % 4) < round(4 * share) else "Let me check that for you."
        out.append(self.processing_class.encode(reply + "<|im_end|>", add_special_tokens=False))
    return out, None


def _grpo_record(n: int, split: str) -> dict:
    task = f"please tell me where my order {n} is and when my parcel will arrive"
    return {
        "prompt": [{"role": "user", "content": task}],
        # a rigged reference: it repeats the task, so `match` pays for echoing the prompt
        "chosen": [{"role": "assistant", "content": task}],
        "split": split,
    }


def test_the_watch_sees_copying_rise_under_a_rigged_grader_and_alerts(tmp_path, monkeypatch):
    from trl import GRPOTrainer

    from trainer.run import main

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", _drifting_copier)
    run_dir = tmp_path / "grpo"
    (run_dir / "data").mkdir(parents=True)
    cfg = TrainConfig.for_model("grpo", 10**6).update(
        {
            "max_steps": 4,
            "num_generations": 4,
            "per_device_train_batch_size": 4,
            "watch_steps": 2,
            "watch_prompts": 2,
            "beta": 0.04,
            "save_steps": 10,
        }
    )
    train = [_grpo_record(n, "train") for n in range(10, 18)]
    config = {
        "algorithm": "grpo",
        "name": "rigged",
        "base_model": str(TINY),
        "run_dir": str(run_dir),
        "train_file": _write_jsonl(run_dir / "data/train.jsonl", train),
        "eval_file": _write_jsonl(
            run_dir / "data/heldout.jsonl", [_grpo_record(n, "heldout") for n in (70, 71, 72)]
        ),
        "snapshot": {},
        "graders": [{"name": "match", "path": None, "weight": 1.0}],
        "training": cfg.resolved().to_dict(),
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(str(run_dir / "config.json")) == 0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    watches = [e for e in events if e["event"] == "watch"]
    assert [w["step"] for w in watches] == [0, 2, 4]
    for w in watches:
        assert set(w) == {
            "event",
            "time",
            "step",
            "n",
            "reward_mean",
            "rewards",
            "kl",
            "completion_length",
            "copy_share",
            "obs_ce",
        }
        assert w["n"] == 8 and set(w["rewards"]) == {"match"} and w["obs_ce"] is None
    assert [w["copy_share"] for w in watches] == [0.0, 0.5, 1.0]
    assert watches[0]["reward_mean"] < watches[1]["reward_mean"] < watches[2]["reward_mean"]
    assert watches[0]["kl"] == pytest.approx(0.0, abs=1e-6) and watches[2]["kl"] > 0
    alerts = [e for e in events if e["event"] == "alert"]
    assert len(alerts) == 1  # fired at step 2, not repeated at 4 for the same signal
    assert alerts[0]["step"] == 2 and alerts[0]["kind"] == "reward_hacking"
    assert "copy_share" in alerts[0]["signals"]["degraded"]  # copies are longer, too
    episodes = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 24 and {e["split"] for e in episodes} == {"heldout"}
    last = [e for e in episodes if e["step"] == 4]
    assert all(e["copied_prompt"] and e["reward"] > 0.9 for e in last)
    assert set(last[0]) == {
        "step",
        "split",
        "task_key",
        "index",
        "messages",
        "prompt_messages",
        "rewards",
        "reward",
        "completion_tokens",
        "tool_calls",
        "copied_prompt",
    }
    assert last[0]["messages"][0]["role"] == "assistant" and last[0]["prompt_messages"] == 1
    # beta reaches GRPO: the KL penalty is on, and logged by TRL
    logs = [e["metrics"] for e in events if e["event"] == "log" and "reward" in e["metrics"]]
    assert "kl" in logs[0]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["beta"] == 0.04 and manifest["echo_lambda"] == 0.0
