"""Evaluations in the trainer process on the committed tiny model (CPU): held-out tasks only,
the same prompt and seed for both models, parsed tool calls, stored outputs, reproducibility,
bootstrap intervals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.cli import main
from app.sample import build_sample
from app.training import evaluation as ev_mod
from app.training import pairs as pr
from app.training import runs
from app.training.evalstats import mean_ci
from app.training.toolcalls import parse_output
from app.workspace.db import open_workspace
from app.workspace.models import EvalItem, EvalOutput, Evaluation, PreferencePair

TINY = Path(__file__).parent / "fixtures" / "tiny-qwen2"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, Path]:
    """A sample workspace with a DPO run trained for 2 steps (once per module)."""
    root = tmp_path_factory.mktemp("evalws")
    path = str(root / "s.sqlite")
    ws = open_workspace(path)
    build_sample(ws, n_traces=90)
    with ws.session() as s:
        pr.derive_pairs(s)
        pr.create_snapshot(s, "all", pr.PairFilter(heldout=0.5))
        run = runs.prepare_run(s, "dpo", "all", TINY, root / "run1", {"max_steps": 2}, name="run1")
        rid = run.id
    assert runs.run_foreground(ws, rid, echo=False) == 0
    ws.close()
    return path, root


@pytest.fixture
def db(trained, tmp_path) -> str:
    dst = tmp_path / "s.sqlite"
    shutil.copy(trained[0], dst)
    return str(dst)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_output_structures_tool_calls_and_keeps_invalid_ones():
    p = parse_output(
        'Let me look.<tool_call>{"name": "get_order", "arguments": {"id": 7}}</tool_call>'
    )
    assert p.valid and p.message["parts"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_call", "id": "call_0", "name": "get_order", "arguments": {"id": 7}},
    ]
    assert p.chat()[0]["tool_calls"][0]["function"] == {"name": "get_order", "arguments": {"id": 7}}
    bad = parse_output('<tool_call>{"name": "get_order", "arguments": {"id": </tool_call>')
    assert not bad.valid and "not JSON" in bad.error
    assert bad.message["parts"][0]["arguments_invalid"] is True
    assert (
        parse_output('<tool_call>{"name": "x"}').error == "tool call 1: <tool_call> is never closed"
    )
    assert parse_output("   ").error == "empty output"


def test_mean_ci_matches_scipy_bootstrap():
    """Reference: scipy.stats.bootstrap (percentile method), the library's implementation of
    Efron & Tibshirani's percentile interval; same data, many resamples -> same interval."""
    from scipy.stats import bootstrap

    x = np.random.default_rng(3).normal(0.6, 0.2, 60)
    ours = mean_ci(x, n_boot=20000, seed=1)
    ref = bootstrap((x,), np.mean, n_resamples=20000, method="percentile", random_state=2)
    assert ours.value == pytest.approx(x.mean())
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.004)


def test_eval_runs_heldout_only_stores_outputs_and_is_reproducible(db, tmp_path, capsys):
    args = [
        "--db",
        db,
        "eval",
        "run1",
        "--n",
        "4",
        "--max-new-tokens",
        "12",
        "--temperature",
        "0.9",
        "--top-p",
        "0.95",
        "--seed",
        "5",
    ]
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, out + err
    info = json.loads(out)
    assert info["status"] == "finished" and info["n_items"] == 4
    assert info["candidate_model"] == "run1" and info["baseline_model"] == "tiny-qwen2"
    assert info["decoding"] == {"max_new_tokens": 12, "temperature": 0.9, "top_p": 0.95}
    for key in ("baseline", "candidate", "difference"):
        est = info[key]["score"] if key != "difference" else info[key]
        assert est["low"] <= est["value"] <= est["high"]
    assert set(info["graders"]) == {"match", "tools", "format", "json"}
    ws = open_workspace(db)
    with ws.session() as s:
        ev = ev_mod.get_eval(s, info["name"])
        run = runs.get_run(s, "run1")
        snap = pr.get_snapshot(s, "all")
        splits = snap.manifest["splits"]
        trained_keys = {
            p.task_key
            for p in s.scalars(select(PreferencePair).where(PreferencePair.id.in_(snap.pair_ids)))
            if splits[str(p.id)] == "train"
        }
        items = list(s.scalars(select(EvalItem).where(EvalItem.evaluation_id == ev.id)))
        assert len(items) == 4
        for it in items:  # held out, never trained on
            assert it.task_key not in trained_keys
            assert splits[str(it.source["pair_id"])] == "heldout"
        outs = ev_mod.outputs(s, ev)
        assert all(set(o) == {"baseline", "candidate"} for o in outs.values())
        first = [(o["baseline"].text, o["candidate"].text) for _, o in sorted(outs.items())]
        for o in outs.values():
            b, c = o["baseline"], o["candidate"]
            assert b.seed == c.seed and b.decoding == c.decoding == ev.decoding
            assert b.model_id == ev.baseline_id and c.model_id == ev.candidate_id
            assert b.message["role"] == "assistant" and isinstance(b.valid, bool)
            assert set(b.scores) == {"match", "tools", "format", "json"}
        assert run.id == ev.run_id
        # the same seed gives the same outputs
        n_outputs = len(list(s.scalars(select(EvalOutput))))
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, out + err
    again = json.loads(out)
    with ws.session() as s:
        outs = ev_mod.outputs(s, ev_mod.get_eval(s, again["name"]))
        assert [(o["baseline"].text, o["candidate"].text) for _, o in sorted(outs.items())] == first
        assert len(list(s.scalars(select(EvalOutput)))) == 2 * n_outputs
    # a different seed samples differently
    code, out, err = cli(capsys, *args[:-1], "6", "--json")
    with ws.session() as s:
        outs = ev_mod.outputs(s, ev_mod.get_eval(s, json.loads(out)["name"]))
        assert [(o["baseline"].text, o["candidate"].text) for _, o in sorted(outs.items())] != first
    code, out, _ = cli(capsys, "--db", db, "evals", "list", "--json")
    assert [r["status"] for r in json.loads(out)] == ["finished"] * 3
    ws.close()


