"""Model registry, blind comparison rounds, the promotion gate, rollback, export, the reward-
hacking watch; statistics checked against library references (CPU, committed tiny model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.cli import main
from app.review.reviews import get_or_create_judge
from app.sample import JUDGES, build_sample
from app.training import comparison as cmp
from app.training import evaluation as ev_mod
from app.training import pairs as pr
from app.training import runs
from app.training.evalstats import bradley_terry, bt_fit, ratio_ci
from app.training.graders import GraderSpec
from app.workspace import audit
from app.workspace.db import open_workspace
from app.workspace.models import (
    ComparisonVerdict,
    EvalItem,
    Judge,
    PreferencePair,
    RegisteredModel,
)

TINY = Path(__file__).parent / "fixtures" / "tiny-qwen2"
NAMES = [n for n, _ in JUDGES]


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> str:
    """Two DPO runs (2 steps, 1 step) and an evaluation of the first, once per module."""
    root = tmp_path_factory.mktemp("loop")
    path = str(root / "s.sqlite")
    ws = open_workspace(path)
    build_sample(ws, n_traces=90)
    with ws.session() as s:
        pr.derive_pairs(s)
        pr.create_snapshot(s, "all", pr.PairFilter(heldout=0.5))
        ids = [
            runs.prepare_run(s, "dpo", "all", TINY, root / n, {"max_steps": k}, name=n).id
            for n, k in (("run1", 2), ("run2", 1))
        ]
    for rid in ids:
        assert runs.run_foreground(ws, rid, echo=False) == 0
    with ws.session() as s:
        ev = ev_mod.prepare_eval(s, "run1", n=4, decoding={"max_new_tokens": 8}, name="e1")
        eid = ev.id
    assert ev_mod.run_foreground(ws, eid, echo=False) == 0
    ws.close()
    return path


@pytest.fixture
def db(loop, tmp_path) -> str:
    dst = tmp_path / "s.sqlite"
    shutil.copy(loop, dst)
    return str(dst)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def judge_all(s, rnd, pick) -> None:
    """Every assignment judged: pick(item position, judge name) -> 'candidate'|'baseline'|'tie'."""
    for v in s.scalars(select(ComparisonVerdict).where(ComparisonVerdict.round_id == rnd.id)):
        want = pick(s.get(EvalItem, v.item_id).position, v.judge_id)
        choice = "tie" if want == "tie" else ("A" if v.a_side == want else "B")
        cmp.submit(s, v, choice, rationale="clearer")


def test_finished_runs_register_their_candidates_with_lineage(db, capsys):
    code, out, _ = cli(capsys, "--db", db, "models", "list", "--json")
    rows = json.loads(out)
    assert [(r["name"], r["kind"], r["parent"], r["depth"]) for r in rows] == [
        ("tiny-qwen2", "base", None, 0),
        ("run1", "candidate", "tiny-qwen2", 1),
        ("run2", "candidate", "tiny-qwen2", 1),
    ]
    code, out, _ = cli(capsys, "--db", db, "models", "show", "run1", "--json")
    info = json.loads(out)
    ws = open_workspace(db)
    with ws.session() as s:
        snap = pr.get_snapshot(s, "all")
        assert info["lineage"]["snapshot"] == {"name": "all", "sha256": snap.sha256}
    assert (
        info["lineage"]["run"]["name"] == "run1" and info["lineage"]["run_config"]["max_steps"] == 2
    )
    assert info["lineage"]["rubric_version_ids"] and info["path"].endswith("run1/adapter")
    assert [e["name"] for e in info["evaluations"]] == ["e1"]
    assert info["gate"]["passed"] is False
    ws.close()


def test_comparison_round_is_blind_balanced_and_gives_results(db):
    ws = open_workspace(db)
    with ws.session() as s:
        judges = [get_or_create_judge(s, n).id for n in NAMES]
        rnd = cmp.create_round(s, "c1", "e1", judges, k=2, seed=3)
        rows = list(
            s.scalars(select(ComparisonVerdict).where(ComparisonVerdict.round_id == rnd.id))
        )
        per_item: dict[int, set[int]] = {}
        for v in rows:
            per_item.setdefault(v.item_id, set()).add(v.judge_id)
        assert len(per_item) == 4 and all(len(j) == 2 for j in per_item.values())
        loads = [sum(v.judge_id == j for v in rows) for j in judges]
        assert max(loads) - min(loads) <= 1
        assert {v.a_side for v in rows} == {"baseline", "candidate"}  # sides drawn per judge
        shown = cmp.blind_item(s, rows[0])
        assert set(shown) == {"prompt", "tools", "A", "B", "A_text", "B_text"}
        assert "run1" not in json.dumps(shown) and "tiny-qwen2" not in json.dumps(shown)
        # candidate wins items 0-2, item 3 is a tie; every judge agrees
        judge_all(s, rnd, lambda pos, j: "tie" if pos == 3 else "candidate")
        res = cmp.results(s, rnd)
        assert res["verdicts"] == 8 == res["assigned"]
        assert res["win_rate"]["value"] == pytest.approx(0.875)
        assert res["tie_share"]["value"] == pytest.approx(0.25)
        assert res["alpha"]["value"] == pytest.approx(1.0)
        a_share = sum(v.choice == "A" for v in rows if v.choice != "tie") / 6
        assert res["position_bias_A"]["value"] == pytest.approx(a_share, abs=1e-4)
        assert res["reward_hacking"]["flagged"] is False
        # verdicts become preference pairs, with provenance, once
        assert cmp.to_pairs(s, rnd) == 3  # one per decided item (the tie makes none)
        assert cmp.to_pairs(s, rnd) == 0
        p = s.scalar(select(PreferencePair).where(PreferencePair.rule == "comparison").limit(1))
        assert p.provenance["comparison_round"] == "c1" and len(p.provenance["judge_ids"]) == 2
        assert p.provenance["votes"] == {"candidate": 2} and p.provenance["rationales"]
        assert p.chosen[0]["role"] == "assistant"
    ws.close()


def test_gate_refuses_then_promotes_force_needs_reason_rollback_audited(db, capsys):
    code, _, err = cli(capsys, "--db", db, "models", "promote", "run1", "--by", "lead")
    assert code == 2 and "fails the promotion gate" in err
    assert "comparison: no comparison round" in err
    ws = open_workspace(db)
    with ws.session() as s:
        rnd = cmp.create_round(s, "c1", "e1", [get_or_create_judge(s, n).id for n in NAMES], k=3)
        # a split vote: win rate interval reaches below 0.5
        judge_all(s, rnd, lambda pos, j: "candidate" if pos % 2 else "baseline")
    code, _, err = cli(capsys, "--db", db, "models", "promote", "run1", "--by", "lead")
    assert code == 2 and "win_rate: win rate 0.500" in err
    with ws.session() as s:
        rnd = cmp.create_round(s, "c2", "e1", [get_or_create_judge(s, n).id for n in NAMES], k=3)
        judge_all(s, rnd, lambda pos, j: "tie" if pos == 3 else "candidate")
    code, out, err = cli(
        capsys, "--db", db, "models", "promote", "run1", "--by", "lead", "--reason", "wins"
    )
    assert code == 0, err
    assert "gate (win-rate CI lower bound > 0.5" in out and "run1 is now the current model" in out
    # run2 has no evaluation: refused; --force without a reason: refused; with one: audited
    code, _, err = cli(capsys, "--db", db, "models", "promote", "run2")
    assert code == 2 and "evaluation: no finished evaluation" in err
    code, _, err = cli(capsys, "--db", db, "models", "promote", "run2", "--force")
    assert code == 2 and "--force needs a --reason" in err
    code, out, _ = cli(
        capsys,
        "--db",
        db,
        "models",
        "promote",
        "run2",
        "--force",
        "--reason",
        "hotfix",
        "--by",
        "ana",
    )
    assert code == 0 and "forced past the gate" in out
    code, out, _ = cli(capsys, "--db", db, "models", "list", "--json")
    assert [r["name"] for r in json.loads(out) if r["current"]] == ["run2"]
    code, out, _ = cli(
        capsys, "--db", db, "models", "rollback", "--by", "ana", "--reason", "regression"
    )
    assert code == 0 and "run2 -> run1" in out
    code, out, _ = cli(capsys, "--db", db, "models", "list", "--json")
    assert [r["name"] for r in json.loads(out) if r["current"]] == ["run1"]
    code, _, err = cli(capsys, "--db", db, "models", "rollback")
    assert code == 2 and "only one model was ever promoted" in err
    with ws.session() as s:
        acts = [(e.action, e.details.get("reason")) for e in audit.entries(s, "model")]
        assert ("promote", "wins") in acts and ("force_promote", "hotfix") in acts
        assert ("rollback", "regression") in acts
        forced = [e for e in audit.entries(s, "model") if e.action == "force_promote"][0]
        assert forced.details["actor"] == "ana" and "evaluation" in forced.details["failed"]
    # the rule is the workspace's, shown and settable
    code, out, _ = cli(capsys, "--db", db, "models", "gate", "--set", "min_alpha=0.9", "--json")
    assert json.loads(out)["min_alpha"] == 0.9
    code, out, _ = cli(capsys, "--db", db, "models", "show", "run1")
    assert "pairwise agreement alpha >= 0.9" in out
    ws.close()


def test_gate_fails_a_tampered_manifest(db, capsys):
    ws = open_workspace(db)
    with ws.session() as s:
        rnd = cmp.create_round(s, "c1", "e1", [get_or_create_judge(s, n).id for n in NAMES], k=3)
        judge_all(s, rnd, lambda pos, j: "tie" if pos == 3 else "candidate")
        run_dir = runs.get_run(s, "run1").run_dir
    cfg = Path(run_dir) / "adapter" / "adapter_config.json"
    saved = cfg.read_bytes()
    cfg.write_bytes(saved + b" ")
    try:
        code, _, err = cli(capsys, "--db", db, "models", "promote", "run1")
    finally:
        cfg.write_bytes(saved)
    assert code == 2 and "manifest: adapter/adapter_config.json: sha256 differs" in err


def test_reward_hacking_watch_catches_a_bad_grader(db, tmp_path, capsys, qtbot):
    """Candidate outputs are long filler, the baseline's are the reference answers; the judges
    prefer the baseline. A grader that rewards length says the candidate improved: flagged.
    The honest match grader agrees with the judges: not flagged."""
    ws = open_workspace(db)
    with ws.session() as s:
        ev = ev_mod.get_eval(s, "e1")
        for item_id, outs in ev_mod.outputs(s, ev).items():
            ref = s.get(EvalItem, item_id).reference["answer"] or "Your order has shipped."
            outs["baseline"].message = {
                "role": "assistant",
                "parts": [{"type": "text", "text": ref}],
            }
            filler = "Great question! " * 30
            outs["candidate"].message = {
                "role": "assistant",
                "parts": [{"type": "text", "text": filler}],
            }
        bad = tmp_path / "length.py"
        bad.write_text(
            "def grade(sample, reference):\n    return min(len(sample[-1]['content']) / 400, 1.0)\n"
        )
        ev_mod.regrade(s, ev, [GraderSpec("length", 1.0, str(bad))])
        assert ev.summary["difference"]["low"] > 0
        rnd = cmp.create_round(s, "c1", "e1", [get_or_create_judge(s, n).id for n in NAMES], k=3)
        judge_all(s, rnd, lambda pos, j: "baseline")
        res = cmp.results(s, rnd)
        assert res["win_rate"]["value"] == 0.0
        assert res["reward_hacking"]["flagged"] is True
    code, out, _ = cli(capsys, "--db", db, "models", "show", "run1")
    assert "REWARD HACKING WATCH" in out and "[ ] reward_hacking" in out
    from ui.training.models_screen import ModelsDialog
    from ui.training.runs_screen import RunsDialog

    with ws.session() as s:
        lead = s.scalar(select(Judge).where(Judge.role == "lead"))
        rid = runs.get_run(s, "run1").id
    runs_dlg = RunsDialog(ws, lead, poll_ms=60_000)
    qtbot.addWidget(runs_dlg)
    runs_dlg.select_run(rid)  # the runs list is read on the executor: selected when it lands
    qtbot.waitUntil(
        lambda: runs_dlg.watch.text().startswith("⚠ Reward-hacking watch (c1): graders"),
        timeout=10_000,
    )
    models_dlg = ModelsDialog(ws, lead)
    qtbot.addWidget(models_dlg)
    run1 = models_dlg.tree.topLevelItem(0).child(0)
    assert run1.text(0) == "run1" and "reward hacking" in run1.text(2)
    with ws.session() as s:
        ev = ev_mod.get_eval(s, "e1")
        ev_mod.regrade(s, ev, [GraderSpec("match", 1.0)])
        assert cmp.results(s, cmp.get_round(s, "c1"))["reward_hacking"]["flagged"] is False
    ws.close()


def test_win_rate_interval_matches_scipy_bootstrap():
    """A ratio of per-item sums (cluster bootstrap over items) against scipy.stats.bootstrap
    (percentile method, paired resampling of the two columns) on the same data."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(0)
    n = rng.integers(1, 4, 80).astype(float)
    wins = np.array([rng.binomial(int(k), 0.65) for k in n], dtype=float)
    ours = ratio_ci(wins, n, n_boot=20000, seed=4)
    ref = bootstrap(
        (wins, n),
        lambda a, b, axis=-1: a.sum(axis=axis) / b.sum(axis=axis),
        paired=True,
        n_resamples=20000,
        method="percentile",
        random_state=5,
    )
    assert ours.value == pytest.approx(wins.sum() / n.sum())
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.006)


