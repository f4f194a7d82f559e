"""The `chambers` command line: the parser and the entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from app import __version__
from app.cli.common import EXIT_USER_ERROR
from app.workspace.errors import ChambersError

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chambers",
        description="Chambers: judge agent traces against a rubric and turn corrections into training data.",
    )
    p.add_argument("--version", action="version", version=f"chambers {__version__}")
    p.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        help="workspace: a SQLite file or a postgresql+psycopg:// URL (default: $CHAMBERS_DB, else a file in the user data directory)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from app.cli import agreement, models, review, team, traces, training, workspace

    for group in (workspace, traces, review, agreement, training, models, team):
        group.register(sub)
    for ep in entry_points(group="chambers.commands"):  # e.g. `app` from ui/, without importing Qt
        ep.load()(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ChambersError as exc:
        print(f"chambers: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("chambers: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file the user named: unwritable, a directory, disk full...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"chambers: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
