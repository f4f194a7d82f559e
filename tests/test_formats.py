"""Benchmark and framework formats, each from a fixture written in the exact public shape
(tests/fixtures/formats; the source of each shape is named in app/traces/importers)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from app.traces.importers import FileImport
from app.traces.importers.conversations import KeyOptions
from app.traces.importers.messages import RecordError
from app.traces.ingest import import_paths
from app.traces.model import TraceRecord

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def read(path, fmt=None, options=None):
    reader = FileImport(Path(path), fmt, options)
    results = list(reader)
    recs = [r for _, r in results if isinstance(r, TraceRecord)]
    errs = [(loc, r) for loc, r in results if isinstance(r, RecordError)]
    return reader.format, recs, errs


def roles(rec):
    return [m["role"] for m in rec.messages]


def parts(rec, kind):
    return [p for m in rec.messages for p in m["parts"] if p["type"] == kind]


def test_swe_agent_traj_reads_history_not_trajectory():
    fmt, [rec], errs = read(FIXTURES / "django__django-11099.traj")
    assert fmt == "swe-agent" and not errs
    assert roles(rec) == ["system", "user", "assistant", "tool"] * 1 + [
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    calls = parts(rec, "tool_call")
    assert [c["name"] for c in calls] == ["bash", "str_replace_editor", "submit"]
    assert calls[0]["arguments"] == {
        "command": "grep -n 'ASCIIUsernameValidator' -r django/contrib/auth/validators.py"
    }
    results = parts(rec, "tool_result")
    assert [r["call_id"] for r in results] == ["call_01", "call_02", "call_03"]
    assert parts(rec, "reasoning")[0]["text"].startswith("The regex uses $")
    assert rec.external_id == "django__django-11099"  # SWE-agent names the file after the task
    assert (rec.outcome, rec.outcome_label) == (None, "submitted")
    assert rec.outcome_source == "swe-agent:info.exit_status"
    assert rec.metadata["submission"].startswith("diff --git a/django/contrib/auth/validators.py")
    assert rec.metadata["demonstration_messages_left_out"] == 1
    assert rec.metadata["n_steps"] == 3 and rec.metadata["model_stats"]["api_calls"] == 3
    assert rec.task.endswith("UsernameValidator allows trailing newline in usernames. Fix it.")


def test_swe_agent_without_history_uses_the_steps(tmp_path):
    data = json.loads((FIXTURES / "django__django-11099.traj").read_text())
    del data["history"]
    path = tmp_path / "t.traj"
    path.write_text(json.dumps(data))
    fmt, [rec], errs = read(path)
    assert fmt == "swe-agent" and not errs
    assert roles(rec) == ["assistant", "user"] * 3
    assert "```\ngrep -n 'ASCIIUsernameValidator'" in rec.messages[0]["parts"][0]["text"]


def test_a_folder_of_traj_files_imports_and_reports_what_it_skips(ws, tmp_path, capsys):
    from app.cli import main

    run = tmp_path / "trajectories" / "run1"
    run.mkdir(parents=True)
    shutil.copy(FIXTURES / "django__django-11099.traj", run)
    (run / "django__django-11099.pred").write_text("{}")
    (run / "run.log").write_text("log")
    (run / ".hidden").mkdir()
    (run / ".hidden" / "x.json").write_text("{}")
    report = import_paths(ws, [tmp_path / "trajectories"])
    assert report.imported == 1 and not report.errors
    assert sorted(Path(s["file"]).name for s in report.skipped) == [
        "django__django-11099.pred",
        "run.log",
    ]
    db = tmp_path / "cli.sqlite"
    code = main(["--db", str(db), "import", str(tmp_path / "trajectories"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["imported"] == 1 and len(out["skipped"]) == 2
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    report = import_paths(ws, [empty])
    assert report.errors[0]["message"].startswith("no trace files in this folder")


def test_toolbench_answer_takes_the_longest_train_messages():
    fmt, [rec], errs = read(FIXTURES / "12345_DFS_woFilter_w2.json")
    assert fmt == "toolbench" and not errs
    assert roles(rec) == ["system", "user", "assistant", "tool", "assistant"]
    calls = parts(rec, "tool_call")
    assert [c["name"] for c in calls] == ["get_weather_for_city_for_weatherapi", "Finish"]
    assert calls[0]["arguments"] == {"city": "Paris"}
    assert parts(rec, "tool_result")[0]["call_id"] == calls[0]["id"]  # legacy function role
    assert (rec.outcome, rec.outcome_label, rec.outcome_source) == (1.0, "pass", "toolbench:win")
    assert rec.external_id == "12345_DFS_woFilter_w2"
    assert rec.task == "What is the weather in Paris right now?"
    assert [t["name"] for t in rec.tools] == ["get_weather_for_city_for_weatherapi", "Finish"]
    assert rec.metadata["finish_type"] == "give_answer"
    assert "import_warnings" not in rec.metadata


def test_toolbench_lists_that_are_not_prefixes_are_reported(ws):
    path = FIXTURES / "23456_DFS_woFilter_w2.json"
    _, [rec], _ = read(path)
    warning = (
        "answer_generation.train_messages[0] is not a prefix of the longest list "
        "answer_generation.train_messages[1] (differs at message 2); only "
        "answer_generation.train_messages[1] was imported"
    )
    assert rec.metadata["import_warnings"] == [warning]
    report = import_paths(ws, [path])
    assert report.imported == 1
    assert report.warnings == [{"file": str(path), "record": "record 0", "message": warning}]


def test_toolbench_failed_run_is_read_from_its_chain():
    _, [rec], errs = read(FIXTURES / "34567_CoT@1.json")
    assert not errs and (rec.outcome, rec.outcome_label) == (0.0, "fail")
    assert roles(rec) == ["user", "assistant", "assistant", "tool"]
    assert parts(rec, "tool_call")[0]["arguments"] == {"city": "Paris"}
    assert "18" in parts(rec, "tool_result")[0]["content"]


def test_toolbench_with_the_generic_benchmark_options():
    """The issue's command line: --format benchmark with explicit keys."""
    options = KeyOptions(messages_key="answer_generation.train_messages", outcome_key="win")
    fmt, [rec], errs = read(FIXTURES / "12345_DFS_woFilter_w2.json", "benchmark", options)
    assert not errs and len(rec.messages) == 5 and rec.outcome == 1.0


