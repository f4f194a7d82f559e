"""Defects found under fault injection, each pinned by a test that failed before its fix."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli import main
from app.traces import ingest
from app.traces.ingest import import_paths
from app.workspace.db import open_workspace
from app.workspace.imports import importer_identity, process_alive
from app.workspace.models import ImportBatch, Trace

ROOT = Path(__file__).resolve().parent.parent


def chat(i: int, text: str = "hello") -> dict:
    return {
        "id": f"r{i}",
        "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": text}],
    }


def n_traces(ws) -> int:
    with ws.session() as s:
        return s.scalar(select(func.count(Trace.id)))


def batches(ws) -> list[ImportBatch]:
    with ws.session() as s:
        return list(s.scalars(select(ImportBatch).order_by(ImportBatch.id)))


# --- type confusion in the OTel path -------------------------------------------------------


def _span(**over) -> dict:
    span = {
        "traceId": "t1",
        "spanId": "s1",
        "name": "chat",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {
                "key": "gen_ai.input.messages",
                "value": {"stringValue": json.dumps([{"role": "user", "content": "hi"}])},
            },
        ],
    }
    return {**span, **over}


@pytest.mark.parametrize(
    "broken",
    [
        {"attributes": 5},
        {"events": 1.5},
        {"events": True},
        {"status": 3},
        {"spanContext": [1]},
        {"attributes": [{"key": ["x"], "value": {"intValue": "NaN"}}]},
        {"attributes": [{"key": "a", "value": {"arrayValue": 7}}]},
        {"attributes": [{"key": "a", "value": {"kvlistValue": {"values": 3}}}]},
        {"startTimeUnixNano": [{"a": 1}, 2]},
    ],
)
def test_otel_type_confusion_is_a_record_error_or_ignored(ws, write, broken):
    good = {"resourceSpans": [{"scopeSpans": [{"spans": [_span(traceId="t2")]}]}]}
    bad = {"resourceSpans": [{"scopeSpans": [{"spans": [_span(**broken)]}]}, 7, {"scopeSpans": 1}]}
    report = import_paths(ws, [write("spans.jsonl", lines=[bad, good])])
    assert report.imported >= 1
    assert all(e["record"] for e in report.errors)


# --- nesting that parses but cannot be stored ------------------------------------------------


def test_arguments_nested_300_deep_are_a_record_error(ws, write):
    deep: object = "leaf"
    for _ in range(300):
        deep = {"a": deep}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep}}
    rec = {
        "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]
    }
    report = import_paths(ws, [write("deep.jsonl", lines=[rec, chat(1)])])
    assert report.imported == 1
    [err] = report.errors
    assert err["record"] == "line 1"
    assert err["message"].startswith("messages[1]: cannot be stored: nested deeper than")


# --- an unexpected exception in one record ---------------------------------------------------


def test_an_unexpected_exception_in_one_record_spares_the_rest(ws, write, monkeypatch, capsys):
    from app.traces.importers import conversations

    real = conversations.normalize_messages

    def boom(items, field="messages"):
        if items and items[0].get("content") == "q3":
            raise ZeroDivisionError("division by zero")
        return real(items, field)

    monkeypatch.setattr(conversations, "normalize_messages", boom)
    path = write("five.jsonl", lines=[chat(i) for i in range(5)])
    later = write("later.jsonl", lines=[chat(10)])
    code = main(
        ["--db", str(path.parent / "cli.sqlite"), "import", str(path), str(later), "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["imported"] == 5
    assert out["errors"] == [
        {
            "file": str(path),
            "record": "line 4",
            "message": "unexpected structure for openai-chat (ZeroDivisionError: division by zero)",
        }
    ]


# --- PostgreSQL refuses NUL ------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_nul_in_a_record_is_its_error_and_the_batch_is_kept(pg_url, write, capsys):
    secret = "SECRET-CONTENT-42"
    rows = [chat(i) for i in range(100)]
    rows[37] = chat(37, f"{secret} before \u0000 after")
    path = write("nul.jsonl", lines=rows)
    code = main(["--db", pg_url, "import", str(path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert secret not in out + err
    assert (
        f"error: {path}: line 38: messages[1]: contains a NUL character (\\u0000), "
        "which PostgreSQL cannot store" in err
    )
    ws = open_workspace(pg_url)
    try:
        assert n_traces(ws) == 99
        [batch] = batches(ws)
        assert batch.finished_at is not None
        assert (batch.n_imported, batch.n_errors, batch.n_records) == (99, 1, 100)
    finally:
        ws.close()


def test_a_batch_the_database_refuses_is_stored_row_by_row(ws, write, monkeypatch):
    """Whatever else a database refuses in one row: that row's error, the others kept."""
    from sqlalchemy.exc import DataError

    real = ingest.store_traces

    def picky(w, rows):
        if any(r["external_id"] == "r5" for r in rows):
            raise DataError("INSERT ...", {}, ValueError("value out of range"))
        return real(w, rows)

    monkeypatch.setattr(ingest, "store_traces", picky)
    report = import_paths(ws, [write("ten.jsonl", lines=[chat(i) for i in range(10)])])
    assert report.imported == 9 and n_traces(ws) == 9
    [err] = report.errors
    assert err["record"] == "line 6"
    assert err["message"] == "the database refused this record (ValueError: value out of range)"
    assert batches(ws)[0].finished_at is not None


