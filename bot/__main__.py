"""python -m bot: run the service, the console chat, or an admin command.

    python -m bot [--config PATH]                 run every configured channel
    python -m bot chat [--config PATH] [--json] [--user ID]
    python -m bot admin invite --role worker --grid ID [--name NAME] [--hours H]
    python -m bot admin stats [--since YYYY-MM-DD]
    python -m bot admin password --staff ID       (the password is asked, or read from stdin)
    python -m bot admin migrate [--check]
    python -m bot admin backup --out FILE / restore FILE
    python -m bot admin duty --community ID [--day DATE] [--set ID,NAME,… | --clear]
"""

from __future__ import annotations

import argparse
import sys

from bot.errors import BotError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: config.toml of the project)")
    parser = argparse.ArgumentParser(prog="python -m bot", parents=[common], description="数字社工 service")
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", parents=[common], help="chat as a resident on the console")
    chat.add_argument("--json", action="store_true", help="one JSON line per reply")
    chat.add_argument("--user", default="console-user", help="resident id (default: console-user)")
    admin = sub.add_parser("admin", parents=[common], help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    invite = admin_sub.add_parser("invite", parents=[common], help="create a one-time staff invite code")
    invite.add_argument("--role", required=True, choices=["worker", "supervisor", "admin"])
    invite.add_argument("--grid", action="append", default=[], help="grid id (workers; repeat for several)")
    invite.add_argument("--community", help="community id (supervisors)")
    invite.add_argument("--name", default="", help="the staff member's name")
    invite.add_argument("--hours", type=float, default=72, help="hours the code stays valid (default 72)")
    stats = admin_sub.add_parser("stats", parents=[common], help="print the three rates and counts")
    stats.add_argument("--since", help="only tickets filed on or after this date (YYYY-MM-DD)")
    stats.add_argument("--community", help="only this community")
    examples = admin_sub.add_parser("intent-examples", parents=[common],
                                    help="residents' own question/request choices as JSONL, to review and add "
                                         "to [intents] extra_examples")
    examples.add_argument("--since", help="only choices made on or after this date (YYYY-MM-DD)")
    examples.add_argument("--out", help="write to this file instead of standard output")
    password = admin_sub.add_parser("password", parents=[common],
                                    help="set a staff member's console password (asked, or read from stdin)")
    password.add_argument("--staff", required=True, help="staff id or exact name")
    migrate = admin_sub.add_parser("migrate", parents=[common],
                                   help="bring the database schema up to date (the service also does it at start)")
    migrate.add_argument("--check", action="store_true",
                         help="only say whether the schema is current: exit 0 current, 1 behind (nothing changes)")
    backup = admin_sub.add_parser("backup", parents=[common],
                                  help="write the database, the knowledge documents and kept messages to one archive "
                                       "(safe while the service runs)")
    backup.add_argument("--out", required=True, help="the archive to write, e.g. backup-2026-12-06.tar.gz")
    restore = admin_sub.add_parser("restore", parents=[common],
                                   help="restore an archive into an empty database (the index is rebuilt at start)")
    restore.add_argument("archive", help="an archive written by admin backup")
    duty = admin_sub.add_parser("duty", parents=[common],
                                help="今日我当班: print a community's duty roster, or set or clear one day's")
    duty.add_argument("--community", required=True, help="community id (see district.toml)")
    duty.add_argument("--day", default="",
                      help="the day: YYYY-MM-DD, today or tomorrow (printing: the first of 7 days; default today)")
    action = duty.add_mutually_exclusive_group()
    action.add_argument("--set", dest="people", help="who is on duty that day: staff ids or exact names, comma-separated")
    action.add_argument("--clear", action="store_true", help="remove that day's shifts")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from bot.logs import setup_logging

    setup_logging(quiet=args.command in ("chat", "admin"))
    from bot.settings import load_settings

    try:
        settings = load_settings(args.config)
        if args.command == "chat":
            from bot.app import build_service
            from bot.channels.console import run_console

            service = build_service(settings)
            service.knowledge.ensure_ingested()
            return run_console(service.conversation, args.user, args.json, outbox=service.outbox)
        if args.command == "admin":
            from bot.admin import run_admin

            return run_admin(settings, args)
        from bot.server import serve

        return serve(settings)
    except BotError as exc:
        print(f"python -m bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
