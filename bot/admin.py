"""Admin commands: invite staff, print statistics."""

from __future__ import annotations

from datetime import datetime

from bot.errors import ConfigError


def run_admin(settings, args) -> int:
    from bot.app import build_service

    if args.admin_command == "stats" and args.since:
        try:
            datetime.fromisoformat(args.since)  # refuse a bad date before building the service
        except ValueError as exc:
            raise ConfigError(f"--since must be a date like 2026-11-01, not {args.since!r}") from exc
    service = build_service(settings)
    if args.admin_command == "password":
        from bot.console.cli import password_command

        return password_command(service, args.staff)
    if args.admin_command == "invite":
        code = service.staff.create_invite(args.role, args.grid, args.community, args.name, args.hours, "cli")
        print(f"邀请码 {code}（{args.hours:g} 小时内有效，只能用一次）。请让对方给机器人发送：/bind {code}")
        return 0
    if args.admin_command == "stats":
        from bot.tickets.sla import SHANGHAI, utcnow
        from bot.tickets.stats import compute_stats, format_stats

        since_dt = datetime.fromisoformat(args.since).replace(tzinfo=SHANGHAI) if args.since else None
        print(format_stats(compute_stats(service.sessions, since_dt, utcnow(), args.community)))
        return 0
    return 2