def test_tau_bench_keeps_the_ground_truth_as_reference():
    fmt, [rec], errs = read(FIXTURES / "tau_bench_results.json")
    assert fmt == "tau-bench" and not errs
    assert rec.external_id == "7#trial0" and rec.outcome == 0.0
    assert rec.outcome_source == "tau-bench:reward"
    ref = rec.metadata["reference"]
    assert ref["instruction"].startswith("You are mia_li_3668. You want to cancel")
    assert ref["expected_actions"] == [
        {"name": "cancel_reservation", "arguments": {"reservation_id": "ZFA04Y"}}
    ]
    assert ref["reward_info"]["info"] == {"r_actions": 0.0, "gt_data_hash": "ea1402bc"}
    assert ref["user_id"] == "mia_li_3668" and ref["expected_outputs"] == []
    assert parts(rec, "tool_call")[0]["name"] == "get_reservation_details"


def test_agentbench_runs():
    fmt, recs, errs = read(FIXTURES / "agentbench_runs.jsonl")
    assert fmt == "agentbench" and not errs
    assert [r.external_id for r in recs] == ["3", "4"]
    assert roles(recs[0]) == ["user", "assistant", "user", "assistant"]
    assert [(r.outcome, r.outcome_source) for r in recs] == [
        (1.0, "agentbench:output.result.is_correct"),
        (0.0, "agentbench:output.result.is_correct"),
    ]
    assert recs[1].metadata["status"] == "task limit reached"
    assert recs[1].metadata["reference"] == {"ground_truth": "7", "answer": ""}