def test_detached_eval_survives_its_launcher_and_cancels_cleanly(db):
    """Started detached (own process group, as from the Runs screen), read back from its
    directory by a later session, cancelled with SIGTERM: a `cancelled` event, no outputs."""
    import time

    ws = open_workspace(db)
    with ws.session() as s:
        ev = ev_mod.prepare_eval(s, "run1", decoding={"max_new_tokens": 512}, name="long")
        pid = ev_mod.launch(s, ev)
        eval_dir = Path(ev.eval_dir)
    ws.close()
    ws = open_workspace(db)  # a new session: the UI was closed and reopened
    deadline = time.time() + 120
    while time.time() < deadline:
        events, _ = runs.read_events(eval_dir)
        if any(e["event"] == "progress" for e in events):
            break
        time.sleep(0.2)
    with ws.session() as s:
        assert ev_mod.sync(s, ev_mod.get_eval(s, "long")).status == "running"
        assert "cancelling evaluation long" in ev_mod.cancel(s, "long")
    while runs.process_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    with ws.session() as s:
        ev = ev_mod.sync(s, ev_mod.get_eval(s, "long"))
        assert ev.status == "cancelled"
        assert ev_mod.outputs(s, ev) == {}
    assert not (eval_dir / "outputs.jsonl").exists()
    ws.close()


def test_bad_eval_requests_get_one_clear_line(db, capsys):
    cases = [
        (["eval", "nope"], "no training run 'nope'"),
        (["eval", "run1", "--tasks", "everything"], "use heldout, round:NAME or snapshot:NAME"),
        (["eval", "run1", "--against", "ghost"], "no registered model named 'ghost'"),
        (["eval", "run1", "--tasks", "snapshot:missing"], "no snapshot named 'missing'"),
        (["models", "export", "tiny-qwen2", "--merged", "/tmp/x"], "is a base model"),
        (["compare", "create", "c", "--eval", "none", "--judges", "Hana Sato"], "no evaluation"),
    ]
    for argv, msg in cases:
        code, out, err = cli(capsys, "--db", db, *argv)
        assert code == 2 and msg in err and "Traceback" not in err, (argv, err)
    ws = open_workspace(db)
    with ws.session() as s:
        assert list(s.scalars(select(Evaluation))) == []  # nothing half-made
    ws.close()


def test_a_damaged_outputs_file_fails_the_evaluation_and_stores_nothing(db):
    ws = open_workspace(db)
    with ws.session() as s:
        ev = ev_mod.prepare_eval(s, "run1", n=2, name="damaged")
        d = Path(ev.eval_dir)
    good = {
        "position": 0,
        "side": "baseline",
        "text": "hi",
        "message": {"role": "assistant", "parts": []},
        "valid": False,
        "scores": {},
        "score": 0.0,
        "decoding": {},
        "seed": 0,
    }
    (d / "outputs.jsonl").write_text(
        json.dumps(good) + "\n" + '{"position": 1, "side": "nobody"}\n'
    )
    (d / "events.jsonl").write_text(json.dumps({"event": "finished"}) + "\n")
    with ws.session() as s:
        ev = ev_mod.sync(s, ev_mod.get_eval(s, "damaged"))
        assert ev.status == "failed"
        assert ev.error.startswith(f"{d / 'outputs.jsonl'}: line 2: not an output record")
        assert ev_mod.outputs(s, ev) == {}
    ws.close()
