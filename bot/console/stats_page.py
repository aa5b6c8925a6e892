"""Statistics for supervisors (their community) and admins (the district): the three rates and counts, SVG and CSV."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.console.auth import Visit
from bot.console.charts import bar_chart, column_chart
from bot.console.exports import as_csv, as_xlsx, file_name, ticket_rows
from bot.console.pages import Refusal, render, start_of_day
from bot.tickets.lifecycle import SOURCE_LABELS, STATUS_LABELS
from bot.tickets.sla import SHANGHAI
from bot.tickets.stats import Rate, Stats, compute_stats


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


class StatsViews:
    def __init__(self, console):
        self.console = console
        self.org = console.org

    def scope(self, visit: Visit, community: str, since: str) -> tuple[str | None, datetime | None]:
        """(community filter, start time) this person asked for and may see."""
        self.console.require(visit, "supervisor", "admin")
        if visit.staff.role == "supervisor":
            if not visit.staff.community:
                raise Refusal(403, "您的账号没有对应的社区，请联系管理员重新邀请。")
            community = visit.staff.community
        elif community and community not in self.org.communities:
            raise Refusal(400, f"没有社区 {community}。")
        start = start_of_day(since)
        return community or None, start

    def compute(self, community: str | None, since: datetime | None) -> Stats:
        store = self.console.store
        return compute_stats(store.sessions, since, store.clock(), community)

    def calendar_warning(self) -> str:
        """Working-day deadlines beyond the holidays the chinese-calendar package knows: say so, once a page."""
        from bot.tickets.workdays import unsupported_year

        ts = self.console.service.settings.tickets
        if not (ts.dispatch_working_days or ts.feedback_working_days):
            return ""
        year = unsupported_year(datetime.now(SHANGHAI).date())
        if year is None:
            return ""
        return (f"节假日数据不含 {year} 年：按工作日计算的时限暂按周一至周五计算。"
                f"国务院公布 {year} 年放假安排后，请升级 chinese-calendar（pip install -U chinese-calendar）。")

    def qa(self, since: datetime | None):
        """The answer log's figures (the whole district: a question has no community)."""
        return self.console.service.answer_log.figures(since)

    def scope_name(self, community: str | None) -> str:
        return self.org.communities[community].name if community in self.org.communities else "全区"

    def grid_name(self, grid_id: str) -> str:
        grid = self.org.grids.get(grid_id)
        return grid.name if grid else grid_id

    def rows(self, stats: Stats) -> list[tuple[str, str, str]]:
        """(group, item, value) rows: what the page charts and the CSV holds."""
        rows = [("总体", "工单总数", str(stats.total)),
                ("总体", "待办", str(stats.open)),
                ("总体", "待派单", str(stats.unassigned)),
                ("总体", "超时", str(len(stats.overdue))),
                ("三率", "响应率", stats.response.label()),
                ("三率", "解决率", stats.resolution.label()),
                ("三率", "满意率", stats.satisfaction.label()),
                ("三率", "平均评分", "—" if stats.satisfaction_mean is None else f"{stats.satisfaction_mean:.2f}")]
        rows += [("按状态", STATUS_LABELS.get(k, k), str(v)) for k, v in _by_count(stats.by_status)]
        rows += [("按类别", k, str(v)) for k, v in _by_count(stats.by_category)]
        rows += [("按网格", self.grid_name(k), str(v)) for k, v in _by_count(stats.by_grid)]
        rows += [("按来源", SOURCE_LABELS.get(k, k), str(v)) for k, v in _by_count(stats.by_source)]
        rows += [("响应率按来源", SOURCE_LABELS.get(k, k), Rate(*counts).label())
                 for k, counts in sorted(stats.response_by_source.items())]
        rows += [("按周", k, str(v)) for k, v in sorted(stats.by_week.items())]
        rows += [("响应率按周", k, Rate(*counts).label()) for k, counts in sorted(stats.response_by_week.items())]
        return rows

    def mediation_rows(self, community: str | None) -> list[tuple[str, str, str]]:
        """调解成功率: agreed among the closed cases of the scope (all time: cases run for weeks)."""
        desk = getattr(self.console.service, "mediation", None)
        if desk is None:
            return []
        agreed, closed = desk.success_rate(community)
        return [("调解", "结案", str(closed)), ("调解", "调解成功率", Rate(agreed, closed).label())]

    def qa_rows(self, qa) -> list[tuple[str, str, str]]:
        rows = [("问答", "问题数", str(qa.questions)),
                ("问答", "未覆盖率", Rate(qa.not_covered, qa.questions).label()),
                ("问答", "“没用”率（占评价）", Rate(qa.down, qa.voted).label()),
                ("问答", "标准答复命中", str(qa.curated))]
        rows += [("问答按周", k, str(v)) for k, v in sorted(qa.by_week.items())]
        return rows

    def charts(self, stats: Stats) -> list:
        rates = [("响应率", stats.response_rate), ("解决率", stats.resolution_rate),
                 ("满意率", stats.satisfaction_rate)]
        return [
            bar_chart("三率", rates, fmt=lambda v: f"{v:.0%}", maximum=1.0, label_chars=4),
            bar_chart("按类别", [(k, v) for k, v in _by_count(stats.by_category)]),
            bar_chart("按网格", [(self.grid_name(k), v) for k, v in _by_count(stats.by_grid)], label_chars=9),
            bar_chart("按来源（线上、窗口、电话、走访）", [(SOURCE_LABELS.get(k, k), v) for k, v in _by_count(stats.by_source)],
                      label_chars=4),
            column_chart("按周（ISO 周）", [(k.split("-")[-1], v) for k, v in sorted(stats.by_week.items())[-12:]]),
            bar_chart("响应率按周（近 8 周）", [(f"{k.split('-')[-1]}（{of}张）", hits / of)
                                         for k, (hits, of) in sorted(stats.response_by_week.items())[-8:]],
                      fmt=lambda v: f"{v:.0%}", maximum=1.0, label_chars=9),
            bar_chart("按状态", [(STATUS_LABELS.get(k, k), v) for k, v in _by_count(stats.by_status)], label_chars=6),
        ]


