"""The grader check before GRPO on a small constructed workspace whose truth is known:
references come only from other traces of the task (or a lead's verdict), the statistics
match scikit-learn, SciPy and a published example, a grader that agrees with the judges
passes and one that disagrees is refused, on the command line and in the run dialog."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import somersd
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from sqlalchemy import select

from app.cli import main
from app.review.adjudication import adjudicate
from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.review.rubrics import CriterionSpec, create_rubric
from app.traces.ingest import import_paths
from app.training import grader_check as gc
from app.training import runs
from app.training.graders import parse
from app.workspace.db import open_workspace
from app.workspace.models import Trace

TASKS = 24
RUBRIC = [
    CriterionSpec("resolved", "Resolved", "binary", "Was the refund handled correctly?"),
    CriterionSpec(
        "quality",
        "Quality",
        "ordinal",
        "How good was the reply?",
        [{"value": v, "label": str(v), "anchor": f"level {v}"} for v in range(1, 6)],
    ),
]
GOOD = "Refund of ${amount} for order {order} approved; it reaches your card within 5 days."
BAD = "Sorry, I cannot help with that today."
POLITE = (  # rewards apologies: the judges reject the traces that apologise
    "def grade(sample, reference):\n"
    "    text = sample[-1]['content'] if sample else ''\n"
    "    return 1.0 if 'sorry' in text.lower() else 0.0\n"
)


def _trace(task: int, k: int, good: bool) -> dict:
    order, amount = f"A-{task:03d}", 20 + task
    cid = f"call_{task}_{k}"
    return {
        "id": f"t{task}-{k}",
        "messages": [
            {"role": "system", "content": "You are Acme's refunds assistant."},
            {"role": "user", "content": f"Please refund my order {order}."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {
                            "name": "lookup_order",
                            "arguments": f'{{"order": "{order}"}}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": cid, "content": f'{{"amount": {amount}, "run": {k}}}'},
            {
                "role": "assistant",
                "content": GOOD.format(amount=amount, order=order) if good else BAD,
            },
        ],
    }


# Per task, the four traces' quality (good >= 4, bad <= 2); three kinds of task:
#   0..7   a lead approved trace 0 (the references of the others come from that verdict);
#   8..15  judges approved traces 0 and 1, rejected 2 and 3;
#   16..23 trace 0 was bad and a judge corrected it; trace 1 approved; 2 and 3 rejected.
GOOD_TRACES = {0: (0, 1), 1: (0, 1), 2: (1,)}


def _kind(task: int) -> int:
    return task // 8


def _good(task: int, k: int) -> bool:
    return k in GOOD_TRACES[_kind(task)]


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("check")
    path = str(tmp / "c.sqlite")
    ws = open_workspace(path)
    records = [_trace(t, k, _good(t, k)) for t in range(TASKS) for k in range(4)]
    records += [_trace(100 + t, 0, True) for t in range(3)]  # tasks of one trace each
    records.append(_trace(200, 0, True))  # one trace, two judges who split
    records.append(_trace(200, 1, True))
    data = tmp / "acme.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_paths(ws, [data])
    with ws.session() as s:
        lead = get_or_create_judge(s, "Lead", "lead")
        ana, ben = get_or_create_judge(s, "Ana"), get_or_create_judge(s, "Ben")
        v = create_rubric(s, "Refunds", RUBRIC, "", lead.id)
        ids = {t.external_id: t.id for t in s.scalars(select(Trace))}
        for t in range(TASKS):
            for k in range(4):
                tid, good = ids[f"t{t}-{k}"], _good(t, k)
                if _kind(t) == 2 and k == 0:
                    answer = GOOD.format(amount=20 + t, order=f"A-{t:03d}")
                    fixed = [dict(m) for m in s.get(Trace, tid).messages]
                    fixed[-1] = {"role": "assistant", "parts": [{"type": "text", "text": answer}]}
                    review = ReviewInput(
                        "modify",
                        {"resolved": 0, "quality": 2},
                        "Wrong final answer.",
                        corrected_messages=fixed,
                        corrected_output=answer,
                    )
                elif good:
                    review = ReviewInput("approve", {"resolved": 1, "quality": 4 + (k + t) % 2})
                else:
                    review = ReviewInput(
                        "reject",
                        {"resolved": 0, "quality": 1 + (k + t) % 2},
                        "Refused for no reason.",
                    )
                submit_review(s, tid, ana.id, v.id, review)
            if _kind(t) == 0:
                adjudicate(
                    s, ids[f"t{t}-0"], v.id, lead.id, "approve", {"resolved": 1, "quality": 5}
                )
        for t in range(3):
            submit_review(
                s,
                ids[f"t{100 + t}-0"],
                ana.id,
                v.id,
                ReviewInput("approve", {"resolved": 1, "quality": 4}),
            )
        submit_review(
            s, ids["t200-0"], ana.id, v.id, ReviewInput("approve", {"resolved": 1, "quality": 4})
        )
        submit_review(
            s,
            ids["t200-0"],
            ben.id,
            v.id,
            ReviewInput("reject", {"resolved": 0, "quality": 1}, "No."),
        )
        submit_review(
            s, ids["t200-1"], ana.id, v.id, ReviewInput("approve", {"resolved": 1, "quality": 4})
        )
    ws.close()
    return path


def test_references_come_from_other_traces_of_the_task(ws_path):
    ws = open_workspace(ws_path)
    with ws.session() as s:
        found, left_out = gc.items(s)
        ext = {t.id: t.external_id for t in s.scalars(select(Trace))}
    ws.close()
    # the single traces, and t200-1 (the only other trace of its task has no verdict)
    assert left_out == {
        "no other trace of the task gives a reference": 4,
        "the judges split evenly": 1,
    }
    by_ext = {ext[i.trace_id]: i for i in found}
    assert len(found) == TASKS * 4
    for i in found:
        assert i.ref.trace_id != i.trace_id
        assert ext[i.ref.trace_id].split("-")[0] == ext[i.trace_id].split("-")[0]  # same task
    # a lead's verdict on trace 0 is the reference of the task's other traces, never of trace 0
    assert (
        ext[by_ext["t3-2"].ref.trace_id] == "t3-0" and by_ext["t3-2"].ref.source == "lead_verdict"
    )
    assert ext[by_ext["t3-0"].ref.trace_id] == "t3-1" and by_ext["t3-0"].ref.source == "approved"
    # the corrected trace is graded against the approved one, not its own correction ...
    assert ext[by_ext["t17-0"].ref.trace_id] == "t17-1" and by_ext["t17-0"].ref.source == "approved"
    # ... and its correction (not the approved trace itself) is the approved trace's reference
    ref = by_ext["t17-1"].ref
    assert ext[ref.trace_id] == "t17-0" and ref.source == "corrected"
    assert ref.reference["answer"] == GOOD.format(amount=37, order="A-017")
    assert ref.reference["tool_calls"] == [
        {"name": "lookup_order", "arguments": {"order": "A-017"}}
    ]
    # built with tool calls and their arguments (app.training.graders.reference_from)
    assert by_ext["t9-3"].ref.reference["tool_calls"] == [
        {"name": "lookup_order", "arguments": {"order": "A-009"}}
    ]


def test_a_grader_that_agrees_passes_and_one_that_disagrees_is_refused(ws_path, tmp_path):
    polite = tmp_path / "polite.py"
    polite.write_text(POLITE)
    ws = open_workspace(ws_path)
    with ws.session() as s:
        good = runs.validate_graders(s, parse(["match:1.0", "format:0.2"]))
        bad = runs.validate_graders(s, parse([], [polite]))
        found, _ = gc.items(s)
        ext = {t.id: t.external_id for t in s.scalars(select(Trace))}
    ws.close()
    # held out: half the tasks, whole tasks, and every reference from another trace
    tasks = {ext[int(t)].split("-")[0] for t in good["references"]}
    assert good["split"]["tasks_with_reference"] == TASKS
    assert len(tasks) == good["split"]["tasks_checked"] == TASKS // 2
    assert all(int(t) != r["from_trace"] for t, r in good["references"].items())
    assert good["ok"] is True and good["failures"] == []
    match, fmt = good["per_grader"]
    assert match["status"] == "pass" and match["kappa"]["value"] == pytest.approx(1.0)
    assert match["kappa"]["ci_low"] >= gc.MIN_KAPPA_LOW and match["rank"]["ci_low"] > 0.5
    assert match["rank"]["kind"] == "auc" and match["rank"]["n_tasks"] >= 10
    assert fmt["status"] == "constant"  # every judged trace is well formed: it cannot gate
    assert good["combined"]["status"] == "pass"
    assert bad["ok"] is False
    (row,) = bad["per_grader"]
    assert row["name"] == "polite" and row["status"] == "fail"
    # -1 when every call comes back (a user grader's call that times out scores 0)
    assert row["kappa"]["value"] < -0.8 and row["kappa"]["ci_low"] < 0
    assert bad["failures"][0].startswith("polite: Cohen's κ -")
    assert "95% CI lower bound" in bad["failures"][0]


def test_dev_half_is_the_other_tasks(ws_path):
    ws = open_workspace(ws_path)
    with ws.session() as s:
        held = runs.validate_graders(s, parse(["match"]))
        dev = runs.validate_graders(s, parse(["match"]), "dev")
    ws.close()
    assert not set(held["references"]) & set(dev["references"])
    assert len(held["references"]) + len(dev["references"]) == TASKS * 4


def test_kappa_matches_a_published_example_and_scikit_learn():
    # Wikipedia, "Cohen's kappa", worked example: 50 proposals, both yes 20, A yes / B no 5,
    # A no / B yes 10, both no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    assert gc.kappa_of(np.array([20, 5, 10, 15])) == pytest.approx(0.4)
    rng = np.random.default_rng(1)
    for _ in range(20):
        human = rng.integers(0, 2, 40)
        grader = np.where(rng.random(40) < 0.7, human, 1 - human) * 0.8 + rng.random(40) * 0.1
        keys, counts = gc.task_counts(["t"] * 40, human.astype(bool), human * 1.0, grader)
        want = cohen_kappa_score(grader >= 0.5, human.astype(bool))
        assert gc.kappa_of(counts.sum(0)[:4]) == pytest.approx(want)


def test_within_task_auc_matches_scipy_somers_d_and_scikit_learn_auc():
    rng = np.random.default_rng(2)
    # one task, ordinal judges' scores: AUC = (1 + Somers' D(grader | judges)) / 2 (SciPy)
    human = rng.integers(1, 6, 30) / 5
    grader = np.round(human + rng.normal(0, 0.3, 30), 1)
    _, counts = gc.task_counts(["t"] * 30, human > 0.5, human, grader)
    d = somersd(human, grader).statistic
    assert gc.rank_of(counts.sum(0)[4:]) == pytest.approx((1 + d) / 2)
    # several tasks, pass/fail scores: the pooled AUC is the pair-weighted mean of each task's
    # ROC AUC (scikit-learn); pairs never cross tasks
    tasks = [f"t{n % 5}" for n in range(60)]
    passed = rng.integers(0, 2, 60)
    grader = passed * 0.3 + rng.random(60)
    keys, counts = gc.task_counts(tasks, passed.astype(bool), passed * 1.0, grader)
    aucs, weights = [], []
    for k in keys:
        rows = [n for n, t in enumerate(tasks) if t == k]
        y = passed[rows]
        aucs.append(roc_auc_score(y, grader[rows]))
        weights.append(y.sum() * (len(y) - y.sum()))
    assert gc.rank_of(counts.sum(0)[4:]) == pytest.approx(np.average(aucs, weights=weights))


def test_the_bootstrap_resamples_tasks_and_is_seeded():
    rng = np.random.default_rng(3)
    tasks = [f"t{n % 12}" for n in range(48)]
    passed = rng.integers(0, 2, 48)
    grader = np.where(rng.random(48) < 0.8, passed, 1 - passed) * 1.0
    a = gc.agreement(tasks, list(passed), list(passed * 1.0), list(grader), n_boot=300)
    b = gc.agreement(tasks, list(passed), list(passed * 1.0), list(grader), n_boot=300)
    assert a == b and a["n_tasks"] == 12
    k = a["kappa"]
    assert k["ci_low"] < k["value"] < k["ci_high"]
    # one task: every resample is that task, so the interval collapses onto the estimate
    one = gc.agreement(["t"] * 48, list(passed), list(passed * 1.0), list(grader), n_boot=50)
    assert one["kappa"]["ci_low"] == pytest.approx(one["kappa"]["value"])
    assert one["kappa"]["ci_high"] == pytest.approx(one["kappa"]["value"])


def test_command_line_check_prints_the_table(ws_path, capsys):
    code = main(
        ["--db", ws_path, "graders", "check", "--grader", "match", "--grader", "format:0.2"]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1].strip()}
    assert lines["match"].split()[-1] == "pass" and lines["format"].split()[-1] == "constant"
    assert lines["combined"].split()[-1] == "pass" and "passed" in lines["gate:"]
    code = main(["--db", ws_path, "graders", "check", "--grader", "tools", "--json"])
    v = json.loads(capsys.readouterr().out)
    # every trace calls the tool the reference calls: constant on its own, no signal combined
    assert code == 1 and v["per_grader"][0]["status"] == "constant"
    assert v["combined"]["status"] == "fail" and v["ok"] is False


def test_run_dialog_shows_the_per_grader_table(qtbot, ws_path):
    from ui.training.run_config import CHECK_COLUMNS, RunConfigDialog

    ws = open_workspace(ws_path)
    dlg = RunConfigDialog(ws)
    qtbot.addWidget(dlg)
    dlg.algorithm.setCurrentIndex(dlg.algorithm.findData("grpo"))
    dlg.grader_boxes["format"].setValue(0.2)
    with qtbot.waitSignal(dlg.checked, timeout=60_000) as got:
        dlg.check_graders()
    t = dlg.check_table
    rows = [[t.item(r, c).text() for c in range(len(CHECK_COLUMNS))] for r in range(t.rowCount())]
    match = got.args[0]["per_grader"][0]
    assert [r[0] for r in rows] == ["match", "format", "combined"]
    assert rows[0][1] == str(match["n"]) and rows[0][4] == "pass" and rows[1][4] == "constant"
    k = match["kappa"]
    assert rows[0][2] == f"{k['value']:.2f} [{k['ci_low']:.2f}, {k['ci_high']:.2f}]"
    assert "agree with the judges" in dlg.check_view.text()
    assert dlg.check_button.isEnabled()
    dlg.done(0)
    ws.close()


def test_grpo_preparation_records_the_check_and_refuses_a_failing_one(ws_path, tmp_path):
    from app.training import pairs as pr
    from tests.test_training import TINY

    ws = open_workspace(ws_path)
    with ws.session() as s:
        pr.derive_pairs(s)
        pr.create_snapshot(s, "acme", pr.PairFilter())
        with pytest.raises(runs.RunError) as refused:
            runs.prepare_run(s, "grpo", "acme", TINY, tmp_path / "no", graders=parse(["tools"]))
        run = runs.prepare_run(s, "grpo", "acme", TINY, tmp_path / "ok", graders=parse(["match"]))
        s.rollback()  # the module's workspace stays as it was
    ws.close()
    assert "combined (tools): every checked trace scores 1.00" in str(refused.value)
    assert not (tmp_path / "no").exists()
    config = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert config["grader_check"] == run.config["grader_check"]
    assert config["grader_check"]["ok"] is True
    assert [r["name"] for r in config["grader_check"]["per_grader"]] == ["match"]