def test_bradley_terry_matches_the_logistic_mle():
    """Reference: the Bradley-Terry MLE is a logistic regression without intercept on the
    difference design (Agresti, Categorical Data Analysis, 3rd ed., sec. 11.6); fitted here
    with statsmodels' Logit on the same comparisons. Data: a 4-model round robin."""
    import statsmodels.api as sm

    wins = np.array([[0, 7, 9, 6], [3, 0, 6, 8], [1, 4, 0, 5], [4, 2, 5, 0]], dtype=float)
    p = bt_fit(wins)
    x_rows, y = [], []
    for i in range(4):
        for j in range(4):
            for _ in range(int(wins[i, j])):
                row = np.zeros(3)  # model 0 is the reference level
                if i:
                    row[i - 1] += 1
                if j:
                    row[j - 1] -= 1
                x_rows.append(row)
                y.append(1)
    x, y = np.array(x_rows), np.array(y, dtype=float)
    # each comparison once as (i beats j): flip half so the outcome varies
    flip = np.arange(len(y)) % 2 == 1
    x[flip], y[flip] = -x[flip], 0
    beta = sm.Logit(y, x).fit(disp=0).params
    ours = np.log(p[1:] / p[0])
    assert ours == pytest.approx(beta, abs=1e-6)
    comps = [(k, "m0", "m1", 1.0) for k in range(6)] + [(k + 6, "m0", "m1", 0.0) for k in range(2)]
    comps += [(k + 8, "m1", "m2", 1.0) for k in range(5)] + [(13, "m1", "m2", 0.5)]
    est = bradley_terry(comps, n_boot=300, seed=1)
    assert set(est) == {"m0", "m1", "m2"}
    assert est["m0"].value > est["m1"].value > est["m2"].value
    assert all(e.low <= e.value <= e.high for e in est.values())
    # the Models screen lists them strongest first, with their intervals
    from ui.training.models_screen import details_html

    info = {
        "name": "m1",
        "kind": "candidate",
        "current": False,
        "reward_hacking": False,
        "lineage": {},
        "parent": "m0",
        "path": "/m1",
        "evaluations": [],
        "comparisons": [],
        "promotions": [],
        "bradley_terry": {m: e.as_dict() for m, e in est.items()},
    }
    html = details_html(info)
    shown = html[html.index("Bradley–Terry") :]
    assert shown.index("m0: ") < shown.index("m1: ") < shown.index("m2: ")
    assert f"m2: {est['m2'].value:.3f} [{est['m2'].low:.3f}, {est['m2'].high:.3f}]" in shown


