"""Registers `chambers app` with the command line (entry point group `chambers.commands`).

app/ never imports ui/: the CLI discovers this module through its entry point, and Qt is
imported only when the command runs, so `chambers --help` stays instant.
"""

from __future__ import annotations

import argparse


def cmd_app(args: argparse.Namespace) -> int:
    import os
    import sys

    from app.workspace.errors import ChambersError

    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed
    headless = not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )
    if sys.platform.startswith("linux") and headless:
        raise ChambersError(
            "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "run it in a desktop session, or use --screenshot FILE.png"
        )
    from ui.application import run_app

    return run_app(args.db, screenshot=args.screenshot, judge=args.judge)


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("app", help="open the desktop application")
    sp.add_argument("--judge", help="open as this judge profile (skips the profile picker)")
    sp.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="render the main window offscreen on the current workspace, save it and exit",
    )
    sp.set_defaults(func=cmd_app)
