"""When the same review changed in another window or on another machine: nothing is
overwritten; both versions are audited and shown, and the judge chooses."""

from __future__ import annotations

from functools import partial

from app.review.reviews import (
    ReviewError,
    ReviewInput,
    record_conflict,
    save_draft_changes,
    submit_review_changes,
)
from app.workspace.errors import ConflictError
from ui.widgets.conflict_dialog import ConflictDialog

AUTOSAVE_MS = 1500


class ConflictsMixin:
    """Conflict handling for the review window (mixed into MainWindow)."""

    # --- conflicts (the same review changed in another window or on another machine) -------
    def _on_conflict(
        self, exc: ConflictError, action: str, trace_id: int, version_id: int, data: ReviewInput
    ) -> None:
        """Nothing was written: audit both versions, show them, let the judge choose."""
        with self.ws.session() as s:
            theirs = record_conflict(s, exc, self.judge.id)
        self.dirty = False  # the autosave must not retry while the judge decides
        what = "review" if action == "submit" else "draft"
        dlg = ConflictDialog(exc.mine, theirs, what, self)
        dlg.finished.connect(
            partial(self._conflict_resolved, dlg, action, trace_id, version_id, data, theirs)
        )
        self.conflict_dialog = dlg
        dlg.open()

    def _conflict_resolved(
        self, dlg, action, trace_id, version_id, data, theirs, _result: int = 0
    ) -> None:
        self.conflict_dialog = None
        expected = theirs["version"] if theirs else 0
        if dlg.choice == "mine":
            try:
                with self.ws.session() as s:
                    write = submit_review_changes if action == "submit" else save_draft_changes
                    change = write(s, trace_id, self.judge.id, version_id, data, expected)
                if action == "submit":
                    self.undo_stack.append((change.review_id, trace_id, change.version))
            except ConflictError as exc:  # changed yet again meanwhile
                self._on_conflict(exc, action, trace_id, version_id, data)
                return
            except ReviewError as exc:
                self.panel.show_problems(exc.problems)
            msg = "Your version was kept; the replaced one is in the audit log"
        else:
            msg = "The stored version was kept; yours is in the audit log"
        self._reopen(trace_id)
        self.statusBar().showMessage(msg, 6000)

    def _reopen(self, trace_id: int) -> None:
        """Show a trace's review as stored now (after a conflict or a refused undo)."""
        self.model.refresh_row(trace_id)
        row = self.model.row_of(trace_id)
        if self.trace is not None and self.trace["id"] == trace_id and row is not None:
            self.dirty = False
            self.open_row(row)
        self._recount()  # a conflict is rare: recount rather than track what the other wrote
