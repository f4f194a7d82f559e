"""Trace text made safe to show: control and bidirectional-override characters become visible.

Trace content is untrusted. Written raw to a terminal, ESC sequences clear the screen, set the
window title or forge hyperlinks; in any view, bidi overrides reorder what is shown
("exe.txt" displayed as "txt.exe"). `printable` keeps newlines and tabs and replaces every
other C0/C1 control character (a lone carriage return too) and every bidi control with a visible marker like ⟨U+202E⟩.
"""

from __future__ import annotations

import re

# Bidi embeddings, overrides and isolates, marks, and the Arabic letter mark.
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _marker(m: re.Match[str]) -> str:
    return f"⟨U+{ord(m.group()):04X}⟩"


def printable(text: str) -> str:
    """`text` with control and bidi characters shown as ⟨U+XXXX⟩ (newline and tab kept;
    CRLF line ends become newlines, a lone carriage return is shown)."""
    return _UNSAFE.sub(_marker, text.replace("\r\n", "\n"))


def has_unsafe(text: str) -> bool:
    return _UNSAFE.search(text) is not None
