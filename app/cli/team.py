"""`chambers team`: profiles, roles and PostgreSQL database roles (who may do what)."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import open_ws, print_json
from app.workspace.errors import ChambersError


def _actor(session, args: argparse.Namespace):
    """Who is acting: on PostgreSQL the profile mapped to the login role; else --as NAME
    (SQLite is single-user: --as is taken on trust)."""
    from app.review.reviews import get_judge
    from app.review.team import acting_judge

    mapped = acting_judge(session)
    if mapped is not None:
        if args.acting_as and args.acting_as != mapped.name:
            raise ChambersError(
                f"you are logged in as {mapped.name} (database role {mapped.db_role}); "
                f"--as {args.acting_as} is refused"
            )
        return mapped
    return get_judge(session, args.acting_as) if args.acting_as else None


def cmd_team_list(args: argparse.Namespace) -> int:
    from app.review.team import team

    ws = open_ws(args)
    with ws.session() as s:
        rows = team(s)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        role = f" (database role {r['db_role']})" if r["db_role"] else ""
        print(f"{r['name']}: {r['role']}{'' if r['active'] else ', inactive'}{role}")
    return 0


def cmd_team_add(args: argparse.Namespace) -> int:
    from app.review.team import create_profile

    ws = open_ws(args)
    with ws.session() as s:
        j = create_profile(s, args.name, args.role, _actor(s, args))
        name, role = j.name, j.role
    print(f"profile {name} created: {role}")
    return 0


def cmd_team_set_role(args: argparse.Namespace) -> int:
    from app.review.team import set_role

    ws = open_ws(args)
    with ws.session() as s:
        j = set_role(s, args.name, args.role, _actor(s, args))
        name, role = j.name, j.role
    print(f"{name} is now a {role}")
    return 0


def cmd_team_grant_role(args: argparse.Namespace) -> int:
    from app.review.team import grant_role

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    ws = open_ws(args)
    with ws.session() as s:
        j = grant_role(s, args.db_role, args.name, _actor(s, args), args.create, password)
        name = j.name
    print(
        f"database role {args.db_role} now works as {name}; row-level security limits it "
        "to its own reviews (leads: all)"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    tp = sub.add_parser(
        "team",
        help="profiles, roles and PostgreSQL database roles",
        description="The first profile of a workspace is its lead; only a lead creates "
        "profiles and changes roles. On PostgreSQL, map each person's database role to their "
        "profile with grant-role; row-level security then binds them.",
    )
    tsub = tp.add_subparsers(dest="team_command", metavar="SUBCOMMAND")
    tsub.required = True

    def acting(sp):
        sp.add_argument(
            "--as",
            dest="acting_as",
            metavar="LEAD",
            help="the lead doing this (SQLite; on PostgreSQL your login role decides)",
        )

    sp = tsub.add_parser("list", help="every profile, its role and database role")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_team_list)

    sp = tsub.add_parser("add", help="create a profile (the first one is the lead)")
    sp.add_argument("name")
    sp.add_argument("--role", choices=["judge", "lead"], default="judge")
    acting(sp)
    sp.set_defaults(func=cmd_team_add)

    sp = tsub.add_parser("set-role", help="make a profile a judge or a lead")
    sp.add_argument("name")
    sp.add_argument("role", choices=["judge", "lead"])
    acting(sp)
    sp.set_defaults(func=cmd_team_set_role)

    sp = tsub.add_parser(
        "grant-role",
        help="PostgreSQL: let a database role log in as a profile (run as the workspace owner)",
    )
    sp.add_argument("db_role", metavar="DB_ROLE")
    sp.add_argument("name", metavar="PROFILE")
    sp.add_argument("--create", action="store_true", help="create the role (LOGIN) if missing")
    sp.add_argument(
        "--password-stdin", action="store_true", help="set the role's password, read from stdin"
    )
    acting(sp)
    sp.set_defaults(func=cmd_team_grant_role)
