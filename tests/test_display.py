"""Trace text shown on a terminal or in a view cannot act on it (app.traces.display)."""

from app.traces.display import has_unsafe, printable


def test_escape_sequences_and_bidi_overrides_become_visible():
    hostile = "ok\x1b]0;owned\x07 \x1b[2J file\u202etxt.exe\u2066x\u2069"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == ("ok⟨U+001B⟩]0;owned⟨U+0007⟩ ⟨U+001B⟩[2J file⟨U+202E⟩txt.exe⟨U+2066⟩x⟨U+2069⟩")
    assert has_unsafe(hostile) and not has_unsafe(shown)


def test_ordinary_text_is_unchanged_and_crlf_is_a_newline():
    text = "Réservation n° 42\n\t— “ok” 東京 \U0001f600"
    assert printable(text) == text
    assert printable("a\r\nb\rc") == "a\nb⟨U+000D⟩c"
