"""值班 (supervisors and admins): the community's duty roster, a week at a time.

A supervisor plans their own community; an admin chooses one. Ticking people for
a day puts them on duty that day (今日我当班): new reports from the grid of a worker
who is not on it go to them, and residents who ask "今天谁值班" are told their names.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import Refusal, render, see_other
from bot.tickets.duty import DutyError

WEEKDAYS = "一二三四五六日"


def add_routes(router: APIRouter, console) -> None:
    roster = console.service.roster
    org = console.org

    def supervising(request: Request) -> Visit:
        visit = console.visit(request)
        console.require(visit, "supervisor", "admin")
        return visit

    def community_of(visit: Visit, wanted: str) -> str:
        if visit.staff.role == "supervisor":
            return visit.staff.community or ""
        if wanted in org.communities:
            return wanted
        return next(iter(org.communities), "")

    def page(request: Request, visit: Visit, community: str, start: date, status: int = 200, **extra) -> Response:
        today = roster.today()
        start = max(start, today)
        week = roster.week(community, start)
        days = [(day, f"{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]}", set(ids), day == today)
                for day, ids in week.items()]
        return render(request, "duty.html", status, title="值班", community=org.communities[community],
                      communities=list(org.communities.values()) if visit.staff.role == "admin" else [],
                      members=roster.members(community), days=days, start=start,
                      earlier=(start - timedelta(days=7)).isoformat() if start > today else "",
                      later=(start + timedelta(days=7)).isoformat(), **extra)

    @router.get("/duty")
    def duty_page(request: Request, community: str = "", start: str = "", ok: str = "",
                  visit: Visit = Depends(supervising)) -> Response:
        chosen = community_of(visit, community)
        if chosen not in org.communities:
            raise Refusal(404, "您的账号没有对应的社区，请联系管理员。")
        return page(request, visit, chosen, _day(start) or roster.today(), flash="已保存排班。" if ok else "")

    @router.post("/duty")
    async def set_duty(request: Request, visit: Visit = Depends(supervising)) -> Response:
        form = await console.form(request, limit_fields=200)
        chosen = community_of(visit, str(form.get("community", "")))
        day = _day(str(form.get("day", "")))
        if day is None:
            raise Refusal(400, "日期不对。")
        ids = [int(v) for v in form.getlist("staff") if str(v).isdigit()]
        try:
            await run_in_threadpool(roster.set_day, chosen, day, ids, f"staff:{visit.staff.id}")
        except DutyError as exc:
            return await run_in_threadpool(lambda: page(request, visit, chosen, roster.today(), 400, error=str(exc)))
        start = _day(str(form.get("start", ""))) or day
        return see_other("/console/duty?" + urlencode({"community": chosen, "start": start.isoformat(), "ok": "1"}))


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
