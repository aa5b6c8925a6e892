"""Staff and invites (admins only): who works in which grid, and one-time invite codes for new staff."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import render
from bot.errors import BotError
from bot.tickets.models import Staff

ROLES = {"worker": "网格员", "supervisor": "社区负责人", "admin": "管理员"}


class StaffViews:
    def __init__(self, console):
        self.console = console
        self.org = console.org

    def staff(self) -> list[Staff]:
        with self.console.store.sessions() as s:
            people = list(s.scalars(select(Staff).order_by(Staff.role, Staff.id)))
            for p in people:
                s.expunge(p)
        return people

    def page(self, request: Request, status: int = 200, error: str = "", code: str = "", invite: dict | None = None,
             form: dict | None = None) -> Response:
        return render(request, "staff.html", status, title="人员与邀请", people=self.staff(), roles=ROLES,
                      org=self.org, error=error, code=code, invite=invite or {}, form=form or {})

    def create(self, visit: Visit, form) -> tuple[str, dict]:
        role = str(form.get("role", ""))
        grids = [str(g) for g in form.getlist("grid")]
        community = str(form.get("community", "")) or None
        name = str(form.get("name", "")).strip()[:64]
        try:
            hours = float(str(form.get("hours", "72")) or 72)
        except ValueError as exc:
            raise BotError("有效期请填写小时数，例如 72。") from exc
        if not 1 <= hours <= 24 * 30:
            raise BotError("有效期应在 1 到 720 小时之间。")
        if role == "worker":
            community = None
        elif role == "supervisor":
            grids = []
        else:
            grids, community = [], None
        code = self.console.directory.create_invite(role, grids, community, name, hours,
                                                    created_by=f"console:{visit.staff.id}")
        return code, {"role": role, "name": name, "grids": grids, "community": community, "hours": hours}


def add_routes(router: APIRouter, console) -> None:
    views = StaffViews(console)

    def admin(request: Request) -> Visit:
        visit = console.visit(request)
        console.require(visit, "admin")
        return visit

    @router.get("/staff")
    def staff_page(request: Request, visit: Visit = Depends(admin)) -> Response:
        return views.page(request)

    @router.post("/staff/invites")
    async def create_invite(request: Request, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        try:
            code, invite = await run_in_threadpool(views.create, visit, form)
        except BotError as exc:
            error = str(exc)
        else:
            # the code is shown on this response only: it is stored hashed and the page is not cached
            return await run_in_threadpool(lambda: views.page(request, code=code, invite=invite))
        return await run_in_threadpool(lambda: views.page(request, 400, error=error, form=dict(form)))
