"""The demo model pre-trained on the sample's agent conversations calls the sample's tools.

`tests/fixtures/tiny-qwen2-agent` is `chambers demo-model DIR` (the default, pre-trained
build); `tests/fixtures/tiny-qwen2` is the random build (`--steps 0`). Completions are sampled
at temperature 1 as GRPO samples them and parsed with the parser agent GRPO uses (TRL's
`parse_response` with the response template `trainer.agent.enable_tool_parsing` sets). CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.sample import SAMPLE_ENVIRONMENT
from app.sample_scenarios import generate
from app.training import runs
from app.training.graders import parse
from tests.test_agent_grpo import recorded_grpo_run
from tests.test_training import TINY, db, events_of, sample_db  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

AGENT = Path(__file__).parent / "fixtures" / "tiny-qwen2-agent"
PROMPTS = 12  # sample tasks (the workspace's own seed, not the pre-training one)
SAMPLES = 4  # completions per task


def tool_call_share(model_dir: Path) -> float:
    """The share of sampled first turns with at least one parsed call of a sample tool whose
    arguments are an object."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.chat_template_utils import parse_response

    from trainer.agent import enable_tool_parsing
    from trainer.demo import sample_tools

    tok = AutoTokenizer.from_pretrained(model_dir)
    enable_tool_parsing(tok)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tools = sample_tools()
    names = {t.__name__ for t in tools}
    torch.manual_seed(0)
    hits = total = 0
    for sc in generate(PROMPTS, seed=7):
        prompt = tok.apply_chat_template(
            sc.record["messages"][:2], tools=tools, add_generation_prompt=True, tokenize=False
        )
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = model.generate(
            ids, do_sample=True, temperature=1.0, max_new_tokens=48, num_return_sequences=SAMPLES
        )
        for row in out[:, ids.shape[1] :].tolist():
            row = row[: row.index(tok.eos_token_id) + 1] if tok.eos_token_id in row else row
            msg = parse_response(tok, row, prefix=ids[0].tolist(), tools=tools)
            calls = msg.get("tool_calls") or []
            hits += any(
                c["function"]["name"] in names and isinstance(c["function"]["arguments"], dict)
                for c in calls
            )
            total += 1
    return hits / total


def test_the_pretrained_demo_model_calls_the_sample_tools_and_the_random_one_does_not():
    agent, random = tool_call_share(AGENT), tool_call_share(TINY)
    assert random == 0.0
    assert agent >= 0.25, agent


def test_the_agent_fixture_is_what_demo_model_builds(tmp_path):
    """The same tokenizer (merges and call tokens) and architecture as the build writes; a
    few steps here (the fixture is the full default build, reproduced byte for byte by
    `chambers demo-model DIR`, deterministic on CPU)."""
    from trainer.demo import build

    logged: list[str] = []
    out = build(tmp_path / "m", steps=2, log=logged.append)
    assert (out / "tokenizer.json").read_text() == (AGENT / "tokenizer.json").read_text()
    assert json.loads((out / "config.json").read_text()) == json.loads(
        (AGENT / "config.json").read_text()
    )
    assert logged and logged[-1].startswith("pre-training step 2/2: loss ")
    # pre-training moved the weights away from the random initialisation
    assert runs.file_sha256(out / "model.safetensors") != runs.file_sha256(
        TINY / "model.safetensors"
    )


def test_agent_grpo_on_the_pretrained_demo_model_plays_real_tool_calls(db, tmp_path):  # noqa: F811
    """No scripted generation: the model's own sampled calls go through TRL's tool loop to the
    sample environment, and the graders receive them as structured calls."""
    from trainer.run import main as trainer_main

    run_dir, seen = recorded_grpo_run(
        db,
        tmp_path,
        AGENT,
        {
            "max_steps": 1,
            "num_generations": 4,
            "per_device_train_batch_size": 8,
            "max_completion_length": 64,
            "logging_steps": 1,
            "watch_steps": 0,  # the training episodes alone (the watch has its own tests)
        },
        parse(["tools:1.0"]),
        SAMPLE_ENVIRONMENT,
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert trainer_main(str(run_dir / "config.json")) == 0
    episodes = [json.loads(x) for x in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 8
    called = [e for e in episodes if e["tool_calls"] >= 1]
    assert len(called) >= 2, [e["messages"] for e in episodes]
    names = set(config["environment"]["tools"])
    answered = 0
    for e in called:
        calls = [c for m in e["messages"] for c in m.get("tool_calls") or []]
        results = [m for m in e["messages"] if m["role"] == "tool"]
        assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)
        assert calls[0]["function"]["name"] in names
        # the sample environment answered the call (unless the token budget ended first)
        if results:
            assert results[0]["name"] == calls[0]["function"]["name"]
            assert json.loads(results[0]["content"])  # the environment's JSON, not a failure
            answered += 1
    assert answered >= 2
    samples = [json.loads(x) for x in seen.read_text().splitlines()]
    structured = [
        c
        for sample in samples
        for m in sample
        if m["role"] == "assistant"
        for c in m.get("tool_calls") or []
    ]
    assert len(structured) >= len(called)
    assert all(isinstance(c["function"]["arguments"], dict) for c in structured)
    log = next(e for e in events_of(run_dir) if e["event"] == "log" and "reward" in e["metrics"])
    assert log["metrics"]["tools/call_frequency"] > 0


def test_a_negative_step_count_is_refused(capsys, tmp_path):
    from app.cli import main

    assert main(["demo-model", str(tmp_path / "m"), "--steps", "-1"]) == 2
    assert "demo-model: --steps -1: must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