def _inspect_zip(tmp_path, log) -> Path:
    path = tmp_path / "2025-01-01T00-00-00_arith_abc.eval"
    header = {k: v for k, v in log.items() if k != "samples"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("_journal/start.json", json.dumps({"version": 2, "eval": log["eval"]}))
        for s in log["samples"]:
            z.writestr(f"samples/{s['id']}_epoch_{s['epoch']}.json", json.dumps(s))
        z.writestr("header.json", json.dumps(header))
    return path


def test_inspect_json_log_and_eval_archive_agree(tmp_path):
    log = json.loads((FIXTURES / "inspect_log.json").read_text())
    fmt, recs, errs = read(FIXTURES / "inspect_log.json")
    zfmt, zrecs, zerrs = read(_inspect_zip(tmp_path, log))
    assert fmt == zfmt == "inspect" and not errs and not zerrs
    for got in (recs, zrecs):
        q1, q2 = got
        assert (q1.external_id, q1.outcome, q1.outcome_label) == ("q1", 1.0, "correct")
        assert (q2.external_id, q2.outcome, q2.outcome_label) == ("q2", 0.0, "incorrect")
        call = parts(q1, "tool_call")[0]
        assert (call["name"], call["arguments"]) == ("calculator", {"expression": "6*7"})
        assert parts(q1, "tool_result")[0]["call_id"] == "tc1"
        assert parts(q1, "reasoning")[0]["text"] == "Multiply with the tool."
        assert q1.final_output == "6 * 7 = 42"  # the attachment, resolved
        assert q1.metadata["reference"]["target"] == "42"
        assert q2.metadata["reference"]["target"] == ["Canberra"]
        assert q1.metadata["task"] == "arith" and q1.metadata["model"] == "openai/gpt-4o"
        assert q1.scores == [
            {"name": "match", "value": 1.0, "source": "inspect", "comment": "6 * 7 = 42"}
        ]


def test_inspect_archive_damaged_or_foreign(tmp_path, ws):
    bad = tmp_path / "bad.eval"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    other = tmp_path / "other.eval"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hi")
    report = import_paths(ws, [bad, other])
    assert "a damaged zip archive" in report.errors[0]["message"]
    assert "not an Inspect AI .eval log" in report.errors[1]["message"]


def test_langgraph_thread_history_takes_the_latest_state():
    fmt, [rec], errs = read(FIXTURES / "langgraph_history.json")
    assert fmt == "langgraph" and not errs
    assert rec.external_id == "thread-9" and rec.metadata == {"n_checkpoints": 4}
    assert roles(rec) == ["user", "assistant", "tool", "assistant"]
    call = parts(rec, "tool_call")[0]
    assert call == {
        "type": "tool_call",
        "id": "tc_1",
        "name": "book_table",
        "arguments": {"people": 2, "time": "19:00"},
    }
    assert parts(rec, "tool_result")[0]["call_id"] == "tc_1"
    assert rec.final_output == "Done: table 12 at 7pm for two."


def test_smolagents_memory_steps():
    fmt, [rec], errs = read(FIXTURES / "smolagents_steps.json")
    assert fmt == "smolagents" and not errs
    assert roles(rec) == ["user", "assistant", "tool", "assistant", "tool"]
    calls = parts(rec, "tool_call")
    assert [c["id"] for c in calls] == ["call_s1", "call_s2"]
    assert [r["call_id"] for r in parts(rec, "tool_result")] == ["call_s1", "call_s2"]
    assert rec.final_output == "86400" and rec.task == "How many seconds are in a day?"


def test_openai_agents_sdk_trace_export():
    fmt, [rec], errs = read(FIXTURES / "openai_agents_trace.jsonl")
    assert fmt == "openai-agents" and not errs
    assert roles(rec) == ["system", "user", "assistant", "tool", "assistant"]
    assert rec.external_id == "trace_abc"
    assert rec.metadata["workflow_name"] == "Weather workflow"
    assert rec.metadata["agents"] == ["Weather agent"] and rec.metadata["model"] == "gpt-4o-mini"
    assert parts(rec, "tool_result")[0]["content"] == "-3C and snowing"
    assert rec.final_output == "It is -3C and snowing in Oslo."


def test_mini_swe_agent_v2_trajectory():
    fmt, [rec], errs = read(FIXTURES / "mini_swe_agent_v2.traj.json")
    assert fmt == "mini-swe-agent" and not errs
    assert roles(rec) == ["system", "user", "assistant", "user", "assistant"]  # no "exit" turn
    assert rec.outcome_label == "Submitted" and rec.metadata["submission"] == "diff --git a/x b/x\n"


def test_openhands_evaluation_output():
    fmt, [rec], errs = read(FIXTURES / "openhands_output.jsonl")
    assert fmt == "openhands" and not errs
    assert rec.external_id == "repo__readme-1" and rec.task == "Fix the typo in README.md"
    assert (rec.outcome, rec.outcome_label) == (1.0, "resolved")
    assert parts(rec, "tool_call")[0]["name"] == "execute_bash"


def test_every_fixture_imports_into_a_workspace(ws):
    report = import_paths(ws, [FIXTURES])
    assert not report.errors and not report.skipped
    assert report.imported == 14