# --- reading ---------------------------------------------------------------------------------


def test_jsonl_with_an_invalid_first_line_is_still_jsonl(ws, write):
    lines = ['{"messages": [{"role": "user", "content": "cut off'] + [
        json.dumps(chat(i)) for i in range(99)
    ]
    report = import_paths(ws, [write("first.jsonl", raw=("\n".join(lines) + "\n").encode())])
    assert report.imported == 99
    [err] = report.errors
    assert err["record"] == "line 1" and err["message"].startswith("invalid JSON")


def test_pretty_printed_object_is_not_mistaken_for_jsonl(ws, write):
    path = write("pretty.json", raw=json.dumps(chat(1), indent=2).encode())
    assert import_paths(ws, [path]).imported == 1


@pytest.mark.parametrize("kind", ["jsonl", "array", "object"])
def test_utf8_byte_order_mark_is_accepted(ws, write, kind):
    rows = [chat(i) for i in range(3)]
    body = {
        "jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        "array": json.dumps(rows),
        "object": json.dumps(rows[0]),
    }[kind]
    report = import_paths(ws, [write(f"bom.{kind}", raw=b"\xef\xbb\xbf" + body.encode())])
    assert not report.errors
    assert report.imported == (1 if kind == "object" else 3)


def test_empty_message_list_is_a_record_error(ws, write):
    report = import_paths(ws, [write("empty.jsonl", lines=[{"messages": []}, chat(1)])])
    assert report.imported == 1 and n_traces(ws) == 1
    assert report.errors == [
        {
            "file": str(report.files[0].path),
            "record": "line 1",
            "message": "messages: no messages: the record holds an empty conversation",
        }
    ]


# --- kill -9 ---------------------------------------------------------------------------------


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


_PARALLEL_IMPORT = (
    "import sys; import app.traces.ingest as i; i.PARALLEL_MIN_BYTES = 1; "
    "from app.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_kill_9_of_a_parallel_import_leaves_no_orphan_and_reimport_completes(tmp_path):
    """The parser child (and multiprocessing's resource tracker) die with the importer.

    The parallel path is forced on a small file (it is taken for files over 16 MB)."""
    n = 20000
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(chat(i, "x" * 200)) + "\n" for i in range(n)))
    db = tmp_path / "ws.sqlite"
    open_workspace(str(db)).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARALLEL_IMPORT, "--db", str(db), "import", str(path)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ws = open_workspace(str(db))
    assert _wait(lambda: n_traces(ws) >= ingest.BATCH_SIZE, 60), "nothing stored"
    ws.close()
    kids = _children(proc.pid)
    assert len(kids) >= 2  # the parser and multiprocessing's resource tracker
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _wait(lambda: not any(_alive(k) for k in kids), 5), "orphaned children"
    ws = open_workspace(str(db))
    try:
        assert n_traces(ws) % ingest.BATCH_SIZE == 0  # whole batches only
        report = import_paths(ws, [path])
        assert n_traces(ws) == n and not report.errors
        assert all(b.finished_at is not None for b in batches(ws))
        first = batches(ws)[0]
        assert first.errors[0]["message"].startswith("interrupted after")
    finally:
        ws.close()


_PARALLEL_CATCH_UP = (
    "import sys, time; import app.traces.search_index as si; si.PARALLEL_MIN = 1; "
    "from app.workspace.db import open_workspace; ws = open_workspace(sys.argv[1]); "
    "si.catch_up(ws, lambda n, t: (print(n, flush=True), time.sleep(0.05)), batch=200)"
)


