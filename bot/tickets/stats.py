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

from bot.tickets.lifecycle import OPEN_STATES, SOURCE_LABELS, STATUS_LABELS
from bot.tickets.models import Ticket
from bot.tickets.sla import SHANGHAI, as_utc


@dataclass(frozen=True)
class Rate:
    """A share with what it rests on: 3 of 4 is not 3000 of 4000, and 0 of 0 is no rate at all."""

    hits: int
    of: int

    @property
    def value(self) -> float | None:
        return self.hits / self.of if self.of else None

    def label(self) -> str:
        return "—（尚无数据）" if not self.of else f"{self.hits / self.of:.1%}（{self.hits}/{self.of}）"


@dataclass
class Stats:
    total: int = 0
    response: Rate = Rate(0, 0)  # contacted within the dispatch deadline / tickets judged against it
    resolution: Rate = Rate(0, 0)  # confirmed resolved / closed and rated
    satisfaction: Rate = Rate(0, 0)  # rated 4-5 / rated
    satisfaction_mean: float | None = None
    open: int = 0  # not yet closed, cancelled or merged
    unassigned: int = 0  # waiting for a worker (待派单)
    by_status: Counter = field(default_factory=Counter)
    by_category: Counter = field(default_factory=Counter)
    by_grid: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)  # chat | window | phone | visit
    response_by_source: dict = field(default_factory=dict)  # source -> (in time, judged)
    by_week: Counter = field(default_factory=Counter)
    # the trend: per ISO week of filing, the response rate's (in time, judged) counts
    response_by_week: dict = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)  # open and past the deadline that matters now

    @property
    def response_rate(self) -> float | None:
        return self.response.value

    @property
    def resolution_rate(self) -> float | None:
        return self.resolution.value

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfaction.value


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
        stats.by_source[t.source or "chat"] += 1
        year, week, _ = as_utc(t.created_at).astimezone(SHANGHAI).isocalendar()
        label = f"{year}-W{week:02d}"
        stats.by_week[label] += 1
        if t.status in ("cancelled", "merged"):
            continue
        in_time = t.accepted_at is not None and as_utc(t.accepted_at) <= as_utc(t.dispatch_due)
        # late, or the deadline passed: counts against; still within it: not yet judged
        judged = in_time or t.accepted_at is not None or now is None or as_utc(t.dispatch_due) <= now
        if judged:
            dispatched += 1
            responded += in_time
            hits, of = stats.response_by_week.get(label, (0, 0))
            stats.response_by_week[label] = (hits + in_time, of + 1)
            hits, of = stats.response_by_source.get(t.source or "chat", (0, 0))
            stats.response_by_source[t.source or "chat"] = (hits + in_time, of + 1)
        if t.rating is not None:
            ratings.append(t.rating)
            if t.status == "closed":
                rated_closed += 1
                confirmed += t.rating >= 3
        if t.status in OPEN_STATES:
            stats.open += 1
            stats.unassigned += t.status == "new"
            due = t.feedback_due if t.status == "accepted" else t.dispatch_due
            if now is not None and t.status != "resolved" and as_utc(due) < now:
                stats.overdue.append(t.id)
    stats.response = Rate(responded, dispatched)
    stats.resolution = Rate(confirmed, rated_closed)
    stats.satisfaction = Rate(sum(r >= 4 for r in ratings), len(ratings))
    if ratings:
        stats.satisfaction_mean = sum(ratings) / len(ratings)
    return stats


def format_stats(stats: Stats, grid_name=lambda grid_id: grid_id) -> str:
    """The statistics as the console shows them, for `python -m bot admin stats`."""
    mean = "—" if stats.satisfaction_mean is None else f"{stats.satisfaction_mean:.2f}"
    lines = [f"工单总数 {stats.total}：待办 {stats.open}，待派单 {stats.unassigned}，超时 {len(stats.overdue)}",
             f"响应率 {stats.response.label()}  解决率 {stats.resolution.label()}  满意率 {stats.satisfaction.label()}  "
             f"平均评分 {mean}"]
    groups = (("按状态", {STATUS_LABELS.get(k, k): v for k, v in stats.by_status.items()}),
              ("按类别", stats.by_category), ("按网格", {grid_name(k): v for k, v in stats.by_grid.items()}),
              ("按来源", {SOURCE_LABELS.get(k, k): v for k, v in stats.by_source.items()}),
              ("按周", stats.by_week))
    for title, counter in groups:
        lines.append(f"{title}：" + "，".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])))
    lines.append(f"超时工单：{len(stats.overdue)}" + (f"（{', '.join(stats.overdue[:20])}）" if stats.overdue else ""))
    return "\n".join(lines)
