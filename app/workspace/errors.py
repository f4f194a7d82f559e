"""Errors a user can cause and read. The CLI and the UI show their message, never a traceback."""

from __future__ import annotations


class ChambersError(Exception):
    """An error with a message meant for the user."""


class WorkspaceError(ChambersError):
    """The workspace cannot be opened or is not in a usable state."""


class NotFound(ChambersError):
    """A named object (trace, rubric, judge, snapshot...) does not exist."""


class ConflictError(ChambersError):
    """A write was based on a version someone else has since replaced (optimistic concurrency).

    Nothing was written. `mine` is what the caller tried to store; `theirs` (when known) the
    stored values it would have overwritten, with their `version`.
    """

    def __init__(
        self,
        entity: str,
        entity_id: int | None,
        expected: int | None,
        mine: dict,
        theirs: dict | None = None,
        key: dict | None = None,
    ):
        found = f"version {theirs['version']}" if theirs else "a newer version"
        seen = "no stored version" if not expected else f"version {expected}"
        super().__init__(
            f"this {entity} was changed elsewhere: you edited {seen}, the workspace holds "
            f"{found}; nothing was saved. Reload to see both and choose."
        )
        self.entity = entity
        self.entity_id = entity_id
        self.expected = expected
        self.mine = mine
        self.theirs = theirs
        # What identifies the row (e.g. trace_id, judge_id, version_id) to reload it.
        self.key = key or {}


class NotAllowed(ChambersError):
    """The acting profile's role does not permit this (e.g. a judge creating a lead)."""
