"""The three rates (三率) and counts by category, grid and week.

- response rate: tickets whose worker contacted the resident (accepted) within the dispatch deadline;
- resolution rate: closed tickets the resident confirmed resolved (rated 3-5) among closed and rated ones;
- satisfaction: mean rating, and the share of ratings of 4 or 5.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from bot.tickets.models import Ticket
from bot.tickets.sla import SHANGHAI, as_utc


@dataclass
class Stats:
    total: int = 0
    response_rate: float | None = None
    resolution_rate: float | None = None
    satisfaction_mean: float | None = None
    satisfaction_rate: float | None = None
    by_status: Counter = field(default_factory=Counter)
    by_category: Counter = field(default_factory=Counter)
    by_grid: Counter = field(default_factory=Counter)
    by_week: Counter = field(default_factory=Counter)
    overdue: list[str] = field(default_factory=list)


def compute_stats(sessions, since: datetime | None = None, now: datetime | None = None,
                  community: str | None = None) -> Stats:
    with sessions() as s:
        query = select(Ticket)
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        if community is not None:
            query = query.where(Ticket.community_id == community)
        tickets = list(s.scalars(query))
    stats = Stats(total=len(tickets))
    responded = dispatched = 0
    ratings = []
    confirmed = rated_closed = 0
    for t in tickets:
        stats.by_status[t.status] += 1
        stats.by_category[t.category] += 1
        stats.by_grid[t.grid_id or "未匹配网格"] += 1
        year, week, _ = as_utc(t.created_at).astimezone(SHANGHAI).isocalendar()
        stats.by_week[f"{year}-W{week:02d}"] += 1
        if t.status in ("cancelled", "merged"):
            continue
        if t.accepted_at is not None and as_utc(t.accepted_at) <= as_utc(t.dispatch_due):
            dispatched += 1
            responded += 1
        elif t.accepted_at is not None or now is None or as_utc(t.dispatch_due) <= now:
            dispatched += 1  # late, or the deadline passed: counts against; still within it: not yet judged
        if t.rating is not None:
            ratings.append(t.rating)
            if t.status == "closed":
                rated_closed += 1
                confirmed += t.rating >= 3
        if now is not None and t.status in ("new", "assigned") and as_utc(t.dispatch_due) < now:
            stats.overdue.append(t.id)
    stats.response_rate = responded / dispatched if dispatched else None
    stats.resolution_rate = confirmed / rated_closed if rated_closed else None
    if ratings:
        stats.satisfaction_mean = sum(ratings) / len(ratings)
        stats.satisfaction_rate = sum(r >= 4 for r in ratings) / len(ratings)
    return stats


def format_stats(stats: Stats) -> str:
    def pct(x):
        return "—" if x is None else f"{x:.1%}"

    lines = [f"工单总数 {stats.total}",
             f"响应率 {pct(stats.response_rate)}  解决率 {pct(stats.resolution_rate)}  "
             f"满意率 {pct(stats.satisfaction_rate)}  平均评分 "
             f"{'—' if stats.satisfaction_mean is None else f'{stats.satisfaction_mean:.2f}'}"]
    for title, counter in (("按状态", stats.by_status), ("按类别", stats.by_category), ("按网格", stats.by_grid),
                           ("按周", stats.by_week)):
        lines.append(f"{title}：" + "，".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])))
    lines.append(f"超时未派单/未接单：{len(stats.overdue)}" + (f"（{', '.join(stats.overdue[:20])}）" if stats.overdue else ""))
    return "\n".join(lines)
