"""Garbage in gives clear messages naming file, record and field; never a traceback,
never a half-written trace."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from app.cli import main
from app.traces.ingest import import_paths
from app.workspace.models import Trace

GOOD = {
    "id": "good",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
}


def n_traces(ws) -> int:
    with ws.session() as s:
        return s.scalar(select(func.count(Trace.id)))


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_binary_file_is_unreadable_with_a_clear_message(ws, write, capsys, tmp_path):
    path = write("blob.jsonl", raw=os.urandom(4096) + b"\x00\x01")
    report = import_paths(ws, [path])
    assert report.imported == 0 and len(report.unreadable) == 1
    assert "binary data, not JSON or JSONL" in report.errors[0]["message"]
    code, out, err = run_cli(capsys, "--db", str(tmp_path / "ws.sqlite"), "import", str(path))
    assert code == 1 and "Traceback" not in err and "blob.jsonl" in err


def test_latin1_text_is_not_utf8(ws, write):
    path = write(
        "latin.json", raw='{"messages": "caf\xe9 \xe9\xe9\xe9 ..."}'.encode("latin-1") + b" " * 10
    )
    report = import_paths(ws, [path])
    assert "not UTF-8 text" in report.errors[0]["message"]


def test_truncated_jsonl_keeps_the_good_records(ws, write):
    text = json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "g2"})[:-7] + "\n"
    path = write("trunc.jsonl", raw=text.encode())
    report = import_paths(ws, [path])
    assert report.imported == 1
    [err] = report.errors
    assert (
        err["file"] == str(path)
        and err["record"] == "line 2"
        and err["message"].startswith("invalid JSON")
    )
    assert n_traces(ws) == 1


def test_truncated_json_array_imports_what_came_before(ws, write):
    items = [{**GOOD, "id": f"r{i}"} for i in range(3)]
    raw = json.dumps(items)[:-40].encode()
    report = import_paths(ws, [write("trunc.json", raw=raw)])
    assert report.imported == 2
    assert (
        report.errors[-1]["record"] == "record 2"
        and "truncated or invalid JSON" in report.errors[-1]["message"]
    )


def test_truncated_single_object(ws, write):
    report = import_paths(ws, [write("one.json", raw=json.dumps(GOOD)[:-10].encode())])
    assert report.imported == 0 and "truncated or invalid JSON" in report.errors[0]["message"]


def test_twenty_megabyte_string_is_refused_by_name(ws, write):
    huge = {"id": "huge", "messages": [{"role": "user", "content": "x" * (20 * 2**20)}]}
    path = write("huge.jsonl", lines=[GOOD, huge])
    report = import_paths(ws, [path])
    assert report.imported == 1
    [err] = report.errors
    assert (
        err["record"] == "line 2" and "20.0 M characters is over the 16 M limit" in err["message"]
    )


def test_deeply_nested_json_jsonl_array_and_object(ws, write):
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r1 = import_paths(
        ws, [write("deep.jsonl", raw=json.dumps(GOOD).encode() + b"\n" + deep + b"\n")]
    )
    assert r1.imported == 1 and r1.errors[0]["record"] == "line 2"
    r2 = import_paths(ws, [write("deep.json", raw=deep)])
    assert r2.imported == 0 and "nested deeper" in r2.errors[0]["message"]
    r3 = import_paths(
        ws,
        [
            write(
                "deep_array.json",
                raw=b"[" + json.dumps({**GOOD, "id": "other"}).encode() + b"," + deep + b"]",
            )
        ],
    )
    assert r3.imported == 1 and "nested deeper" in r3.errors[0]["message"]


def test_wrong_types_report_file_record_field_and_import_the_rest(ws, write, tmp_path, capsys):
    rows = [
        GOOD,
        {"id": "b", "messages": [{"role": "user", "content": "x"}, {"role": None}]},
        {**GOOD, "id": "c"},
    ]
    path = write("types.jsonl", lines=rows)
    code, out, err = run_cli(
        capsys, "--db", str(tmp_path / "ws.sqlite"), "import", "--json", str(path)
    )
    assert code == 0
    data = json.loads(out)
    assert data["imported"] == 2 and data["duplicates"] == 0
    assert data["errors"] == [
        {
            "file": str(path),
            "record": "line 2",
            "message": "messages[1].role: expected a role string, got null",
        }
    ]


def test_unknown_shape_and_empty_and_missing_files(ws, write, tmp_path, capsys):
    weird = write("weird.json", {"hello": "world"})
    empty = write("empty.jsonl", raw=b"   \n")
    code, out, err = run_cli(
        capsys,
        "--db",
        str(tmp_path / "ws.sqlite"),
        "import",
        str(weird),
        str(empty),
        str(tmp_path / "nope.json"),
    )
    assert code == 1
    assert "cannot tell the format (keys: hello)" in err
    assert "the file is empty" in err and "nope.json: no such file" in err
    assert "Traceback" not in err


def test_bare_json_string_file(ws, write):
    report = import_paths(ws, [write("str.json", raw=b'"' + b"a" * 1000 + b'"')])
    assert "a bare JSON string" in report.errors[0]["message"]


def test_hostile_structures_never_raise(ws, write):
    """Odd but valid JSON in every place a message could be: errors, not exceptions."""
    rows = [
        {"messages": [{"role": "assistant", "content": [1, 2, 3]}]},
        {"messages": [{"role": "assistant", "tool_calls": "oops"}]},
        {"messages": [{"role": "assistant", "tool_calls": [None]}]},
        {"messages": [None]},
        {"messages": [{"role": "user", "content": {"type": "tool_result"}}]},
        {"messages": [{"role": "tool", "content": [{"type": "tool_use"}]}]},
        {"input": [{"type": "function_call"}]},
        {"messages": [{"from": "gpt", "value": 7}]},
    ]
    report = import_paths(ws, [write("hostile.jsonl", lines=rows)], fmt="openai-chat")
    assert report.imported + len(report.errors) == len(rows)
    assert all(e["record"].startswith("line ") for e in report.errors)


def test_records_before_a_crash_are_whole(ws, write, monkeypatch):
    """A failure mid-file leaves only whole traces, in whole batches."""
    import app.traces.ingest as ingest

    rows = [{**GOOD, "id": f"r{i}"} for i in range(ingest.BATCH_SIZE * 12 // 5)]
    path = write("big.jsonl", lines=rows)
    real = ingest.store_traces
    calls = {"n": 0}

    def flaky(w, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(w, batch)

    monkeypatch.setattr(ingest, "store_traces", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        import_paths(ws, [path])
    assert n_traces(ws) == ingest.BATCH_SIZE  # the first batch, nothing of the second
    with ws.session() as s:
        assert all(len(m) == 2 for m in s.scalars(select(Trace.messages)))
