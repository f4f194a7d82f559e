"""Where Chambers keeps its files. One module, overridable for tests with CHAMBERS_HOME."""

from __future__ import annotations

import hashlib
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


def write_atomic(path: Path, data: bytes) -> str:
    """Write whole or not at all (a temporary file renamed into place); returns the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()
