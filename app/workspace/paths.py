"""Where Chambers keeps its files. One module, overridable for tests with CHAMBERS_HOME."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

from app.workspace.errors import ChambersError

APP_NAME = "Chambers"
APP_AUTHOR = "Chambers"


def data_dir() -> Path:
    """The user's data directory (or $CHAMBERS_HOME), created on first use."""
    override = os.environ.get("CHAMBERS_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)  # workspaces and runs: owner only
    return path


def default_db_path() -> Path:
    return data_dir() / "workspace.sqlite"


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_output_file(path: Path) -> Path:
    """An --out FILE must name a file: a directory is a user error, not a traceback."""
    if path.is_dir():
        raise ChambersError(f"{path} is a directory; give a file name (e.g. {path}/out.jsonl)")
    return path


def write_atomic(path: Path, data: bytes) -> str:
    """Write whole or not at all (a temporary file renamed into place); returns the sha256.

    The temporary `NAME.part` is created exclusively and never through a symbolic link
    (O_EXCL | O_NOFOLLOW): a link planted there cannot redirect the write elsewhere. A stale
    regular `.part` left by a crash is replaced; on any error the `.part` is removed."""
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    if tmp.is_symlink():
        raise ChambersError(f"{tmp} is a symbolic link; refusing to write through it")
    if tmp.exists() and tmp.is_file():
        tmp.unlink()  # left by an interrupted write
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileExistsError:
        raise ChambersError(f"{tmp} appeared while writing; refusing to overwrite it") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MB chunks (imports, manifests, artifacts)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