def test_export_merged_equals_base_plus_adapter_and_adapter_alone(db, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    code, msg, err = cli(capsys, "--db", db, "models", "export", "run1", "--merged", str(out))
    assert code == 0, err
    assert (out / "model.safetensors").exists() and (out / "chambers-lineage.json").exists()
    lineage = json.loads((out / "chambers-lineage.json").read_text())
    assert lineage["name"] == "run1" and lineage["snapshot"]["name"] == "all"
    assert not any("lora" in k for k in json.loads((out / "config.json").read_text()))
    merged = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert tok.chat_template
    ws = open_workspace(db)
    with ws.session() as s:
        adapter = s.scalar(select(RegisteredModel).where(RegisteredModel.name == "run1")).path
    ws.close()
    base = AutoModelForCausalLM.from_pretrained(TINY, local_files_only=True)
    peft = PeftModel.from_pretrained(base, adapter).eval()
    ids = tok("Where is my order 4411?", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = merged(ids).logits, peft(ids).logits
        with peft.disable_adapter():
            plain = peft(ids).logits
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    assert (a - plain).abs().max() > 100 * (a - b).abs().max()  # the adapter is in there
    code, _, err = cli(
        capsys, "--db", db, "models", "export", "run1", "--adapter", str(tmp_path / "ad")
    )
    assert code == 0 and (tmp_path / "ad" / "adapter_model.safetensors").exists()
    code, _, err = cli(capsys, "--db", db, "models", "export", "run1", "--merged", str(out))
    assert code == 2 and "exists and is not an empty directory" in err
