"""Small safety defects: atomic writes through symlinks, --out DIR, raw escapes in the terminal."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.workspace.errors import ChambersError
from app.workspace.paths import write_atomic


def test_write_atomic_refuses_a_symlink_at_the_part_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.part").symlink_to(victim)
    with pytest.raises(ChambersError, match="symbolic link"):
        write_atomic(out, b"attacker-controlled")
    assert victim.read_text() == "precious"
    assert not out.exists()


def test_write_atomic_replaces_a_stale_part_and_leaves_none(tmp_path):
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.part").write_text("left by a crash")
    write_atomic(out, b"whole")
    assert out.read_bytes() == b"whole"
    assert not (tmp_path / "out.jsonl.part").exists()


def test_write_atomic_into_a_directory_is_a_user_error(tmp_path):
    with pytest.raises(ChambersError, match="is a directory"):
        write_atomic(tmp_path, b"x")


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "agreement", "--out", "{dir}"],
        ["rubric", "export", "R", "--out", "{dir}"],
        ["export", "pairs", "--snapshot", "s", "--out", "{dir}"],
    ],
)
def test_out_naming_a_directory_is_one_line_not_a_traceback(tmp_path, capsys, argv):
    d = tmp_path / "somewhere"
    d.mkdir()
    db = str(tmp_path / "ws.sqlite")
    code = main(["--db", db, *[a.format(dir=d) for a in argv]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "is a directory" in err and str(d) in err


HOSTILE = (
    "clear \x1b[2J\x1b[H title \x1b]0;pwned\x07 link \x1b]8;;http://evil/\x1b\\here\x1b]8;;\x1b\\ "
    "file \u202etxt.exe"
)


def test_traces_show_never_writes_escapes_to_the_terminal(tmp_path, capsys):
    path = tmp_path / "hostile.jsonl"
    rec = {
        "id": "h1",
        "messages": [
            {"role": "user", "content": HOSTILE},
            {"role": "assistant", "content": "ok " + HOSTILE},
        ],
    }
    path.write_text(json.dumps(rec) + "\n")
    db = str(tmp_path / "ws.sqlite")
    assert main(["--db", db, "import", str(path)]) == 0
    capsys.readouterr()
    assert main(["--db", db, "traces", "show", "h1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "⟨U+001B⟩[2J" in out and "⟨U+001B⟩]0;pwned⟨U+0007⟩" in out
    assert "⟨U+202E⟩txt.exe" in out
    assert main(["--db", db, "traces", "list"]) == 0
    listed = capsys.readouterr().out
    assert "\x1b" not in listed and "⟨U+001B⟩" in listed