def _by_count(counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def add_routes(router: APIRouter, console) -> None:
    views = StatsViews(console)

    @router.get("/stats")
    def stats_page(request: Request, community: str = "", since: str = "",
                   visit: Visit = Depends(console.visit)) -> Response:
        chosen, start = views.scope(visit, community, since)
        stats = views.compute(chosen, start)
        query = "&".join(f"{k}={quote(v)}" for k, v in (("community", chosen or ""), ("since", since)) if v)
        name = views.scope_name(chosen)
        tail = f"?{query}" if query else ""
        qa = views.qa(start) if visit.staff.role == "admin" else None
        calendar = views.calendar_warning()
        rows = views.rows(stats) + views.mediation_rows(chosen) + (views.qa_rows(qa) if qa is not None else [])
        return render(request, "stats.html", title="统计", stats=stats, charts=views.charts(stats), scope_name=name,
                      rows=rows, pct=pct, qa=qa, qa_not_covered=Rate(qa.not_covered, qa.questions) if qa else None,
                      qa_down=Rate(qa.down, qa.voted) if qa else None, calendar_warning=calendar, communities=console.org.communities, chosen=chosen or "",
                      since=since, csv_url="/console/stats.csv" + tail,
                      tickets_csv_url="/console/stats/tickets.csv" + tail,
                      tickets_xlsx_url="/console/stats/tickets.xlsx" + tail)

    @router.get("/stats/tickets.{suffix}")
    def tickets_export(suffix: str, community: str = "", since: str = "",
                       visit: Visit = Depends(console.visit)) -> Response:
        if suffix not in ("csv", "xlsx"):
            raise Refusal(404, "只能导出 CSV 或 Excel（.xlsx）。")
        chosen, start = views.scope(visit, community, since)
        name = file_name("工单明细", views.scope_name(chosen), start, console.store.clock(), suffix)
        rows = ticket_rows(console, chosen, start)
        return as_csv(rows, name) if suffix == "csv" else as_xlsx(rows, name)

    @router.get("/stats.csv")
    def stats_csv(community: str = "", since: str = "", visit: Visit = Depends(console.visit)) -> Response:
        chosen, start = views.scope(visit, community, since)
        name = file_name("工单统计", views.scope_name(chosen), start, console.store.clock(), "csv")
        rows = views.rows(views.compute(chosen, start)) + views.mediation_rows(chosen)
        if visit.staff.role == "admin":
            rows += views.qa_rows(views.qa(start))
        return as_csv(rows, name, ["分组", "项目", "数值"])
