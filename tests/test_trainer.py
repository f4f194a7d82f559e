"""The trainer side: the typed run config, SFT and KTO from verdicts, truncation that keeps the
corrected step, sharded-model hashes, rank-0 writes, resume, runs that outlive their launcher,
a full disk. CPU, on the committed tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from app.training.config import ConfigError, TrainConfig
from app.training.examples import ExampleFilter, derive_examples
from app.training.manifest import base_model_hashes, verify_manifest
from app.workspace.db import open_workspace
from app.workspace.models import Review, Trace
from tests.test_training import TINY, db, events_of, sample_db  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# The config dataclass


def test_config_round_trips_and_names_the_bad_field(tmp_path):
    cfg = TrainConfig.for_model("kto", 10**6)
    assert cfg.per_device_train_batch_size >= 2 and cfg.loss_type == "kto"
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    assert cfg.lora_alpha is None and cfg.resolved().lora_alpha == 2 * cfg.lora_r
    assert TrainConfig(lora_r=4, lora_alpha=7).resolved().lora_alpha == 7
    big = TrainConfig.for_model("dpo", 7 * 10**9)
    assert big.learning_rate < cfg.learning_rate and big.gradient_checkpointing
    with pytest.raises(ConfigError, match="x.json: unknown option\\(s\\) lora_rank"):
        TrainConfig.from_json('{"lora_rank": 8}', "x.json")
    with pytest.raises(ConfigError, match='x.json: lora_r must be int, not "8"'):
        TrainConfig.from_json('{"lora_r": "8"}', "x.json")
    with pytest.raises(ConfigError, match="learning_rate must be positive"):
        TrainConfig.from_dict({"learning_rate": 0})
    assert TrainConfig.from_dict({"learning_rate": 1}).learning_rate == 1.0
    helps = TrainConfig.help_lines()
    assert set(helps) == set(cfg.to_dict()) and all(len(h) > 10 for h in helps.values())
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ConfigError, match="c.json: not JSON"):
        TrainConfig.from_file(tmp_path / "c.json")


def test_train_cli_has_an_option_with_help_for_every_config_field(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, help_line in TrainConfig.help_lines().items():
        assert f"--{name.replace('_', '-')}" in out
        assert " ".join(help_line.split())[:40] in out


def test_the_trainer_loads_no_sqlalchemy():
    code = (
        "import sys, trainer.run, trainer.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'alembic', 'PySide6')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert out.stdout.strip() == "[]"
    help_ = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trainer", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "sqlalchemy" not in help_.stderr and "run" in help_.stdout


# ---------------------------------------------------------------------------------------------
# Data: step records, through Arrow, fitted to max_length

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "integer"}},
                "required": ["order_id"],
            },
        },
    }
]


def long_record(turns: int = 12, completion: str = "Your refund of $59.00 is on its way.") -> dict:
    """A step record: system, task, many tool rounds, then the assistant step."""
    prompt = [
        {"role": "system", "content": "You are the support agent of Acme."},
        {"role": "user", "content": "TASK-MARKER: refund order 42 please"},
    ]
    for i in range(turns):
        prompt += [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "id": f"c{i}",
                        "function": {"name": "lookup_order", "arguments": {"order_id": 40 + i}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "content": f"ROUND-{i} " + "status ok " * 12},
        ]
    return {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": completion}],
        "tools": TOOLS,
        "label": True,
    }


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def test_a_long_prompt_is_shortened_from_the_middle_and_the_step_is_kept(tok):
    from trainer.data import fit_records, render_ids

    rec = long_record()
    full = len(render_ids(tok, rec["prompt"] + rec["completion"], TOOLS))
    rows, report = fit_records(tok, [rec], "sft", full // 3, 95, 4096)
    assert report.shortened == 1 and report.kept == 1 and report.dropped == {}
    kept = rows[0]
    text = tok.decode(render_ids(tok, kept["prompt"] + kept["completion"], TOOLS))
    assert len(render_ids(tok, kept["prompt"] + kept["completion"], TOOLS)) <= full // 3
    # system and task kept, the last rounds before the step kept, the oldest removed
    assert kept["prompt"][:2] == rec["prompt"][:2]
    assert "ROUND-11" in text and "ROUND-0 " not in text
    assert kept["prompt"][-2:] == rec["prompt"][-2:]
    assert kept["completion"] == rec["completion"]  # the step is never cut
    assert kept["prompt"][2]["role"] == "assistant"  # no tool result without its call
    assert report.messages_removed == len(rec["prompt"]) - len(kept["prompt"])


def test_examples_that_cannot_fit_are_dropped_with_a_reason_and_max_length_comes_from_data(tok):
    from trainer.data import fit_records, render_ids

    short = long_record(turns=0)
    huge_step = long_record(turns=0, completion="refund " * 400)
    budget = len(render_ids(tok, short["prompt"] + short["completion"], TOOLS)) + 8
    rows, report = fit_records(tok, [short, huge_step], "sft", budget, 95, 4096)
    assert report.dropped == {"completion_too_long": 1} and report.kept == 1
    recs = [long_record(turns=n) for n in range(20)]
    lengths = sorted(len(render_ids(tok, r["prompt"] + r["completion"], TOOLS)) for r in recs)
    rows, report = fit_records(tok, recs, "sft", None, 90, 100_000)
    assert report.max_length % 64 == 0 and lengths[17] <= report.max_length < lengths[17] + 64
    assert report.shortened == sum(1 for n in lengths if n > report.max_length) == 2
    assert "p90 of 20 examples" in report.max_length_source
    _, capped = fit_records(tok, recs, "sft", None, 90, 256)
    assert capped.max_length == 256  # the model's cap wins over the data


def test_structured_arguments_survive_arrow_and_render_once(tok):
    from datasets import Dataset

    from trainer.data import arrow_rows, wrap_tokenizer

    rec = long_record(turns=2)
    rec["prompt"][2]["tool_calls"][0]["function"]["arguments"] = {"order_id": 7, "note": 'a"b'}
    direct = tok.apply_chat_template(rec["prompt"], tools=TOOLS, tokenize=False)
    ds = Dataset.from_list(arrow_rows([rec, long_record(turns=1)], "sft"))
    wrap_tokenizer(tok)
    via_arrow = tok.apply_chat_template(
        ds[0]["prompt"], tools=json.loads(ds[0]["tools"]), tokenize=False
    )
    assert via_arrow == direct
    assert '"arguments":{"order_id": 7, "note": "a\\"b"}' in direct.replace(": {", ":{")
    assert '\\"order_id\\"' not in via_arrow  # not double-encoded


def test_sft_trains_on_the_assistant_step_only(tok, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.run import _Tracker, build_trainer, make_callback

    tok = AutoTokenizer.from_pretrained(TINY)
    rec = long_record(turns=2, completion="STEP-TEXT refund sent")
    cfg = TrainConfig.for_model("sft", 10**6).resolved()
    model = AutoModelForCausalLM.from_pretrained(TINY)
    trainer, _ = build_trainer(
        "sft",
        model,
        tok,
        LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
        cfg,
        dict(output_dir=str(tmp_path), max_steps=1, report_to=[], use_cpu=True),
        [rec],
        [],
        {},
        make_callback(_Tracker(_NoEvents())),
        Dataset,
    )
    row = trainer.train_dataset[0]
    trained = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
    rendered = tok.apply_chat_template(
        rec["prompt"] + rec["completion"], tools=TOOLS, tokenize=False
    )
    prompt_part = tok.apply_chat_template(
        rec["prompt"], tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    assert tok.decode(trained) == rendered[len(prompt_part) :]
    assert tok.decode(trained).startswith("STEP-TEXT") and "<|im_end|>" in tok.decode(trained)
    assert "TASK-MARKER" not in tok.decode(trained) and "ROUND-1" not in tok.decode(trained)


class _NoEvents:
    def emit(self, event, **data):
        return {"event": event, **data}


# ---------------------------------------------------------------------------------------------
# Step examples from verdicts; SFT and KTO end to end


def test_verdicts_become_step_examples_gold_wins_and_conflicts_drop(db):  # noqa: F811
    from app.training.pairs import to_chat
    from app.workspace.models import Adjudication

    ws = open_workspace(db)
    with ws.session() as s:
        examples, left_out = derive_examples(s, ExampleFilter())
        assert {k for e in examples for k in e.kinds} >= {"approve", "modify", "reject"}
        for e in examples:  # one assistant message, never a tool or user turn
            assert len(e.completion) == 1 and e.completion[0]["role"] == "assistant"
            assert (
                e.prompt and e.prompt[-1]["role"] != "assistant" or e.prompt[-1].get("tool_calls")
            )
        gold = {a.trace_id: a for a in s.scalars(select(Adjudication))}
        reviews = list(s.scalars(select(Review).where(Review.status == "submitted")))
        # a modify review: its changed step is desirable as corrected, the original undesirable
        r = next(
            r
            for r in reviews
            if r.decision == "modify" and r.trace_id not in gold and r.corrected_messages
        )
        trace = s.get(Trace, r.trace_id)
        k = next(
            i
            for i, (a, b) in enumerate(zip(trace.messages, r.corrected_messages, strict=False))
            if a != b
        )
        mine = [e for e in examples if r.id in e.review_ids]
        good = [e for e in mine if e.label]
        bad = [e for e in mine if not e.label]
        # the review's examples come from its correction, or from its judge's step labels
        assert good and all({"modify", "step_label"} & set(e.kinds) for e in mine)
        assert good[0].prompt == to_chat(r.corrected_messages[: good[0].step])
        assert good[0].completion == to_chat([r.corrected_messages[good[0].step]])
        if trace.messages[k]["role"] == "assistant":
            assert bad and bad[0].completion == to_chat([trace.messages[k]])
        # gold wins: an adjudicated trace's examples come from the lead only
        tid = next(iter(gold))
        assert all(e.adjudicated for e in examples if e.trace_id == tid)
        only_gold, _ = derive_examples(s, ExampleFilter(adjudicated_only=True))
        assert only_gold and {e.trace_id for e in only_gold} <= set(gold)
        # a judge approving what another judge rejected (same step): a conflict, neither kept
        t = s.get(
            Trace,
            next(e.trace_id for e in examples if "reject" in e.kinds and e.trace_id not in gold),
        )
        approver = next(x for x in reviews if x.trace_id == t.id)
        before = left_out["conflicts"]
        approver.decision, approver.corrected_messages = "approve", None
        s.flush()
        again, left = derive_examples(s, ExampleFilter())
        assert left["conflicts"] > before or not any(
            e.trace_id == t.id and not e.label for e in again
        )
    ws.close()


def test_sft_and_kto_from_a_verdicts_snapshot_end_to_end(db, tmp_path, capsys):  # noqa: F811
    code, out, err = cli(
        capsys, "--db", db, "snapshot", "create", "verdicts", "--from", "verdicts", "--json"
    )
    assert code == 0, err
    snap = json.loads(out)["counts"]
    assert snap["desirable"] > 0 and snap["undesirable"] > 0
    # the wrong kind of snapshot for the method is a clear error, nothing written
    code, _, err = cli(
        capsys,
        "--db",
        db,
        "train",
        "sft",
        "--snapshot",
        "all",
        "--model",
        str(TINY),
        "--out",
        str(tmp_path / "bad"),
    )
    assert code == 2 and "holds preference pairs" in err and not (tmp_path / "bad").exists()
    code, _, err = cli(
        capsys,
        "--db",
        db,
        "train",
        "dpo",
        "--snapshot",
        "verdicts",
        "--model",
        str(TINY),
        "--out",
        str(tmp_path / "bad"),
    )
    assert code == 2 and "holds verdicts" in err
    for method in ("sft", "kto"):
        out_dir = tmp_path / method
        code, out, err = cli(
            capsys,
            "--db",
            db,
            "train",
            method,
            "--snapshot",
            "verdicts",
            "--model",
            str(TINY),
            "--out",
            str(out_dir),
            "--max-steps",
            "2",
            "--quiet",
        )
        assert code == 0, out + err
        ev = events_of(out_dir)
        assert [e["event"] for e in ev][:3] == ["start", "data", "train_begin"]
        assert ev[-1]["event"] == "finished"
        logs = [e for e in ev if e["event"] == "log" and "loss" in e["metrics"]]
        assert [e["step"] for e in logs] == [1, 2]
        fit = ev[1]["train"]
        assert fit["kept"] + fit["dropped_total"] == fit["examples"] and fit["kept"]
        assert fit["max_length_source"].startswith("p95 of ")  # from the data
        assert fit["max_length"] >= fit["length_percentiles"]["p95"] or fit["max_length"] == 2048
        manifest = json.loads((out_dir / "manifest.json").read_text())
        assert manifest["algorithm"] == method and manifest["base_weights_unchanged"] is True
        data = manifest["data"]
        assert data["source"] == "verdicts" and data["fit"]["train"] == fit
        assert manifest["config"]["lora_alpha"] == 2 * manifest["config"]["lora_r"]
        if method == "sft":
            assert data["undesirable"] == 0 and "reject" not in data["judgements"]
            assert "mean_token_accuracy" in logs[0]["metrics"]
        else:
            assert data["undesirable"] > 0 and "reject" in data["judgements"]
            assert {"kl", "rewards/chosen"} <= set(logs[0]["metrics"]) or "kl" in logs[0]["metrics"]
            begin = ev[2]
            assert begin["desirable"] + begin["undesirable"] == begin["n_train"]
            n_d, n_u = begin["desirable"], begin["undesirable"]
            ratio = begin["desirable_weight"] * n_d / (begin["undesirable_weight"] * n_u)
            assert 1 - 1e-9 <= ratio <= 4 / 3  # KTO paper, eq. 8
        assert verify_manifest(out_dir) == (True, [])


# ---------------------------------------------------------------------------------------------
# Runs that hold at scale


def test_every_shard_of_a_sharded_model_is_hashed_and_a_zeroed_shard_is_caught(tmp_path):
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(TINY).save_pretrained(sharded, max_shard_size="100KB")
    shards = sorted(p.name for p in sharded.glob("model-*.safetensors"))
    assert len(shards) >= 3 and (sharded / "model.safetensors.index.json").exists()
    hashes = base_model_hashes(sharded)
    assert set(hashes) == {"config.json", "model.safetensors.index.json", *shards}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(
        json.dumps(
            {"artifacts": {"sha256": {}}, "base_model": {"path": str(sharded), "sha256": hashes}}
        )
    )
    assert verify_manifest(run_dir) == (True, [])
    victim = sharded / shards[1]
    victim.write_bytes(b"\0" * victim.stat().st_size)  # same size, zeroed
    assert verify_manifest(run_dir) == (False, [f"base model {shards[1]}: changed or missing"])


def _prepared(db, tmp_path, name, overrides, method="dpo", snapshot="all"):  # noqa: F811
    from app.training import runs

    ws = open_workspace(db)
    with ws.session() as s:
        run = runs.prepare_run(s, method, snapshot, TINY, tmp_path / name, overrides, name=name)
        rid = run.id
    return ws, rid


def test_two_processes_under_torchrun_write_each_event_once(db, tmp_path):  # noqa: F811
    ws, _ = _prepared(db, tmp_path, "ddp", {"max_steps": 2, "per_device_train_batch_size": 2})
    ws.close()
    run_dir = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            "-m",
            "trainer",
            "run",
            str(run_dir / "config.json"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ev = events_of(run_dir)
    kinds = [e["event"] for e in ev]
    assert kinds.count("start") == 1 and kinds.count("finished") == 1
    assert [e["step"] for e in ev if e["event"] == "log" and "loss" in e["metrics"]] == [1, 2]
    assert ev[0]["world_size"] == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and verify_manifest(run_dir) == (True, [])
    # the documented multi-GPU launch: the same data-parallel setup through accelerate
    from accelerate.commands.config.config_args import load_config_from_file

    acc = load_config_from_file(str(ROOT / "trainer" / "accelerate" / "multi_gpu.yaml"))
    assert acc.distributed_type == "MULTI_GPU" and acc.mixed_precision == "bf16"


def test_a_cancelled_run_resumes_from_its_checkpoint_and_old_ones_are_pruned(
    db,  # noqa: F811
    tmp_path,
    capsys,
    request,
):
    from app.training import runs
    from app.workspace.models import TrainingRun

    ws, rid = _prepared(
        db, tmp_path, "res", {"max_steps": 400, "save_steps": 2, "save_total_limit": 2}
    )
    with ws.session() as s:
        runs.launch(s, s.get(TrainingRun, rid))
        pid = s.get(TrainingRun, rid).pid
    request.addfinalizer(lambda: _stop(pid))
    run_dir = tmp_path / "res"
    deadline = time.time() + 300
    while time.time() < deadline:
        if sum(e["event"] == "checkpoint" for e in runs.read_events(run_dir)[0]) >= 3:
            break
        time.sleep(0.2)
    with ws.session() as s:
        assert "cancelling" in runs.cancel_run(s, rid)
    while time.time() < deadline:
        with ws.session() as s:
            if runs.sync(s, s.get(TrainingRun, rid)).status != "running":
                break
        time.sleep(0.2)
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert len(ckpts) == 2  # save_total_limit: the oldest were pruned
    stopped = events_of(run_dir)[-1]
    assert stopped["event"] == "cancelled"
    at = int(Path(stopped["checkpoint"]).name.split("-")[1])
    # a smaller budget so the resumed run ends soon after
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["training"]["max_steps"] = at + 2
    (run_dir / "config.json").write_text(json.dumps(cfg))
    ws.close()
    code, out, err = cli(capsys, "--db", db, "runs", "resume", "res", "--quiet")
    assert code == 0, out + err
    ev = events_of(run_dir)
    resumed = [i for i, e in enumerate(ev) if e["event"] == "resume"]
    assert len(resumed) == 1 and ev[resumed[0] + 1]["event"] == "start"
    assert ev[resumed[0] + 1]["resume_from"].endswith(f"checkpoint-{at}")
    after = [e["step"] for e in ev[resumed[0] :] if e["event"] == "log" and "loss" in e["metrics"]]
    assert after == [at + 1, at + 2]  # continues where it stopped, not from step 1
    assert ev[-1]["event"] == "finished"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed_from"].endswith(f"checkpoint-{at}")
    assert [m["step"] for m in manifest["metrics"] if "loss" in m][-2:] == [at + 1, at + 2]
    code, out, _ = cli(capsys, "--db", db, "runs", "show", "res", "--json")
    assert json.loads(out)["status"] == "finished"
    code, _, err = cli(capsys, "--db", db, "runs", "resume", "res")
    assert code == 2 and "only a cancelled or failed run resumes" in err


# ---------------------------------------------------------------------------------------------
# Runs outlive their launcher; a full disk says so


def test_killing_chambers_train_leaves_the_trainer_running(db, tmp_path):  # noqa: F811
    from app.training import runs
    from app.workspace.models import TrainingRun

    run_dir = tmp_path / "orphan"
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--db",
            db,
            "train",
            "dpo",
            "--snapshot",
            "all",
            "--model",
            str(TINY),
            "--out",
            str(run_dir),
            "--max-steps",
            "400",
            "--save-steps",
            "1000",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not any(
        e["event"] == "log" for e in runs.read_events(run_dir)[0]
    ):
        time.sleep(0.2)
    # a closed terminal: SIGHUP to the launcher's group, its stdout pipe closed
    os.killpg(launcher.pid, signal.SIGHUP)
    launcher.stdout.close()
    launcher.wait(timeout=30)
    ws = open_workspace(db)
    with ws.session() as s:
        run = s.scalar(select(TrainingRun).where(TrainingRun.name == "orphan"))
        pid, rid = run.pid, run.id
    try:
        seen = len(runs.read_events(run_dir)[0])
        time.sleep(3)  # the issue saw the trainer die within 3 s of its launcher
        assert runs.process_alive(pid)
        while time.time() < deadline and len(runs.read_events(run_dir)[0]) == seen:
            time.sleep(0.2)
        assert len(runs.read_events(run_dir)[0]) > seen  # still training, still logging
        with ws.session() as s:
            assert runs.sync(s, s.get(TrainingRun, rid)).status == "running"
            runs.cancel_run(s, rid)
        while time.time() < deadline and runs.process_alive(pid):
            time.sleep(0.2)
        with ws.session() as s:
            assert runs.sync(s, s.get(TrainingRun, rid)).status == "cancelled"
    finally:
        _stop(pid)
        ws.close()


def _stop(pid: int | None) -> None:
    """A trainer a failed test left running (its own process group) is ended."""
    from app.training import runs

    if pid and runs.process_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def test_the_trainer_reports_a_full_disk_and_leaves_no_part_files(tmp_path, monkeypatch):
    import errno

    from trainer import run as trainer_run

    target = tmp_path / "manifest.json"

    def full(fd):  # the data is written but cannot reach the disk
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        trainer_run.write_atomic(target, b"x" * 1000)
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.part")) and not target.exists()
    message = trainer_run.describe_error(info.value, tmp_path)
    assert message.startswith("the disk is full: no space left on the device holding")
    assert "MB free" in message and "resume" in message
    wrapped = RuntimeError("safetensors: failed to write")
    wrapped.__cause__ = info.value
    assert trainer_run.disk_full(wrapped)
    (tmp_path / "checkpoints" / "tmp-checkpoint-4").mkdir(parents=True)
    (tmp_path / "adapter.safetensors.part").write_bytes(b"half")
    trainer_run.remove_partial_files(tmp_path)
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("tmp-checkpoint-*"))


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
    reason="needs root and unshare to mount a tiny filesystem",
)
def test_a_run_on_a_full_disk_fails_with_a_disk_full_error(db, tmp_path):  # noqa: F811
    ws, rid = _prepared(db, tmp_path, "full", {"max_steps": 3, "save_steps": 1})
    ws.close()
    run_dir = tmp_path / "full"
    (run_dir / "checkpoints").mkdir()
    script = (
        f"mount -t tmpfs -o size=48k tmpfs {run_dir}/checkpoints && "
        f"{sys.executable} -m trainer run {run_dir}/config.json; "
        f"echo left: $(find {run_dir} -name '*.part' | wc -l)"
    )
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not allowed here")
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    final = events_of(run_dir)[-1]
    assert final["event"] == "failed", out.stdout[-2000:] + out.stderr[-2000:]
    assert final["error"].startswith("the disk is full"), final["error"]
    assert "left: 0" in out.stdout


def test_bad_training_input_names_file_record_and_field(db, tmp_path, capsys):  # noqa: F811
    from trainer.data import DataError, check_records, load_jsonl

    with pytest.raises(DataError, match="t.jsonl: record 2: no field 'completion'"):
        check_records([long_record(0), {"prompt": [], "label": True}], "kto", "t.jsonl")
    with pytest.raises(DataError, match="t.jsonl: record 1: field 'chosen' must be a list"):
        check_records([{"prompt": [], "chosen": "yes", "rejected": []}], "dpo", "t.jsonl")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"prompt": []}\n{oops\n')
    with pytest.raises(DataError, match="b.jsonl: line 2: not JSON"):
        load_jsonl(str(bad))
    opts = tmp_path / "opts.json"
    opts.write_text('{"lora_r": 4, "warmup": 3}')
    code, _, err = cli(
        capsys,
        "--db",
        db,
        "train",
        "dpo",
        "--snapshot",
        "all",
        "--model",
        str(TINY),
        "--out",
        str(tmp_path / "r"),
        "--config",
        str(opts),
    )
    assert code == 2 and "opts.json: unknown option(s) warmup" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()
    code, _, err = cli(capsys, "--db", db, "train", "kto", "--snapshot", "all")
    assert code == 2 and "--model, --out required" in err
