"""Admin commands: invite staff, print statistics, export residents' own question/request choices."""

from __future__ import annotations

from datetime import datetime

from bot.errors import ConfigError


def run_admin(settings, args) -> int:
    from bot.app import build_service

    if args.admin_command in ("stats", "intent-examples") and args.since:
        try:
            datetime.fromisoformat(args.since)  # refuse a bad date before building the service
        except ValueError as exc:
            raise ConfigError(f"--since must be a date like 2026-11-01, not {args.since!r}") from exc
    if args.admin_command == "migrate":
        return migrate_command(settings, args.check)  # before build_service, which upgrades at start
    if args.admin_command in ("backup", "restore"):
        return backup_command(settings, args)  # no service: a restore needs the database untouched
    service = build_service(settings)
    if args.admin_command == "password":
        from bot.console.cli import password_command

        return password_command(service, args.staff)
    if args.admin_command == "invite":
        code = service.staff.create_invite(args.role, args.grid, args.community, args.name, args.hours, "cli")
        print(f"邀请码 {code}（{args.hours:g} 小时内有效，只能用一次）。请让对方给机器人发送：/bind {code}")
        return 0
    if args.admin_command == "stats":
        from bot.tickets.sla import utcnow
        from bot.tickets.stats import compute_stats, format_stats

        grids = service.store.org.grids
        stats = compute_stats(service.sessions, _since(args.since), utcnow(), args.community)
        print(format_stats(stats, lambda grid_id: grids[grid_id].name if grid_id in grids else grid_id))
        if not args.community:  # questions belong to no community
            qa = service.answer_log.figures(_since(args.since))
            from bot.tickets.stats import Rate

            print(f"居民提问 {qa.questions}：未覆盖率 {Rate(qa.not_covered, qa.questions).label()}，"
                  f"“没用”率 {Rate(qa.down, qa.voted).label()}，标准答复命中 {qa.curated}")
            print("问答按周：" + "，".join(f"{k} {v}" for k, v in sorted(qa.by_week.items())))
        return 0
    if args.admin_command == "intent-examples":
        return export_intent_examples(service, args.since, args.out)
    if args.admin_command == "duty":
        return duty_command(service, args)
    return 2


def duty_command(service, args) -> int:
    """Print seven days of a community's roster, or set (--set) or clear (--clear) one day."""
    from datetime import timedelta

    roster, org = service.roster, service.store.org
    if args.community not in org.communities:
        raise ConfigError(f"unknown community {args.community!r}; known: {', '.join(org.communities)}")
    today = roster.today()
    words = {"": today, "today": today, "今天": today, "tomorrow": today + timedelta(days=1),
             "明天": today + timedelta(days=1)}
    try:
        day = words[args.day] if args.day in words else datetime.strptime(args.day, "%Y-%m-%d").date()
    except ValueError as exc:
        raise ConfigError(f"--day must be a date like 2026-12-08, today or tomorrow, not {args.day!r}") from exc
    members = roster.members(args.community)
    if args.people is not None or args.clear:
        if args.clear or not args.people.strip():
            ids = []
        else:
            ids = [_staff_id(token.strip(), members) for token in args.people.replace("，", ",").split(",")
                   if token.strip()]
        names = roster.set_day(args.community, day, ids, "cli")
        print(f"{org.communities[args.community].name} {day.isoformat()} 当班：{'、'.join(names) or '（已清空）'}")
        return 0
    names = {p.id: p.name for p in members}
    print(f"{org.communities[args.community].name} 值班表（没排班的日子按各人的“在岗”状态派单）：")
    for when, ids in roster.week(args.community, day).items():
        people = "、".join(f"{names.get(i, i)}（{i}）" for i in ids) or "未排班"
        print(f"{when.isoformat()} 周{'一二三四五六日'[when.weekday()]}  {people}")
    return 0


def _staff_id(token: str, members) -> int:
    """A staff id, or the exact name of one of the community's people."""
    if token.isdigit():
        return int(token)
    found = [p.id for p in members if p.name == token]
    if len(found) != 1:
        raise ConfigError(f"no single staff member of this community is named {token!r}; use the id")
    return found[0]


def backup_command(settings, args) -> int:
    from bot.backup import backup, restore

    if args.admin_command == "backup":
        manifest = backup(settings, args.out)
        print(f"已备份到 {args.out}：{manifest['database']} 数据库（结构 {manifest['revision']}），"
              f"知识库文件 {len(manifest['documents'])} 个，暂存消息 {manifest['kept_messages']} 条。")
        return 0
    manifest = restore(settings, args.archive)
    print(f"已从 {args.archive}（{manifest['created_at']}）恢复：{manifest['database']} 数据库，"
          f"知识库文件 {len(manifest['documents'])} 个。启动服务时会自动升级数据库结构并重建知识库索引。")
    return 0


def migrate_command(settings, check: bool) -> int:
    """Say whether the schema is current (--check: 0 current, 1 behind); otherwise upgrade it to the newest."""
    from bot.storage.db import make_engine
    from bot.storage.migrate import status, upgrade

    engine = make_engine(settings.database.url, settings.base_dir, settings.database.busy_timeout_seconds)
    try:
        current, head = status(engine)
        if current == head:
            print(f"数据库结构已是最新（{head}）。")
            return 0
        if check:
            print(f"数据库结构需要升级：当前 {current or '空库'}，最新 {head}。运行 python -m bot admin migrate 升级"
                  "（服务启动时也会自动升级）。")
            return 1
        upgrade(engine)
        print(f"数据库结构已从 {current or '空库'} 升级到 {head}。")
        return 0
    finally:
        engine.dispose()


def export_intent_examples(service, since: str | None, out: str | None) -> int:
    """Write the residents' choices as JSONL ({text, label, how, channel, created}); the count goes to stderr."""
    import json
    import sys
    from contextlib import nullcontext

    since_dt = _since(since)
    counts = {"question": 0, "request": 0}
    try:
        target = open(out, "w", encoding="utf-8") if out else nullcontext(sys.stdout)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from exc
    try:
        with target as fh:
            for row in service.intent_feedback.examples(since_dt):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts[row["label"]] += 1
            fh.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush must not fail again
        return 0
    where = f" 到 {out}" if out else ""
    print(f"导出 {counts['question'] + counts['request']} 条{where}（查政策 {counts['question']}，反映问题 "
          f"{counts['request']}）。请逐条核对，删掉不对的，再把文件加到 [intents] extra_examples。", file=sys.stderr)
    return 0


def _since(value: str | None) -> datetime | None:
    """A date given by people in the district (Shanghai midnight) as the UTC instant stored times compare with."""
    from datetime import timezone

    from bot.tickets.sla import SHANGHAI

    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(timezone.utc)