def test_kill_9_of_a_catch_up_leaves_no_orphan_and_loses_nothing(tmp_path):
    """The search index's catch-up killed mid-way (its values process forced on): the child
    dies with it, every trace is either indexed or still listed, and the next catch-up
    finishes with the contentless index whole."""
    from sqlalchemy import delete

    from app.traces import search_index
    from app.traces.queries import TraceFilter, count_traces
    from tests.test_search import fts_terms

    n = 3000
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(chat(i, f"hello parcel{i}")) + "\n" for i in range(n)))
    db = tmp_path / "ws.sqlite"
    ws = open_workspace(str(db))
    import_paths(ws, [path], catch_up_index=False)
    ws.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARALLEL_CATCH_UP, str(db)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert int(proc.stdout.readline()) > 0  # a batch is in
    kids = _children(proc.pid)
    assert kids  # the values process (and multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert _wait(lambda: not any(_alive(k) for k in kids), 5), "orphaned children"
    ws = open_workspace(str(db))
    try:
        with ws.session() as s:
            left = search_index.pending(s)
            indexed = count_traces(s, TraceFilter(search="hello"))
        assert 0 < left < n and indexed == n - left
        assert search_index.catch_up(ws) == left
        with ws.session() as s:
            assert count_traces(s, TraceFilter(search="hello")) == n
            s.execute(delete(Trace))
        assert fts_terms(ws) == []
    finally:
        ws.close()


def test_kill_9_at_random_moments_keeps_whole_batches(tmp_path):
    n = 3000
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(chat(i)) + "\n" for i in range(n)))
    db = tmp_path / "ws.sqlite"
    open_workspace(str(db)).close()
    rng = random.Random(14)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--db", str(db), "import", str(path)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ws = open_workspace(str(db))
        try:
            count = n_traces(ws)
            assert count % ingest.BATCH_SIZE == 0 or count == n
            with ws.session() as s:
                assert all(len(m) == 2 for m in s.scalars(select(Trace.messages)))
        finally:
            ws.close()
    ws = open_workspace(str(db))
    try:
        import_paths(ws, [path])
        assert n_traces(ws) == n
        assert all(b.finished_at is not None for b in batches(ws))
    finally:
        ws.close()


def test_opening_the_workspace_closes_the_batch_of_a_killed_import_not_a_running_one(tmp_path):
    """A batch left unfinished by kill -9 is closed when the workspace is next opened, with
    the traces it kept; while the importer runs, opening the workspace leaves its batch open."""
    n = 20000
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(chat(i, "x" * 200)) + "\n" for i in range(n)))
    db = tmp_path / "ws.sqlite"
    open_workspace(str(db)).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--db", str(db), "import", str(path)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ws = open_workspace(str(db))
    try:
        assert _wait(lambda: n_traces(ws) >= ingest.BATCH_SIZE, 60), "nothing stored"
    finally:
        ws.close()
    ws = open_workspace(str(db))  # the importer is running: its batch stays open
    try:
        running = proc.poll() is None
        (batch,) = batches(ws)
    finally:
        ws.close()
    if running:  # (it cannot have finished in between unless the whole file was read)
        assert batch.finished_at is None and batch.importer_pid == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ws = open_workspace(str(db))  # no re-import: opening closes it
    try:
        (batch,) = batches(ws)
        kept = n_traces(ws)
        assert batch.finished_at is not None and batch.n_imported == kept
        if running:
            assert kept < n
            assert batch.errors[0]["message"] == (
                f"interrupted after {kept} traces; its importer (process {proc.pid}) had ended "
                "when the workspace was next opened"
            )
    finally:
        ws.close()


def test_batches_of_other_hosts_and_live_or_unknown_importers_stay_open(tmp_path):
    """Only an importer provably gone (this host, no such process) has its batch closed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    db = str(tmp_path / "ws.sqlite")
    ws = open_workspace(db)
    host, me = importer_identity()
    with ws.session() as s:
        for h, pid in ((host, dead.pid), ("another-machine", dead.pid), (host, None), (host, me)):
            s.add(
                ImportBatch(
                    path=f"{h}-{pid}",
                    sha256="",
                    format="jsonl",
                    importer_version="2",
                    importer_host=h,
                    importer_pid=pid,
                )
            )
    ws.close()
    ws = open_workspace(db)
    try:
        still_open = {b.path for b in batches(ws) if b.finished_at is None}
        assert still_open == {f"another-machine-{dead.pid}", f"{host}-None", f"{host}-{me}"}
        assert not process_alive(dead.pid) and process_alive(me)
    finally:
        ws.close()


def test_a_reader_failure_ends_the_file_with_an_error_not_a_traceback(ws, write, monkeypatch):
    from app.traces.importers import reader

    real = reader._read_jsonl

    def broken(path):
        for i, item in enumerate(real(path)):
            if i == 3:
                raise MemoryError("simulated")
            yield item

    monkeypatch.setattr(reader, "_read_jsonl", broken)
    first = write("a.jsonl", lines=[chat(i) for i in range(5)])
    second = write("b.json", chat(9))
    report = import_paths(ws, [first, second])
    assert report.imported == 4  # three of the first file, then the second file
    assert report.errors == [
        {
            "file": str(first),
            "record": None,
            "message": f"{first}: reading stopped: unexpected MemoryError (simulated)",
        }
    ]
