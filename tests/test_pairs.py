"""Step-level preference pairs: what the sample yields, multi-step corrections, gold against
judges, ranked pairs, the cap and the split, incremental derivation, and the exports rendered
through a real tool-aware chat template."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.cli import main
from app.review.adjudication import adjudicate
from app.review.reviews import ReviewInput, get_or_create_judge, submit_review
from app.training import derive, rules
from app.training import pairs as pr
from app.training.steps import changed_steps, first_divergence, same_step, to_chat
from app.workspace.db import open_workspace
from app.workspace.models import Adjudication, Judge, PreferencePair, Review, Trace

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> str:
    """`chambers sample` on a fresh database, pairs derived by `chambers pairs stats`."""
    path = str(tmp_path_factory.mktemp("pairs") / "s.sqlite")
    assert main(["--db", path, "sample"]) == 0
    assert main(["--db", path, "pairs", "stats", "--json"]) == 0
    return path


@pytest.fixture
def ws(sample, tmp_path):
    import shutil

    dst = tmp_path / "s.sqlite"
    for suffix in ("", "-wal", "-shm"):  # the CLI's connection may leave the WAL unmerged
        if Path(sample + suffix).exists():
            shutil.copy(sample + suffix, str(dst) + suffix)
    w = open_workspace(str(dst))
    yield w
    w.close()


def _active(s) -> list[PreferencePair]:
    return [p for p in s.scalars(select(PreferencePair)) if not p.provenance.get("retired_at")]


def test_sample_pairs_are_single_steps_with_tools(ws):
    with ws.session() as s:
        pairs = _active(s)
        assert {"modify", "reject_with_answer", "ranked"} <= {p.rule for p in pairs}
        for p in pairs:
            for side in (p.chosen, p.rejected):
                assert len(side) == 1 and side[0]["role"] == "assistant", p.id
            assert not same_step(p.chosen[0], p.rejected[0], p.prompt), p.id
            assert p.prompt and p.prompt[-1]["role"] in ("user", "tool"), p.id
            assert p.provenance["tools"], p.id
            names = {t["function"]["name"] for t in p.provenance["tools"]}
            for c in p.chosen[0].get("tool_calls") or []:
                assert c["function"]["name"] in names
        # ranked pairs differ in what the agent did, never only in copied ids
        ranked = [p for p in pairs if p.rule == "ranked"]
        assert ranked and all(p.margin > 0 for p in ranked)
        per_task: dict[str, int] = {}
        for p in ranked:
            per_task[p.task_key] = per_task.get(p.task_key, 0) + 1
        assert max(per_task.values()) <= rules.RANKED_LIMIT


def test_trl_records_carry_tools_and_structured_arguments(ws, tmp_path):
    with ws.session() as s:
        pr.create_snapshot(s, "all", pr.PairFilter())
        pr.export_snapshot(s, "all", "trl", tmp_path / "p.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines and all(rec["tools"] for rec in lines)
    calls = [
        c for rec in lines for m in rec["prompt"] + rec["chosen"] for c in m.get("tool_calls") or []
    ]
    assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)


def _render(tok, template, messages, tools, **kw) -> str:
    return tok.apply_chat_template(
        messages, tools=tools, chat_template=template, tokenize=False, **kw
    )


def test_records_render_through_a_tool_aware_template_once(ws, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(FIXTURES / "tiny-qwen2")
    template = (FIXTURES / "qwen2.5-tools.jinja").read_text()
    with ws.session() as s:
        pr.create_snapshot(s, "all", pr.PairFilter())
        pr.export_snapshot(s, "all", "trl", tmp_path / "p.jsonl")
    records = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    with_calls = [r for r in records if any(m.get("tool_calls") for m in r["prompt"])]
    assert with_calls
    for rec in with_calls[:40] + records[:20]:
        tools = rec["tools"]
        prompt = _render(tok, template, rec["prompt"], tools, add_generation_prompt=True)
        chosen = _render(tok, template, rec["prompt"] + rec["chosen"], tools)
        rejected = _render(tok, template, rec["prompt"] + rec["rejected"], tools)
        for tool in tools:  # each schema once, encoded once
            assert chosen.count(json.dumps(tool, ensure_ascii=False)) == 1
        for m in rec["prompt"] + rec["chosen"]:
            for c in m.get("tool_calls") or []:
                args = json.dumps(c["function"]["arguments"], ensure_ascii=False)
                assert f'"arguments": {args}}}' in chosen
        assert '"arguments": "' not in chosen + rejected  # never a string inside JSON
        # chosen and rejected share the prompt and differ only in the step
        assert chosen.startswith(prompt) and rejected.startswith(prompt)
        tail_c, tail_r = chosen[len(prompt) :], rejected[len(prompt) :]
        assert tail_c != tail_r and "<|im_start|>" not in tail_c + tail_r
        assert tail_c.endswith("<|im_end|>\n") and tail_r.endswith("<|im_end|>\n")


# ---------------------------------------------------------------------------------------------
# Corrections


def _trace_with_steps(s, n_calls: int = 2) -> Trace:
    """A trace with tool calls that no lead has adjudicated (a verdict would win)."""
    gold = set(s.scalars(select(Adjudication.trace_id)))
    for t in s.scalars(select(Trace).where(Trace.id.not_in(gold)).order_by(Trace.id)):
        calls = [m for m in t.messages if m["role"] == "assistant" and _calls(m)]
        if len(calls) >= n_calls and t.messages[-1]["role"] == "assistant":
            return t
    raise AssertionError("no trace with enough tool calls in the sample")


def _calls(m):
    return [p for p in m["parts"] if p["type"] == "tool_call"]


def _judge(s, name="Test Judge", role="judge") -> Judge:
    return get_or_create_judge(s, name, role)


def _scores(decision: str) -> dict:
    ok = decision == "approve"
    return {
        "task_success": int(ok),
        "policy": int(ok),
        "tool_use": 4 if ok else 1,
        "communication": 4 if ok else 1,
        "failure_mode": "none" if ok else "hallucination",
    }


def test_a_correction_of_two_steps_yields_two_pairs_after_the_corrected_history(ws):
    with ws.session() as s:
        t = _trace_with_steps(s)
        vid = s.scalar(select(Review.rubric_version_id).limit(1))
        steps = [i for i, m in enumerate(t.messages) if m["role"] == "assistant" and _calls(m)]
        first, last = steps[0], len(t.messages) - 1
        corrected = copy.deepcopy(t.messages)
        call = _calls(corrected[first])[0]
        key = next(iter(call["arguments"]))
        call["arguments"][key] = "EDITED-VALUE"
        corrected[last]["parts"] = [{"type": "text", "text": "A better final answer."}]
        data = ReviewInput(
            "modify", _scores("modify"), "two steps", corrected, "A better final answer."
        )
        judge = _judge(s)
        review = submit_review(s, t.id, judge.id, vid, data)
        pr.derive_pairs(s)
        mine = [
            p for p in _active(s) if review.id in p.provenance["review_ids"] and p.rule != "ranked"
        ]
        assert sorted(p.provenance["step"] for p in mine) == [first, last]
        a, b = sorted(mine, key=lambda p: p.provenance["step"])
        assert a.prompt == to_chat(t.messages[:first])
        assert a.chosen[0]["tool_calls"][0]["function"]["arguments"][key] == "EDITED-VALUE"
        assert a.rejected[0] == to_chat([t.messages[first]])[0]
        # the second pair's prompt is the corrected history: it holds the edited call
        assert b.prompt == to_chat(corrected[:last]) and b.prompt != to_chat(t.messages[:last])
        assert b.chosen == [{"role": "assistant", "content": "A better final answer."}]


def test_changed_steps_handles_cut_histories_inserts_deletes_and_kind_changes():
    def a(text):
        return {"role": "assistant", "parts": [{"type": "text", "text": text}]}

    def call(name):
        return {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": name, "name": name, "arguments": {}}],
        }

    def tool(x):
        return {"role": "tool", "parts": [{"type": "tool_result", "call_id": x, "content": x}]}

    user = {"role": "user", "parts": [{"type": "text", "text": "refund please"}]}
    orig = [user, call("lookup"), tool("lookup"), call("refund"), tool("refund"), a("done")]
    # edited step 3 into a reply (kind change) and cut the history there
    assert changed_steps(orig, [*orig[:3], a("please confirm first")]) == [(3, 3)]
    # a step inserted after step 1's result: compared with what the agent did there
    ins = [*orig[:3], call("check_policy"), tool("check_policy"), *orig[3:]]
    assert changed_steps(orig, ins) == [(3, 3)]
    # the first call deleted: the step that follows now stands where it stood
    assert changed_steps(orig, [user, *orig[3:]]) == [(1, 1)]
    # two edits, history kept whole: both steps, in order
    two = [user, call("lookup2"), orig[2], orig[3], orig[4], a("better")]
    assert changed_steps(orig, two) == [(1, 1), (5, 5)]
    assert changed_steps(orig, copy.deepcopy(orig)) == []


def test_a_lead_verdict_wins_over_the_judges(ws):
    with ws.session() as s:
        t = _trace_with_steps(s, 1)
        vid = s.scalar(select(Review.rubric_version_id).limit(1))
        corrected = copy.deepcopy(t.messages)
        corrected[-1]["parts"] = [{"type": "text", "text": "The judge's answer."}]
        data = ReviewInput("modify", _scores("modify"), "fix", corrected, "The judge's answer.")
        review = submit_review(s, t.id, _judge(s).id, vid, data)
        pr.derive_pairs(s)
        assert [p for p in _active(s) if review.id in p.provenance["review_ids"]]
        lead = _judge(s, "Test Lead", "lead")
        adjudicate(s, t.id, vid, lead.id, "approve", _scores("approve"), "It was fine.")
        changes = pr.derive_pairs(s)
        assert sum(changes.removed.values()) >= 1
        assert not [
            p for p in _active(s) if t.id in p.provenance["trace_ids"] and p.rule != "ranked"
        ]
        gold_only = pr.select_pairs(s, pr.PairFilter(adjudicated_only=True, max_per_task=None))
        assert not [p for p, _ in gold_only if review.id in p.provenance["review_ids"]]
        # the lead corrects it differently: the verdict's pair, not the judge's
        lead_fix = copy.deepcopy(t.messages)
        lead_fix[-1]["parts"] = [{"type": "text", "text": "The lead's answer."}]
        adjudicate(
            s,
            t.id,
            vid,
            lead.id,
            "modify",
            _scores("modify"),
            "Fix.",
            "The lead's answer.",
            lead_fix,
        )
        pr.derive_pairs(s)
        mine = [p for p in _active(s) if t.id in p.provenance["trace_ids"] and p.rule != "ranked"]
        assert [p.chosen[0]["content"] for p in mine] == ["The lead's answer."]
        assert mine[0].provenance["adjudicated"] and lead.id in mine[0].provenance["judge_ids"]


def test_derivation_is_incremental_and_says_what_changed(ws, monkeypatch):
    monkeypatch.setattr(derive, "SLACK", timedelta(0))
    with ws.session() as s:
        assert derive.last_watermark(s) is not None
        quiet = pr.derive_pairs(s)
        assert quiet.scopes == 0 and not quiet.changed
        t = _trace_with_steps(s, 1)
        vid = s.scalar(select(Review.rubric_version_id).limit(1))
        corrected = copy.deepcopy(t.messages)
        corrected[-1]["parts"] = [{"type": "text", "text": "Incremental answer."}]
        data = ReviewInput("modify", _scores("modify"), "fix", corrected, "Incremental answer.")
        review = submit_review(s, t.id, _judge(s, "Incremental Judge").id, vid, data)
        changes = pr.derive_pairs(s)
        assert changes.scopes == 1 and not changes.full
        assert changes.added["modify"] == 1 and len(changes.added_ids) == 1
        assert s.get(PreferencePair, changes.added_ids[0]).provenance["review_ids"] == [review.id]
        # a rule change (or no watermark) redoes everything
        assert pr.derive_pairs(s, full=True).full


def test_retired_pairs_stay_for_their_snapshot(ws, monkeypatch):
    with ws.session() as s:
        snap = pr.create_snapshot(s, "before", pr.PairFilter(rules=["modify"]))
        pid = snap.pair_ids[0]
        p = s.get(PreferencePair, pid)
        review = s.get(Review, p.provenance["review_ids"][0])
        for rid in p.provenance["review_ids"]:
            s.get(Review, rid).status = "draft"  # withdrawn: the pair is no longer derived
        s.flush()
        changes = pr.derive_pairs(s)
        assert pid in changes.removed_ids
        assert s.get(PreferencePair, pid).provenance.get("retired_at")
        assert pid not in {q.id for q, _ in pr.select_pairs(s, pr.PairFilter())}
        assert len(pr.snapshot_rows(s, snap)) == len(snap.pair_ids)  # still exports
        review.status = "submitted"
        s.flush()
        changes = pr.derive_pairs(s)
        assert pid in changes.added_ids and not s.get(PreferencePair, pid).provenance.get(
            "retired_at"
        )


# ---------------------------------------------------------------------------------------------
# Ranked pairs, the cap, the split


def _chat_run(ticket: str, priority: str, answer: str) -> list[dict]:
    return [
        {"role": "user", "content": "VPN down for the whole office"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "id": f"call_{ticket}",
                    "function": {"name": "create_ticket", "arguments": {"priority": priority}},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": f"call_{ticket}",
            "content": json.dumps({"ticket": ticket}),
        },
        {"role": "assistant", "content": answer.format(ticket=ticket)},
    ]


def test_ranked_compares_the_first_diverging_step_with_copied_ids_normalised():
    good_a = _chat_run("INC-5717", "P1", "Opened {ticket} as P1.")
    good_b = _chat_run("INC-9930", "P1", "Opened {ticket} as P1.")
    assert first_divergence(good_a, good_b) is None  # the same behaviour, other ids
    worse = _chat_run("INC-1234", "P1", "Opened {ticket} as P3, sorry.")
    assert first_divergence(good_a, worse) == (3, 3)
    from app.training.steps import carry_ids

    carried = carry_ids(worse[3], worse[:3], good_a[:3])
    assert carried["content"] == "Opened INC-5717 as P3, sorry."  # reads after the prompt
    wrong_call = _chat_run("INC-1", "P3", "Opened {ticket}.")
    assert first_divergence(good_a, wrong_call) == (1, 1)
    # runs whose tool results differ in substance saw different worlds: no comparison
    other_world = copy.deepcopy(good_b)
    other_world[2]["content"] = json.dumps({"ticket": "INC-9930", "status": "rejected"})
    other_world[3]["content"] = "Could not open a ticket."
    assert first_divergence(good_a, other_world) is None


def _fake_version():
    crit = SimpleNamespace(key="ok", scale="ordinal", weight=1.0, levels=[1, 2, 3, 4, 5, 6])
    return SimpleNamespace(id=1, criteria=[crit])


def _internal(chat: list[dict]) -> list[dict]:
    out = []
    for m in chat:
        if m["role"] == "tool":
            parts = [{"type": "tool_result", "call_id": m["tool_call_id"], "content": m["content"]}]
        else:
            parts = [{"type": "text", "text": m["content"]}] if m["content"] else []
            for c in m.get("tool_calls") or []:
                f = c["function"]
                parts.append(
                    {
                        "type": "tool_call",
                        "id": c["id"],
                        "name": f["name"],
                        "arguments": f["arguments"],
                    }
                )
        out.append({"role": m["role"], "parts": parts})
    return out


def test_ranked_pairs_are_capped_largest_margins_first():
    traces, reviews = [], {}
    for i in range(30):  # 30 runs acting differently, scores 1..6
        chat = _chat_run(f"INC-{1000 + i}", f"P{i}", "Opened {ticket}.")
        traces.append(SimpleNamespace(id=i + 1, messages=_internal(chat), tools=[], task_key="k"))
        reviews[i + 1] = [SimpleNamespace(id=100 + i, judge_id=1, scores={"ok": 1 + i % 6})]
    out = rules.ranked_candidates(_fake_version(), traces, reviews, {}, limit=7)
    margins = [c.margin for c in out]
    assert len(out) == 7 and margins == sorted(margins, reverse=True) and margins[0] == 1.0
    assert all(c.step == 1 for c in out)  # the create_ticket call is where they differ


def _pair(pid: int, task: str, rule: str = "modify", margin=None) -> PreferencePair:
    return PreferencePair(
        id=pid,
        rule=rule,
        task_key=task,
        margin=margin,
        content_hash=str(pid),
        provenance={"trace_ids": [pid]},
        rubric_version_id=1,
    )


def test_split_balances_pairs_and_keeps_tasks_whole():
    pairs = [_pair(i, "big") for i in range(300)]
    pairs += [_pair(1000 + i, f"t{i // 3}") for i in range(90)]
    for seed in range(6):
        sides = pr.assign_splits(pairs, 0.1, seed)
        held = sum(1 for p in pairs if sides[pr.group_of(p)] == "heldout")
        assert abs(held - 39) <= 3, (seed, held)  # 10% of 390 pairs
    ranked = [_pair(2000 + i, "t", "ranked", margin=i / 100) for i in range(1, 30)]
    capped = pr._cap_per_task(ranked + pairs[:5], 4)
    assert [p.margin for p in capped if p.rule == "ranked"] == [0.26, 0.27, 0.28, 0.29]
    assert len(capped) == 9


def test_cli_max_per_task_and_rules(sample, capsys):
    assert main(["--db", sample, "pairs", "stats", "--json", "--max-per-task", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pairs"] == sum(data["by_rule"].values()) and "derived" in data
    assert set(data["by_split"]) == {"train", "heldout"}


# ---------------------------------------------------------------------------------------------
# Step labels: first_error pairs and agreement


def test_first_error_pairs_sit_at_the_marked_step(ws):
    with ws.session() as s:
        pairs = [p for p in _active(s) if p.rule == "first_error"]
        assert pairs
        for p in pairs:
            marked = set()
            for rid in p.provenance["review_ids"]:
                for lab in s.get(Review, rid).step_labels or []:
                    if lab["label"] == "first_error":
                        marked.add(lab["step"])
            assert p.provenance["step"] in marked, p.id
        # a first error marked where the correction changed nothing makes no first_error pair
        for p in _active(s):
            if p.rule == "modify":
                for rid in p.provenance["review_ids"]:
                    labels = s.get(Review, rid).step_labels or []
                    assert all(
                        lab["step"] != p.provenance["step"]
                        for lab in labels
                        if lab["label"] == "first_error"
                    )


def test_step_label_agreement_matches_the_reference_alpha(ws, capsys):
    import krippendorff
    import numpy as np

    from app.agreement.reliability import first_error_agreement, step_agreement

    assert first_error_agreement({1: {"a": 3, "b": 3, "c": 5}, 2: {"a": 1}}) == (3, 1)
    with ws.session() as s:
        rows = [
            (r.trace_id, r.judge_id, lab)
            for r in s.scalars(
                select(Review).where(Review.rubric_version_id == 1, Review.status == "submitted")
            )
            for lab in r.step_labels or []
        ]
        got = step_agreement(s, 1, n_boot=0)
    units = sorted({(t, lab["step"]) for t, _, lab in rows})
    judges = sorted({j for _, j, _ in rows})
    codes = {"good": 0, "wrong": 1, "first_error": 2}
    data = np.full((len(judges), len(units)), np.nan)
    for t, j, lab in rows:
        data[judges.index(j), units.index((t, lab["step"]))] = codes[lab["label"]]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert got.alpha.value == pytest.approx(expected, abs=1e-9)
    assert got.n_steps == len(units) and 0 < got.exact_step < 1
    marks: dict = {}
    for t, j, lab in rows:
        if lab["label"] == "first_error":
            marks.setdefault(t, {})[j] = lab["step"]
    assert (got.first_error_pairs, got.first_error_same) == first_error_agreement(marks)
    # the command line shows both
    db = str(ws.engine.url.database)
    assert main(["--db", db, "agreement", "--version", "1", "--bootstrap", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["step_labels"]
    assert out["exact_step_agreement"] == pytest.approx(got.exact_step, abs=1e-6)
    assert main(["--db", db, "agreement", "--version", "1", "--bootstrap", "0"]) == 0
    assert "first error, same step" in capsys.readouterr().out


def test_derivation_on_both_backends(db_url, monkeypatch):
    """Derivation and its watermark (timestamps with time zones) on SQLite and PostgreSQL."""
    from app.sample import build_sample

    monkeypatch.setattr(derive, "SLACK", timedelta(0))
    w = open_workspace(db_url)
    try:
        build_sample(w, n_traces=60)
        with w.session() as s:
            first = pr.derive_pairs(s)
            assert first.full and sum(first.added.values()) > 0
        with w.session() as s:
            again = pr.derive_pairs(s)
            assert again.scopes == 0 and not again.changed
            rows = pr.select_pairs(s, pr.PairFilter())
            got = sorted(
                (p.rule, p.provenance["step"], tuple(p.provenance["trace_ids"])) for p, _ in rows
            )
    finally:
        w.close()
    assert sum(first.added.values()) == len(got)
    assert {r for r, _, _ in got} >= {"modify", "reject_with_answer"}


def test_html_report_shows_step_label_agreement(ws, tmp_path, capsys):
    from app.agreement.reliability import step_agreement

    with ws.session() as s:
        steps = step_agreement(s, 1, n_boot=0)
    out = tmp_path / "r.html"
    db = str(ws.engine.url.database)
    args = ["--db", db, "report", "agreement", "--version", "1", "--bootstrap", "0"]
    assert main([*args, "--out", str(out)]) == 0
    text = out.read_text()
    assert "<h2>Step labels</h2>" in text
    assert f"{steps.first_error_same} of {steps.first_error_pairs} judge pairs" in text


def test_old_snapshots_still_verify_and_openai_refuses_whole_continuations(ws, tmp_path, capsys):
    """A snapshot made before step-level pairs (record version 1, multi-message sides)."""
    import hashlib

    from app.workspace.models import DatasetSnapshot

    with ws.session() as s:
        old = PreferencePair(
            rule="modify",
            prompt=[{"role": "user", "content": "refund please"}],
            chosen=[
                {"role": "assistant", "content": "checking"},
                {"role": "tool", "tool_call_id": "c", "content": "{}"},
                {"role": "assistant", "content": "refunded"},
            ],
            rejected=[{"role": "assistant", "content": "no"}],
            content_hash="legacy-pair",
            provenance={"trace_ids": [1], "review_ids": []},
        )
        s.add(old)
        s.flush()
        rows = [(old, "train")]
        sha = hashlib.sha256(pr.export_bytes(rows, "trl", 1)).hexdigest()
        manifest = {"splits": {str(old.id): "train"}}  # no record_version: version 1
        s.add(DatasetSnapshot(name="legacy", pair_ids=[old.id], sha256=sha, manifest=manifest))
    db = str(ws.engine.url.database)
    out = tmp_path / "legacy.jsonl"
    args = ["--db", db, "export", "pairs", "--snapshot", "legacy", "--out", str(out)]
    assert main([*args, "--format", "trl"]) == 0
    assert "tools" not in json.loads(out.read_text())
    capsys.readouterr()
    assert main([*args[:-1], str(tmp_path / "o.jsonl"), "--format", "openai"]) == 2
    err = capsys.readouterr().err
    assert "one assistant message per output" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()
