"""A review changed elsewhere (another window, another machine): both versions, the judge picks.

Nothing is overwritten silently: the domain refused the write (ConflictError), the refused and
the stored version are both in the audit log, and this dialog shows them side by side.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
)


def describe(values: dict[str, Any] | None) -> str:
    """One review's values as escaped HTML (judge-written text is never rich text)."""
    if not values:
        return "<i>nothing stored</i>"
    rows = [
        ("Status", values.get("status") or "-"),
        ("Decision", values.get("decision") or "-"),
        ("Scores", ", ".join(f"{k} = {v}" for k, v in (values.get("scores") or {}).items())),
        ("Rationale", values.get("rationale") or ""),
    ]
    if values.get("corrected_output"):
        rows.append(("Corrected answer", values["corrected_output"]))
    if values.get("version"):
        saved = (values.get("updated_at") or "")[:16].replace("T", " ")
        rows.append(("Version", f"{values['version']}" + (f", saved {saved} UTC" if saved else "")))
    return "".join(
        f"<p><b>{escape(k)}</b><br>{escape(str(v)).replace(chr(10), '<br>')}</p>" for k, v in rows
    )


class ConflictDialog(QDialog):
    """Keep mine (replace the stored version, audited) or keep theirs (reload it)."""

    def __init__(self, mine: dict[str, Any], theirs: dict[str, Any] | None, what: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Changed elsewhere")
        self.choice: str | None = None
        lay = QVBoxLayout(self)
        intro = QLabel(
            f"This {what} was changed in another window or on another machine after you "
            "opened it. Nothing was overwritten: both versions are below and in the audit "
            "log. Choose the one to keep."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        row = QHBoxLayout()
        self.mine_view = self._pane(row, "Yours (not saved)", describe(mine))
        self.theirs_view = self._pane(row, "Stored now", describe(theirs))
        lay.addLayout(row)
        buttons = QDialogButtonBox()
        self.keep_mine = QPushButton("Keep mine")
        self.keep_theirs = QPushButton("Keep theirs")
        buttons.addButton(self.keep_mine, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.keep_theirs, QDialogButtonBox.ButtonRole.RejectRole)
        self.keep_mine.clicked.connect(lambda: self._choose("mine"))
        self.keep_theirs.clicked.connect(lambda: self._choose("theirs"))
        lay.addWidget(buttons)
        self.resize(760, 420)

    def _pane(self, row: QHBoxLayout, title: str, html: str) -> QTextBrowser:
        box = QVBoxLayout()
        box.addWidget(QLabel(f"<b>{escape(title)}</b>"))
        view = QTextBrowser()
        view.setOpenLinks(False)
        view.setHtml(html)
        box.addWidget(view)
        row.addLayout(box)
        return view

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept() if choice == "mine" else self.reject()
