"""What every command group shares: opening the workspace, JSON output, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_USER_ERROR = 2
EXIT_UNREADABLE = 1


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def open_ws(args: argparse.Namespace):
    from app.workspace.db import open_workspace

    return open_workspace(args.db)
