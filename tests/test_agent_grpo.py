"""Agent GRPO: environment files checked against the traces' tool schemas, the replay
environment, agent tasks with refusals, and GRPO steps whose episodes call tools (TRL's real
tool loop; the tiny model's generation is scripted so that it emits tool calls). CPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from app.cli import main
from app.sample import SAMPLE_ENVIRONMENT
from app.sample_scenarios import TOOLS, _tool_defs
from app.training import runs
from app.training.environment import EnvironmentFileError, check_environment, environment_class
from app.training.graders import parse
from app.training.pairs import group_of
from app.training.replay import MISS, replay_environment
from app.workspace.db import open_workspace
from app.workspace.models import Trace
from tests.test_training import TINY, db, events_of, sample_db  # noqa: F401 - fixtures

SAMPLE_SCHEMAS = [t for domain in TOOLS for t in _tool_defs(domain)]
REFUND = {
    "type": "function",
    "function": {
        "name": "issue_refund",
        "description": "Refund an order.",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "amount": {"type": "number"},
                "reason": {"type": "string"},
            },
            "required": ["order_id", "amount", "reason"],
        },
    },
}


def _env_file(tmp_path: Path, body: str, name: str = "env.py") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


# ---------------------------------------------------------------------------------------------
# Environment files


def test_the_sample_environment_matches_the_sample_tools_and_is_deterministic():
    report = check_environment(SAMPLE_ENVIRONMENT, SAMPLE_SCHEMAS)
    assert report.kind == "class"
    assert sorted(report.names) == sorted(n for d in TOOLS.values() for n, _, _ in d)
    env = environment_class(SAMPLE_ENVIRONMENT)()
    env.reset(task_key="t")
    # the world is the sample's: the first generated refund conversation's order
    from app.sample_scenarios import generate

    first = generate(1)[0].record["messages"]
    call = next(m for m in first if m.get("tool_calls"))["tool_calls"][0]
    result = next(m for m in first if m["role"] == "tool")["content"]
    order_id = json.loads(call["function"]["arguments"])["order_id"]
    assert json.loads(env.lookup_order(order_id)) == json.loads(result)
    paid = json.loads(result)["amount_paid"]
    assert "exceeds" in env.issue_refund(order_id, paid + 1, "fit")
    done = json.loads(env.issue_refund(order_id, paid, "fit"))
    assert done["status"] == "processed"
    again = environment_class(SAMPLE_ENVIRONMENT)()
    assert json.loads(again.issue_refund(order_id, paid, "fit")) == done  # deterministic ids
    assert "refunded already" in env.issue_refund(order_id, paid, "fit")
    env.reset()
    assert json.loads(env.issue_refund(order_id, paid, "fit"))["status"] == "processed"
    assert json.loads(env.check_refund_policy("final-sale", 3)) == {
        "eligible": False,
        "reason": "final sale",
    }
    assert "no order" in env.lookup_order("NW-000000")


def test_each_mismatch_is_one_line_naming_file_tool_and_field(tmp_path):
    path = _env_file(
        tmp_path,
        '''
class Environment:
    def reset(self, **task):
        pass

    def issue_refund(self, order_id: str, amount: int, note: str) -> str:
        """Refund an order.

        Args:
            order_id: the order
            amount: how much
            note: a note
        """

    def lookup_order(self, order_id, verbose: bool = False) -> str:
        """Look up an order.

        Args:
            verbose: more
        """

    def track_shipment(self, tracking_number: str = "") -> str:
        return ""
''',
    )
    schemas = [
        REFUND,
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "track_shipment",
                "parameters": {
                    "type": "object",
                    "properties": {"tracking_number": {"type": "string"}},
                    "required": ["tracking_number"],
                },
            },
        },
        {"type": "function", "function": {"name": "open_carrier_claim", "parameters": {}}},
    ]
    with pytest.raises(EnvironmentFileError) as err:
        check_environment(path, schemas)
    lines = str(err.value).splitlines()
    want = [
        "tool issue_refund: parameter 'amount': type integer, the traces record number",
        "tool issue_refund: parameter 'reason': missing (the traces pass it)",
        "tool issue_refund: parameter 'note': required here, but the traces never pass it",
        "tool lookup_order: parameter 'order_id': no type hint",
        "tool lookup_order: parameter 'order_id': not described under Args: in the docstring",
        "tool track_shipment: no docstring (TRL shows the model its description)",
        "tool track_shipment: parameter 'tracking_number': not described under Args: in the "
        "docstring",
        "tool track_shipment: parameter 'tracking_number': optional here, required in the traces",
        "tool open_carrier_claim: not defined (the traces call it; defined: issue_refund, "
        "lookup_order, track_shipment)",
    ]
    assert sorted(lines) == sorted(f"{path}: {w}" for w in want)


def test_broken_files_are_reported_not_raised(tmp_path):
    cases = {
        "missing.py": None,
        "crash.py": "x = 1 / 0\n",
        "empty.py": "VALUE = 1\n",
        "noreset.py": 'class Environment:\n    def ping(self) -> str:\n        """Ping."""\n',
    }
    messages = {}
    for name, body in cases.items():
        path = tmp_path / name
        if body is not None:
            path.write_text(body)
        with pytest.raises(EnvironmentFileError) as err:
            check_environment(path, [])
        messages[name] = str(err.value)
    assert messages["missing.py"] == f"{tmp_path / 'missing.py'}: no such environment file"
    assert messages["crash.py"] == (
        f"{tmp_path / 'crash.py'}: cannot load (ZeroDivisionError: division by zero)"
    )
    assert messages["empty.py"] == (
        f"{tmp_path / 'empty.py'}: cannot load (defines neither a class Environment "
        "nor a TOOLS list of functions)"
    )
    assert messages["noreset.py"] == (
        f"{tmp_path / 'noreset.py'}: class Environment: no reset(self, **task) method"
    )
    hang = _env_file(tmp_path, "import time\ntime.sleep(60)\n", "hang.py")
    with pytest.raises(EnvironmentFileError, match=r"hang.py: did not load within 2 s"):
        check_environment(hang, [], timeout=2)


def test_a_tools_list_of_functions_is_an_environment(tmp_path):
    path = _env_file(
        tmp_path,
        '''
def issue_refund(order_id: str, amount: float, reason: str) -> dict:
    """Refund an order.

    Args:
        order_id: The order.
        amount: How much.
        reason: Why.
    """
    return {"refunded": amount, "order": order_id}

TOOLS = [issue_refund]
''',
    )
    report = check_environment(path, [REFUND])
    assert report.kind == "functions" and report.names == ["issue_refund"]
    env = environment_class(path)()
    env.reset(task_key="t")
    # a dict result reaches the model as JSON, not Python's repr
    assert json.loads(env.issue_refund(order_id="A", amount=2.5, reason="r")) == {
        "refunded": 2.5,
        "order": "A",
    }


# ---------------------------------------------------------------------------------------------
# Agent tasks and replay


def _prepare(db_path, tmp_path, environment, graders=("match:1.0",), name="agent", **training):
    ws = open_workspace(db_path)
    with ws.session() as s:
        run = runs.prepare_run(
            s,
            "grpo",
            "all",
            TINY,
            tmp_path / name,
            {"max_steps": 1, "num_generations": 2, "max_completion_length": 48, **training},
            parse(list(graders)),
            name=name,
            force=True,
            environment=str(environment),
        )
        config = run.config
    ws.close()
    return config


def _tasks(config) -> list[dict]:
    out = []
    for key in ("train_file", "eval_file"):
        out += [json.loads(x) for x in Path(config[key]).read_text().splitlines()]
    return out


def test_agent_tasks_refuse_what_a_grader_cannot_judge(db, tmp_path):  # noqa: F811
    loose = _prepare(db, tmp_path, "replay", ("match:1.0",), "loose")
    strict = _prepare(db, tmp_path, "replay", ("match:1.0", "tools:1.0"), "strict")
    loose_tasks, strict_tasks = _tasks(loose), _tasks(strict)
    no_calls = [t for t in loose_tasks if not t["reference"]["tool_calls"]]
    assert no_calls, "the sample has answer-only references"
    reason = "the reference makes no tool call (tools grader)"
    assert strict["data"]["refused"][reason] == len(no_calls)
    assert reason not in loose["data"]["refused"]
    assert len(strict_tasks) == len(loose_tasks) - len(no_calls)
    assert all(t["reference"]["tool_calls"] for t in strict_tasks)
    # one task per task of the snapshot, split kept; the prompt stops before the agent acts
    ws = open_workspace(db)
    with ws.session() as s:
        snap = runs.get_snapshot(s, "all")
        splits = {g: sp for p, sp in runs.snapshot_rows(s, snap) for g in [group_of(p)]}
    refused = sum(loose["data"]["refused"].values())
    assert len(loose_tasks) + refused == len(splits)
    for t in loose_tasks:
        assert t["split"] == splits[t["task_key"]]
        assert [m["role"] for m in t["prompt"]][-1] == "user"
        assert t["tools"] and t["kind"] == "agent"
    assert loose["data"]["train"] == sum(t["split"] == "train" for t in loose_tasks)


def test_replay_answers_recorded_calls_and_says_so_otherwise(db, tmp_path):  # noqa: F811
    config = _prepare(db, tmp_path, "replay")
    env_info = config["environment"]
    assert env_info["kind"] == "replay" and env_info["path"].endswith("data/replay.jsonl")
    task = next(t for t in _tasks(config) if t["reference"]["tool_calls"])
    ws = open_workspace(db)
    with ws.session() as s:
        trace = s.get(Trace, task["trace_ids"][0])
        results = {
            p["call_id"]: p["content"]
            for m in trace.messages
            if m["role"] == "tool"
            for p in m["parts"]
        }
        call = next(p for m in trace.messages for p in m["parts"] if p.get("type") == "tool_call")
        other = s.scalar(select(Trace.task_key).where(Trace.task_key != task["task_key"]).limit(1))
    env = replay_environment(env_info["path"])()
    env.reset(**{**task, "prompt": task["prompt"]})
    tool = getattr(env, call["name"])
    assert tool(**call["arguments"]) == results[call["id"]]
    changed = {k: (v + "0" if isinstance(v, str) else v) for k, v in call["arguments"].items()}
    assert tool(**changed) == MISS
    env.reset(task_key=other)
    assert tool(**call["arguments"]) == MISS
    with pytest.raises(TypeError):
        tool(no_such_argument=1)
    # a real signature and docstring: the schema TRL shows the model is the recorded one
    from transformers.utils import get_json_schema

    schema = get_json_schema(tool)["function"]
    recorded = next(x for x in task["tools"] if x["function"]["name"] == call["name"])
    assert schema["name"] == call["name"]
    assert schema["description"] == recorded["function"]["description"]
    assert schema["parameters"]["required"] == recorded["function"]["parameters"]["required"]
    assert {k: v["type"] for k, v in schema["parameters"]["properties"].items()} == {
        k: v["type"] for k, v in recorded["function"]["parameters"]["properties"].items()
    }


# ---------------------------------------------------------------------------------------------
# GRPO with tool calls


def recording_grader(tmp_path: Path) -> tuple[Path, Path]:
    """A user grader that appends every sample it receives to a JSON-lines file and scores 1:
    (the grader file, the file it writes)."""
    seen = tmp_path / "seen.jsonl"
    grader = tmp_path / "recorder.py"
    grader.write_text(
        "import json\n"
        "def grade(sample, reference):\n"
        f"    with open({str(seen)!r}, 'a') as f:\n"
        "        f.write(json.dumps(sample) + '\\n')\n"
        "    return 1.0\n"
    )
    return grader, seen


def add_grader(run_dir: Path, grader: Path) -> None:
    """A grader joins a prepared run (after preparation: the grader check would spawn a user
    grader once per trace)."""
    config = json.loads((run_dir / "config.json").read_text())
    config["graders"].append(parse([], [grader])[-1].as_dict())
    (run_dir / "config.json").write_text(json.dumps(config))


def recorded_grpo_run(
    db_path: str,
    tmp_path: Path,
    model: Path,
    training: dict,
    graders: list,
    environment: Path | None = None,
) -> tuple[Path, Path]:
    """A GRPO run prepared on every pair snapshot of `db_path` with the recording grader added:
    (the run folder, the file the grader writes each sample to)."""
    grader, seen = recording_grader(tmp_path)
    ws = open_workspace(db_path)
    with ws.session() as s:
        run = runs.prepare_run(
            s,
            "grpo",
            "all",
            model,
            tmp_path / "run",
            training,
            graders,
            force=True,
            **({"environment": str(environment)} if environment else {}),
        )
        run_dir = Path(run.run_dir)
    ws.close()
    add_grader(run_dir, grader)
    return run_dir, seen


def _scripted_generate(tok):
    """Generation that acts like an agent: on the first turn it calls the tool the user's
    message needs (with the id from the message), after a tool result it answers. Token ids
    come from the tokenizer; everything after generation (parsing, TRL's tool loop, the
    environment, graders, the loss) is the real path."""
    pad = tok.pad_token_id

    def turn(text: str) -> str:
        last_user = text.rsplit("<|im_start|>user\n", 1)[-1]
        if text.rstrip().endswith("<|im_start|>assistant") and "<|im_start|>tool" in last_user:
            return "Done: the tool answered.<|im_end|>"
        patterns = [
            ("lookup_order", "order_id", r"order (NW-\d+)"),
            ("track_shipment", "tracking_number", r"Tracking (1Z\d+)"),
            ("lookup_employee", "email", r"\(([\w.]+@contoso\.com)\)"),
        ]
        for name, arg, pat in patterns:
            m = re.search(pat, last_user)
            if m:
                call = {"name": name, "arguments": {arg: m.group(1)}}
                return f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>"
        call = {"name": "create_ticket", "arguments": {"summary": "outage", "priority": "P1"}}
        return f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>"

    def generate(self, input_ids=None, attention_mask=None, **kw):
        rows = []
        for ids in input_ids.tolist():
            text = tok.decode([i for i in ids if i != pad], skip_special_tokens=False)
            rows.append(tok(turn(text), add_special_tokens=False)["input_ids"])
        width = max(len(r) for r in rows)
        out = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, out.to(input_ids.device)], dim=1)

    return generate


def test_a_grpo_step_plays_episodes_with_tool_calls_graded_as_structured_calls(
    db,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from transformers import AutoTokenizer
    from transformers.generation.utils import GenerationMixin

    from trainer.run import main as trainer_main

    run_dir, seen = recorded_grpo_run(
        db,
        tmp_path,
        TINY,
        {
            "max_steps": 1,
            "num_generations": 2,
            "per_device_train_batch_size": 4,
            "max_completion_length": 256,
            "logging_steps": 1,
        },
        parse(["tools:1.0"]),
        SAMPLE_ENVIRONMENT,
    )
    tok = AutoTokenizer.from_pretrained(TINY)
    monkeypatch.setattr(GenerationMixin, "generate", _scripted_generate(tok))
    assert trainer_main(str(run_dir / "config.json")) == 0
    episodes = [json.loads(x) for x in (run_dir / "episodes.jsonl").read_text().splitlines()]
    train = [e for e in episodes if e["split"] == "train"]
    assert len(train) == 4 and {e["step"] for e in train} == {1}
    # the reward-hacking watch played held-out tasks in the same environment (written by the
    # watch alone: the training log is silent while it generates)
    held = [e for e in episodes if e["split"] == "heldout"]
    assert held and len(held) + len(train) == len(episodes)
    assert all(e["tool_calls"] == 1 for e in held)
    watches = [e for e in events_of(run_dir) if e["event"] == "watch"]
    assert watches and all(w["n"] > 0 for w in watches)
    for e in train:
        calls = [c for m in e["messages"] for c in m.get("tool_calls") or []]
        tools = [m for m in e["messages"] if m["role"] == "tool"]
        assert len(calls) == 1 and e["tool_calls"] == 1
        assert isinstance(calls[0]["function"]["arguments"], dict)
        # the sample environment answered from the sample's world (no error for a real id)
        assert tools and tools[0]["name"] == calls[0]["function"]["name"]
        assert "error" not in json.loads(tools[0]["content"])
        assert e["messages"][-1] == {"role": "assistant", "content": "Done: the tool answered."}
        assert e["rewards"]["tools"] > 0 and e["rewards"]["recorder"] == 1.0
        assert e["split"] == "train" and e["prompt_messages"] == 2
        assert e["completion_tokens"] > 0 and e["copied_prompt"] is False
    # the user grader received the structured episode: calls with object arguments, results
    samples = [json.loads(x) for x in seen.read_text().splitlines()]
    assert len(samples) >= 4 + len(held)  # training's episodes and the watch's
    for sample in samples:
        assert [m["role"] for m in sample] == ["assistant", "tool", "assistant"]
        assert isinstance(sample[0]["tool_calls"][0]["function"]["arguments"], dict)
    log = next(e for e in events_of(run_dir) if e["event"] == "log" and "reward" in e["metrics"])
    assert log["metrics"]["tools/call_frequency"] == 1.0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["kind"] == "file"
    assert manifest["environment"]["sha256"] == runs.file_sha256(run_dir / "environment.py")
    assert "environment.py" in manifest["artifacts"]["sha256"]


def test_cli_agent_grpo_on_the_sample_end_to_end(db, tmp_path, capsys):  # noqa: F811
    out_dir = tmp_path / "agent"
    base = ["--db", db, "train", "grpo", "--snapshot", "all", "--model", str(TINY)]
    code = main([*base, "--out", str(tmp_path / "x"), "--environment", str(tmp_path / "no.py")])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.strip() == f"chambers: error: {tmp_path / 'no.py'}: no such environment file"
    )
    code = main(
        [
            *base,
            "--out",
            str(out_dir),
            "--environment",
            "sample",
            "--grader",
            "match:1.0",
            "--grader",
            "tools:0.5",
            "--force",
            "--max-steps",
            "1",
            "--num-generations",
            "2",
            "--max-completion-length",
            "16",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    config = json.loads((out_dir / "config.json").read_text())
    assert config["environment"]["source"] == str(SAMPLE_ENVIRONMENT.resolve())
    refused = config["data"]["refused"]
    assert f"refused {sum(refused.values())} task(s)" in out
    assert "the reference makes no tool call (tools grader)" in out
    assert f"agent GRPO: {config['data']['train']} train" in out
    episodes = [json.loads(x) for x in (out_dir / "episodes.jsonl").read_text().splitlines()]
    assert episodes and all(set(e["rewards"]) == {"match", "tools"} for e in episodes)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["environment"]["tools"] == config["environment"]["tools"]
    dpo = ["--db", db, "train", "dpo", "--snapshot", "all", "--model", str(TINY)]
    code = main([*dpo, "--out", str(tmp_path / "y"), "--environment", "replay"])
    assert code == 2 and "--environment is for GRPO, not DPO" in capsys.readouterr().err


def test_tool_calls_are_parsed_for_the_demo_template_and_refused_for_unknown_ones():
    from transformers import AutoTokenizer

    from trainer.agent import enable_tool_parsing
    from trainer.data import DataError

    tok = AutoTokenizer.from_pretrained(TINY)
    assert enable_tool_parsing(tok) == "Hermes/Qwen <tool_call> JSON"
    text = '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "NW-1"}}</tool_call>'
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_dict=False
    )
    parsed = tok.parse_response(tok(text + "<|im_end|>")["input_ids"], prefix=prompt)
    assert parsed["tool_calls"][0]["function"] == {
        "name": "lookup_order",
        "arguments": {"order_id": "NW-1"},
    }
    plain = AutoTokenizer.from_pretrained(TINY)
    plain.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}"
    )
    with pytest.raises(DataError, match="writes tool calls in a form Chambers cannot parse"):
        enable_tool_parsing(plain)


def test_pairs_grpo_graders_receive_parsed_tool_calls_too(db, tmp_path, monkeypatch):  # noqa: F811
    """Without an environment, GRPO on the pairs' prompts: a completion that calls a tool
    reaches the graders as a message with a structured call (arguments an object), not as
    text with the call's special tokens stripped; the manifest names the parser."""
    from transformers import AutoTokenizer
    from transformers.generation.utils import GenerationMixin

    from trainer.run import main as trainer_main

    run_dir, seen = recorded_grpo_run(
        db,
        tmp_path,
        TINY,
        {
            "max_steps": 1,
            "num_generations": 2,
            "per_device_train_batch_size": 4,
            "max_completion_length": 64,
            "watch_steps": 0,
        },
        parse(["match:1.0"]),
    )
    tok = AutoTokenizer.from_pretrained(TINY)
    call = '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "NW-1"}}</tool_call>'
    ids = tok(call + "<|im_end|>", add_special_tokens=False)["input_ids"]

    def generate(self, input_ids=None, attention_mask=None, **kw):  # every turn: that call
        out = torch.tensor([ids] * input_ids.shape[0], device=input_ids.device)
        return torch.cat([input_ids, out], dim=1)

    monkeypatch.setattr(GenerationMixin, "generate", generate)
    assert trainer_main(str(run_dir / "config.json")) == 0
    samples = [json.loads(x) for x in seen.read_text().splitlines()]
    assert len(samples) == 4
    calls = [c for sample in samples for m in sample for c in m.get("tool_calls") or []]
    assert len(calls) == 4
    assert all(
        c["function"] == {"name": "lookup_order", "arguments": {"order_id": "NW-1"}} for c in calls
    )
    assert not any("tool_call" in (m.get("content") or "") for s_ in samples for m in s_)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data"]["tool_call_parser"] == "Hermes/Qwen <tool_call> JSON"
