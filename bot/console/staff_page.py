"""Staff and invites (admins only): who works in which grid, and one-time invite codes for new staff."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import Refusal, render, see_other, who
from bot.errors import BotError
from bot.tickets.audit import ACTION_LABELS as AUDIT_LABELS
from bot.tickets.models import Staff
from bot.tickets.store import Actor

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
             form: dict | None = None, flash: str = "") -> Response:
        people = self.staff()
        return render(request, "staff.html", status, title="人员与邀请", roles=ROLES, org=self.org, error=error,
                      code=code, invite=invite or {}, form=form or {}, flash=flash,
                      people=[p for p in people if p.active], former=[p for p in people if not p.active],
                      invites=self.console.directory.open_invites())

    def name_of(self, staff_id: int) -> str:
        return next((p.name for p in self.staff() if p.id == staff_id), str(staff_id))

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


DONE = {"deactivated": "已停用“{name}”。TA 的未办工单已重新派单，TA 不能再登录或处理工单。",
        "reset": "已重置“{name}”的密码。请让 TA 在聊天中发送 /console 用链接登录后重新设置。",
        "revoked": "邀请码已撤销，不能再使用。"}


def add_routes(router: APIRouter, console) -> None:
    views = StaffViews(console)

    def admin(request: Request) -> Visit:
        visit = console.visit(request)
        console.require(visit, "admin")
        return visit

    @router.get("/staff")
    def staff_page(request: Request, ok: str = "", name: str = "", visit: Visit = Depends(admin)) -> Response:
        return views.page(request, flash=DONE[ok].format(name=name[:64]) if ok in DONE else "")

    @router.post("/staff/{staff_id}/{action}")
    async def staff_action(request: Request, staff_id: int, action: str, visit: Visit = Depends(admin)) -> Response:
        await console.form(request)
        actor = Actor.of(visit.staff)
        try:
            if action == "deactivate":
                name = await run_in_threadpool(lambda: views.name_of(staff_id))
                await run_in_threadpool(console.directory.deactivate, staff_id, actor)
                return see_other(f"/console/staff?ok=deactivated&name={quote(name)}")
            if action == "reset-password":
                name = await run_in_threadpool(console.directory.reset_password, staff_id, actor)
                return see_other(f"/console/staff?ok=reset&name={quote(name)}")
        except BotError as exc:
            return await run_in_threadpool(lambda: views.page(request, 409, error=str(exc)))
        raise Refusal(404, "没有这个操作。")

    @router.post("/staff/invites/{invite_id}/revoke")
    async def revoke_invite(request: Request, invite_id: int, visit: Visit = Depends(admin)) -> Response:
        await console.form(request)
        try:
            await run_in_threadpool(console.directory.revoke_invite, invite_id, f"staff:{visit.staff.id}")
        except BotError as exc:
            return await run_in_threadpool(lambda: views.page(request, 404, error=str(exc)))
        return see_other("/console/staff?ok=revoked")

    @router.get("/audit")
    def audit_page(request: Request, visit: Visit = Depends(admin)) -> Response:
        people = {p.id: p for p in views.staff()}
        rows = [{"at": e.at, "who": who(e.actor, people), "what": AUDIT_LABELS.get(e.action, e.action),
                 "target": e.target, "detail": e.detail} for e in console.directory.audit.recent()]
        return render(request, "audit.html", title="操作记录", rows=rows)

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

