"""The import dialog: format and key options, a preview of each file, errors listed once."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from ui.traces.import_dialog import PREVIEW_COLUMNS, ImportDialog

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def table(dlg) -> list[dict[str, str]]:
    t = dlg.preview
    return [
        {PREVIEW_COLUMNS[c]: t.item(r, c).text() for c in range(t.columnCount())}
        for r in range(t.rowCount())
    ]


def opened(qtbot, ws, paths):
    dlg = ImportDialog(ws, [str(p) for p in paths])
    qtbot.addWidget(dlg)
    qtbot.waitSignal(dlg.previewed, timeout=30000).wait()
    return dlg


def test_preview_shows_format_ids_messages_outcomes_and_errors(qtbot, ws, tmp_path):
    shutil.copy(FIXTURES / "12345_DFS_woFilter_w2.json", tmp_path)
    shutil.copy(FIXTURES / "agentbench_runs.jsonl", tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.json").write_text("not json")
    dlg = opened(qtbot, ws, [tmp_path])
    rows = table(dlg)
    assert rows[0] == {
        "File": "12345_DFS_woFilter_w2.json",
        "Format": "toolbench",
        "Record": "record 0",
        "Id": "12345_DFS_woFilter_w2",
        "Messages": "5",
        "Tool calls": "2",
        "Outcome": "1 (pass)",
        "Error": "",
    }
    assert [(r["Id"], r["Outcome"]) for r in rows[1:3]] == [("3", "1 (pass)"), ("4", "0 (fail)")]
    assert rows[3]["File"] == "broken.json" and rows[3]["Error"].startswith("not JSON or JSONL")
    assert rows[4] == {**dict.fromkeys(PREVIEW_COLUMNS, ""), "File": "notes.txt"} | {
        "Error": "skipped: not a trace file (.json, .jsonl, .ndjson, .traj, .eval)"
    }


def test_format_and_keys_change_the_preview_and_the_import(qtbot, ws, tmp_path):
    path = tmp_path / "custom.jsonl"
    path.write_text(
        '{"turns": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],'
        ' "grade": "pass", "key": "k1"}\n'
    )
    dlg = opened(qtbot, ws, [path])
    assert (
        "cannot tell the format (keys: turns, grade, key); choose the format"
        in (table(dlg)[0]["Error"])
    )
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("benchmark"))
    qtbot.waitSignal(dlg.previewed, timeout=30000).wait()
    dlg.messages_key.setText("turns")
    dlg.outcome_key.setText("grade")
    dlg.id_key.setText("key")
    with qtbot.waitSignal(dlg.previewed, timeout=30000):
        dlg.id_key.editingFinished.emit()
    [row] = table(dlg)
    assert (row["Id"], row["Messages"], row["Outcome"], row["Error"]) == ("k1", "2", "1 (pass)", "")
    with qtbot.waitSignal(dlg.done, timeout=30000) as blocker:
        qtbot.mouseClick(dlg.import_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.imported == 1 and not report.errors


def test_errors_name_each_path_once(qtbot, ws, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"messages": []}\n{"messages": [{"role": "user", "content": "hi"}]}\n')
    dlg = opened(qtbot, ws, [bad, mixed])
    with qtbot.waitSignal(dlg.done, timeout=30000):
        qtbot.mouseClick(dlg.import_button, Qt.MouseButton.LeftButton)
    lines = dlg.errors.toPlainText().splitlines()
    assert lines == [
        f"error: {bad}: not JSON or JSONL (starts with 'not json')",
        f"error: {mixed}: line 1: messages: no messages: the record holds an empty conversation",
    ]
    assert all(line.count(str(tmp_path)) == 1 for line in lines)
    dlg.grab().save(str(tmp_path / "dialog.png"))
