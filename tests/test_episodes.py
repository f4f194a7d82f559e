"""A GRPO run's episodes: read tolerantly while the run writes, shown as traces, and the
held-out ones sent to judges as a review round, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.training import episodes as ep
from app.training.steps import to_chat
from app.workspace.db import open_workspace
from app.workspace.models import (
    Assignment,
    AuditEntry,
    Judge,
    ReviewRound,
    Trace,
    TraceScore,
    TraceTool,
    TrainingRun,
)
from tests.test_training import db, sample_db  # noqa: F401 - fixtures
from tests.test_training import run as cli


def _openai_tools(tools: list[dict]) -> list[dict]:
    return [{"type": "function", "function": t} for t in tools]


def write_agent_run(ws, run_dir: Path, name: str = "agent-grpo", steps=(1, 2)) -> int:
    """A finished agent-GRPO run directory in the SPEC's formats, built from real sample
    traces: each task's prompt (messages up to the first assistant turn) and tools in
    data/*.jsonl, and as each episode that trace's own trajectory (real tool calls and tool
    results), with rewards per grader; the watch's and the log's events. Returns the run id."""
    with ws.session() as s:
        traces = list(
            s.scalars(select(Trace).where(Trace.n_tool_calls >= 2).order_by(Trace.id).limit(3))
        )
        tasks, episodes = [], []
        for i, t in enumerate(traces):
            first = next(k for k, m in enumerate(t.messages) if m["role"] == "assistant")
            split = "heldout" if i < 2 else "train"
            tasks.append(
                {
                    "kind": "agent",
                    "task_key": t.task_key,
                    "trace_ids": [t.id],
                    "prompt": to_chat(t.messages[:first]),
                    "tools": _openai_tools(t.tools),
                    "reference": {"answer": t.final_output, "tool_calls": []},
                    "split": split,
                }
            )
            episode = to_chat(t.messages[first:])
            for step in steps:
                episodes.append(
                    {
                        "step": step,
                        "split": split,
                        "task_key": t.task_key,
                        "index": 0,
                        "messages": episode,
                        "prompt_messages": first,
                        "rewards": {"match": 0.25 * step, "tools": 1.0},
                        "reward": 0.25 * step + 1.0,
                        "completion_tokens": 40 + step,
                        "tool_calls": t.n_tool_calls,
                        "copied_prompt": False,
                    }
                )
        (run_dir / "data").mkdir(parents=True)
        for split in ("train", "heldout"):
            (run_dir / "data" / f"{split}.jsonl").write_text(
                "".join(json.dumps(x) + "\n" for x in tasks if x["split"] == split)
            )
        lines = [json.dumps(e) for e in episodes]
        (run_dir / "episodes.jsonl").write_text("\n".join(lines) + "\n")
        events = [{"event": "start", "step": 0}]
        for step in steps:
            events.append(
                {
                    "event": "log",
                    "step": step,
                    "max_steps": len(steps),
                    "metrics": {"loss": 0.1 * step, "reward": 0.5 * step, "obs_ce": 3.0 - step},
                }
            )
            events.append(
                {
                    "event": "watch",
                    "step": step,
                    "n": 2,
                    "reward_mean": 0.4 * step,
                    "rewards": {"match": 0.2 * step, "tools": 1.0},
                    "kl": 0.01 * step,
                    "completion_length": 30.0 + step,
                    "copy_share": 0.1 * (step - 1),
                    "obs_ce": 2.5 - 0.5 * step,
                }
            )
        events.append(
            {
                "event": "alert",
                "step": steps[-1],
                "kind": "reward_hacking",
                "message": "reward rose while copy share rose from 0.00 to 0.10",
                "signals": {"copy_share": [0.0, 0.1]},
            }
        )
        events.append({"event": "finished", "step": steps[-1], "metrics": {}})
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        tools = sorted({x["name"] for t in traces for x in t.tools})
        config = {
            "algorithm": "grpo",
            "name": name,
            "environment": {
                "kind": "file",
                "path": str(run_dir / "environment.py"),
                "source": "/home/u/sample_environment.py",
                "tools": tools,
            },
            "data": {"refused": {"tasks whose reference has no tool calls": 3}},
            "training": {"beta": 0.04, "echo_lambda": 0.005, "watch_steps": 1, "watch_prompts": 2},
            "rubric_version_ids": [],
        }
        (run_dir / "config.json").write_text(json.dumps(config))
        run = TrainingRun(
            name=name,
            algorithm="grpo",
            base_model="tests/fixtures/tiny-qwen2",
            config=config,
            run_dir=str(run_dir),
            status="finished",
        )
        s.add(run)
        s.flush()
        return run.id


def test_reading_skips_bad_and_half_written_lines(tmp_path):
    good = {"step": 3, "split": "heldout", "task_key": "k", "messages": [], "rewards": {"m": 1}}
    (tmp_path / "episodes.jsonl").write_bytes(
        json.dumps(good).encode()
        + b"\n{not json\n"
        + json.dumps({"step": "x", "split": "train", "messages": []}).encode()  # bad field
        + b"\n"
        + json.dumps({**good, "split": "train", "step": 4}).encode()
        + b'\n{"step": 5, "split": "heldout", "mess'  # the run is still writing this one
    )
    eps = ep.read_episodes(tmp_path)
    assert [(e["step"], e["split"], e["line"]) for e in eps] == [(3, "heldout", 1), (4, "train", 4)]
    assert ep.read_episodes(tmp_path, split="heldout", step=3)[0]["rewards"] == {"m": 1}
    assert ep.read_episodes(tmp_path, step=5) == []
    first, offset, line = ep.read_episodes_since(tmp_path)
    assert [e["line"] for e in first] == [1, 4] and line == 5
    with open(tmp_path / "episodes.jsonl", "ab") as f:  # the half line completed
        f.write(b'ages": [], "reward": 0.5}\n')
    more, _, _ = ep.read_episodes_since(tmp_path, offset, line)
    assert [(e["step"], e["line"], e["reward"]) for e in more] == [(5, 5, 0.5)]
    assert ep.read_episodes(tmp_path / "missing") == []


def test_an_episode_renders_as_a_trace_with_its_prompt_and_tool_calls(db, tmp_path):  # noqa: F811
    ws = open_workspace(db)
    write_agent_run(ws, tmp_path / "run")
    e = ep.read_episodes(tmp_path / "run", split="heldout")[0]
    tasks = ep.task_prompts(tmp_path / "run")
    t = ep.episode_trace(e, tasks[e["task_key"]])
    roles = [m["role"] for m in t["messages"]]
    assert roles[: t["prompt_messages"]] == ["system", "user"]
    calls = [p for m in t["messages"] for p in m["parts"] if p["type"] == "tool_call"]
    results = [p for m in t["messages"] for p in m["parts"] if p["type"] == "tool_result"]
    assert len(calls) == t["n_tool_calls"] == e["tool_calls"] >= 2
    assert isinstance(calls[0]["arguments"], dict) and calls[0]["arguments"]
    assert results and results[0]["call_id"] == calls[0]["id"]
    assert {x["name"] for x in t["tools"]} >= {c["name"] for c in calls}
    bad = {**e, "messages": [{"content": "no role"}]}
    with pytest.raises(ep.EpisodeError, match=r"episodes.jsonl line \d+: messages\[0\]"):
        ep.episode_trace(bad, None)
    ws.close()


def test_held_out_episodes_go_to_judges_once(db, tmp_path):  # noqa: F811
    ws = open_workspace(db)
    rid = write_agent_run(ws, tmp_path / "run")
    with ws.session() as s:
        judges, k = ep.default_judges(s)
        lead = s.scalar(select(Judge.id).where(Judge.role == "lead"))
        n_traces = s.scalar(select(func.count(Trace.id)))
        name = ep.round_name(s, rid)
        rnd = ep.episodes_to_round(s, rid, name, judges, k, created_by=lead)
        round_id = rnd.id
    assert name == "agent-grpo held-out" and len(judges) >= 2 and k == 2
    with ws.session() as s:
        sent = list(s.scalars(select(Trace).where(Trace.source == "run:agent-grpo")))
        # two held-out tasks x two logged steps; the train split is not sent
        assert len(sent) == 4 == s.scalar(select(func.count(Trace.id))) - n_traces
        assert {t.meta["step"] for t in sent} == {1, 2} and {t.meta["split"] for t in sent} == {
            "heldout"
        }
        for t in sent:
            assert t.n_tool_calls >= 2 and t.messages[0]["role"] == "system"
            assert {x["name"]: x["value"] for x in t.scores} == {
                "match": 0.25 * t.meta["step"],
                "tools": 1.0,
            }
        rows = s.execute(
            select(Assignment.trace_id, Assignment.judge_id).where(Assignment.round_id == round_id)
        ).all()
        per_trace: dict[int, set[int]] = {}
        for tid, jid in rows:
            per_trace.setdefault(tid, set()).add(jid)
        assert set(per_trace) == {t.id for t in sent}
        # the judges' queue filters see them: the tools they call, the graders' scores
        ids = [t.id for t in sent]
        assert s.scalar(
            select(func.count()).select_from(TraceScore).where(TraceScore.trace_id.in_(ids))
        ) == 2 * len(ids)
        tools = set(s.scalars(select(TraceTool.name).where(TraceTool.trace_id.in_(ids))))
        assert tools == {
            p["name"]
            for t in sent
            for m in t.messages
            for p in m["parts"]
            if p["type"] == "tool_call"
        }
        assert all(len(js) == 2 and js <= set(judges) for js in per_trace.values())
        r = s.get(ReviewRound, round_id)
        assert r.selection["run"] == "agent-grpo" and r.selection["new_traces"] == 4
        audit = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "send_heldout", AuditEntry.entity_id == rid
            )
        ).one()
        assert audit.actor_id == lead and audit.details["traces"] == 4
    # the second click: no new trace, round or assignment; the same round comes back
    with ws.session() as s:
        again = ep.episodes_to_round(s, rid, ep.round_name(s, rid), judges, k)
        assert again.id == round_id
        assert s.scalar(select(func.count(Trace.id))) == n_traces + 4
        assert (
            s.scalar(select(func.count(ReviewRound.id)).where(ReviewRound.name.like("agent%"))) == 1
        )
        assert len(rows) == s.scalar(
            select(func.count(Assignment.id)).where(Assignment.round_id == round_id)
        )
    # the run goes on and logs a later watch: only its episode goes out, in a second round
    later = ep.read_episodes(tmp_path / "run", split="heldout")[0]
    later = {k: v for k, v in later.items() if k != "line"} | {"step": 3}
    with open(tmp_path / "run" / "episodes.jsonl", "a") as f:
        f.write(json.dumps(later) + "\n")
    with ws.session() as s:
        second = ep.episodes_to_round(s, rid, ep.round_name(s, rid), judges, k)
        assert second.name == "agent-grpo held-out (2)" and second.id != round_id
        (new_trace,) = set(
            s.scalars(select(Assignment.trace_id).where(Assignment.round_id == second.id))
        )
        assert s.get(Trace, new_trace).meta["step"] == 3
        assert second.selection["n_traces"] == 1 and second.selection["new_traces"] == 1
    ws.close()


def test_a_run_without_held_out_episodes_says_so(db, tmp_path):  # noqa: F811
    ws = open_workspace(db)
    rid = write_agent_run(ws, tmp_path / "run")
    (tmp_path / "run" / "episodes.jsonl").write_text("")
    with ws.session() as s, pytest.raises(ep.EpisodeError, match="no held-out episodes"):
        ep.episodes_to_round(s, rid, "x", [1], 1)
    ws.close()


def test_cli_lists_episodes_and_sends_held_out_ones(db, tmp_path, capsys):  # noqa: F811
    ws = open_workspace(db)
    write_agent_run(ws, tmp_path / "run")
    with ws.session() as s:
        names = list(s.scalars(select(Judge.name).where(Judge.role == "judge").limit(2)))
    ws.close()
    code, out, _ = cli(capsys, "--db", db, "runs", "episodes", "agent-grpo", "--split", "heldout")
    assert code == 0 and len(out.strip().splitlines()) == 1 + 4
    assert "match=0.50" in out
    code, out, _ = cli(
        capsys, "--db", db, "runs", "send-heldout", "agent-grpo", "--judges", ",".join(names)
    )
    assert code == 0 and "4 held-out episodes" in out and "agent-grpo held-out" in out
    code, out, _ = cli(
        capsys, "--db", db, "runs", "send-heldout", "agent-grpo", "--judges", ",".join(names)
    )
    assert code == 0 and "already" in out


def test_a_pair_prompt_is_found_under_the_key_the_watch_gives_it(tmp_path):
    """Non-agent GRPO: held-out records are TRL pairs without a task key; the watch keys their
    episodes by sha256 (12 hex digits) of the prompt's JSON, sorted keys, in the trainer's
    one-schema form. The key below is what the watch's own `_task_key` (echo13's
    trainer/watch.py) returned for this prompt's row of the trainer's Arrow dataset."""
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is order NW-1?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": {"order_id": "NW-1"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "heldout.jsonl").write_text(
        json.dumps({"prompt": prompt, "chosen": [], "rejected": [], "split": "heldout"}) + "\n"
    )
    key = "f285d770acfa"
    line = {
        "step": 0,
        "split": "heldout",
        "task_key": key,
        "messages": [{"role": "assistant", "content": "It shipped."}],
    }
    (tmp_path / "episodes.jsonl").write_text(json.dumps(line) + "\n")
    (e,) = ep.read_episodes(tmp_path)
    t = ep.episode_trace(e, ep.task_prompts(tmp_path)[key])
    assert [m["role"] for m in t["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert t["final_output"] == "It shipped." and t["prompt_messages"] == 4


def test_watch_and_alert_events_read_as_sentences_in_the_log():
    from app.training.runs import format_event

    watch = {
        "event": "watch",
        "step": 4,
        "n": 8,
        "reward_mean": 0.5,
        "kl": 0.0123456,
        "completion_length": 31.0,
        "copy_share": 0.25,
        "obs_ce": None,
    }
    assert format_event(json.dumps(watch).encode()) == (
        "watch at step 4 (8 held-out completions): reward 0.5, KL 0.01235, length 31, "
        "copy share 0.25\n"
    )
    alert = {"event": "alert", "step": 6, "kind": "reward_hacking", "message": "reward up"}
    assert format_event(json.dumps(alert).encode()) == "ALERT at step 6: reward up\n"


def test_sending_to_judges_once_on_postgresql(pg_url, tmp_path):
    """The same send on PostgreSQL (its triggers, JSONB columns and constraints)."""
    from app.sample import build_sample

    ws = open_workspace(pg_url)
    build_sample(ws, n_traces=30)
    rid = write_agent_run(ws, tmp_path / "run")
    with ws.session() as s:
        judges, k = ep.default_judges(s)
        first = ep.episodes_to_round(s, rid, ep.round_name(s, rid), judges, k).id
    with ws.session() as s:
        again = ep.episodes_to_round(s, rid, ep.round_name(s, rid), judges, k).id
        sent = s.scalar(select(func.count(Trace.id)).where(Trace.source == "run:agent-grpo"))
        n_assigned = s.scalar(select(func.count(Assignment.id)).where(Assignment.round_id == first))
        scores = s.scalar(
            select(func.count())
            .select_from(TraceScore)
            .join(Trace, Trace.id == TraceScore.trace_id)
            .where(Trace.source == "run:agent-grpo")
        )
    assert again == first and sent == 4 and n_assigned == 4 * k and scores == 8
    ws.close()
