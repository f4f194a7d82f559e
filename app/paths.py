"""Where Chambers keeps its files. One module, overridable for tests with CHAMBERS_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Chambers"
APP_AUTHOR = "Chambers"


def data_dir() -> Path:
    """The user's data directory (or $CHAMBERS_HOME), created on first use."""
    override = os.environ.get("CHAMBERS_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    return data_dir() / "workspace.sqlite"


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
