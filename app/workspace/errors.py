"""Errors a user can cause and read. The CLI and the UI show their message, never a traceback."""

from __future__ import annotations


class ChambersError(Exception):
    """An error with a message meant for the user."""


class WorkspaceError(ChambersError):
    """The workspace cannot be opened or is not in a usable state."""


class NotFound(ChambersError):
    """A named object (trace, rubric, judge, snapshot...) does not exist."""
