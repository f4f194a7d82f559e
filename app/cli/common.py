"""What every command group shares: opening the workspace, JSON output, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.workspace.errors import ChambersError
from app.workspace.paths import check_output_file, write_atomic

EXIT_USER_ERROR = 2
EXIT_UNREADABLE = 1


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def out_file(value: str) -> Path:
    """Check an --out FILE before any work is done: a directory is a one-line error."""
    return check_output_file(Path(value))


def write_out(path: Path, data: bytes) -> str:
    """Write an --out file whole (never through a symlink at FILE.part); errors in one line."""
    try:
        return write_atomic(path, data)
    except OSError as exc:
        raise ChambersError(f"{path}: cannot write ({exc.strerror or exc})") from None


def open_ws(args: argparse.Namespace):
    from app.workspace.db import open_workspace

    return open_workspace(args.db)
