"""The staff console's routes under /console: login and logout here, each area in its own module.

    GET  /console/login              password form (and how to get a login link)
    POST /console/login              password login (throttled per name + address)
    GET  /console/login/{token}      confirm page of a one-time link (a GET never uses the link up:
                                     chat apps fetch links for previews)
    POST /console/login/{token}      use the link, start a session
    POST /console/logout
    /console/tickets…  tickets_page.py     /console/stats…  stats_page.py
    /console/kb…       kb_page.py          /console/staff…  staff_page.py
    /console/questions… questions_page.py  (the answer log and its queue)
    /console/ask        ask_page.py        (问答: the knowledge base as workers see it, with the ranked passages)
    /console/file…      file_page.py       (受理: a ticket filed for a resident at the window, by phone, on a visit)
    /console/duty…      duty_page.py       (值班: the community's duty roster, 今日我当班)
    /console/visits…    visits_page.py     (走访: the visit register, a visit recorded from one note)
    /console/cases…     cases_page.py      (调解: mediation cases, sessions, agreement, 回访)

Every POST form carries a CSRF token (the session's, or before login a cookie's),
checked in constant time; a POST without it is refused with 403.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.datastructures import FormData

from bot.console.auth import ConsoleAuth, ConsoleAuthError, LoginThrottled, Visit, csrf_ok, csrf_token
from bot.console.kb_admin import KbAdmin
from bot.console.pages import STATIC, ConsoleRoute, LoginRequired, Refusal, render, see_other

log = logging.getLogger(__name__)
SESSION_COOKIE = "dsw_console"
PRE_LOGIN_COOKIE = "dsw_console_login"  # CSRF secret of the login forms, before there is a session
COOKIE_PATH = "/console"


class Console:
    """What the console's pages need from the service, and the checks every page shares."""

    def __init__(self, service, auth: ConsoleAuth | None = None, kb: KbAdmin | None = None):
        settings = service.settings
        self.service = service
        self.settings = settings.console
        self.store = service.store
        self.org = service.store.org
        self.directory = service.staff
        # the service may already hold these (shared with the chat commands); else the console makes its own
        self.auth = auth or getattr(service, "console_auth", None) or ConsoleAuth(service.sessions, settings.console,
                                                                                 clock=service.store.clock)
        self.kb = kb or getattr(service, "kb_admin", None) or KbAdmin(service.knowledge, settings.console.max_upload_mb)

    # dependencies ------------------------------------------------------------------------------
    def visit(self, request: Request) -> Visit:
        visit = self.auth.visit(request.cookies.get(SESSION_COOKIE))
        if visit is None:
            raise LoginRequired()
        request.state.visit = visit
        return visit

    async def form(self, request: Request, limit_fields: int = 50) -> FormData:
        """The posted form of a logged-in visit, CSRF-checked."""
        visit = getattr(request.state, "visit", None)
        form = await request.form(max_files=0, max_fields=limit_fields, max_part_size=64 * 1024)
        if visit is None or not csrf_ok(visit.session_id, form.get("csrf")):
            log.warning("console POST %s refused: missing or wrong CSRF token", request.url.path)
            raise Refusal(403, "页面已过期或来源不明，请返回上一页刷新后再提交。")
        return form

    @staticmethod
    def require(visit: Visit, *roles: str) -> None:
        if visit.staff.role not in roles:
            raise Refusal(403, "这个页面只对" + "、".join({"supervisor": "社区负责人", "admin": "管理员",
                                                          "worker": "网格员"}[r] for r in roles) + "开放。")

    # cookies -----------------------------------------------------------------------------------
    def start_session(self, staff_id: int, via: str) -> Response:
        response = see_other("/console/tickets")
        response.set_cookie(SESSION_COOKIE, self.auth.open_session(staff_id, via), max_age=self.auth.max_age,
                            path=COOKIE_PATH, httponly=True, samesite="lax", secure=self.settings.secure_cookies)
        response.delete_cookie(PRE_LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    def login_page(self, request: Request, template: str, status: int = 200, **context) -> Response:
        """A login form with its pre-login CSRF cookie (reused when the browser already has one)."""
        secret = request.cookies.get(PRE_LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = render(request, template, status, csrf=csrf_token(secret), **context)
        response.set_cookie(PRE_LOGIN_COOKIE, secret, max_age=3600, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=self.settings.secure_cookies)
        return response

    async def login_form(self, request: Request) -> FormData:
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        if not csrf_ok(request.cookies.get(PRE_LOGIN_COOKIE), form.get("csrf")):
            log.warning("console login POST refused: missing or wrong CSRF token")
            raise Refusal(403, "登录页面已过期，请刷新后重新登录。")
        return form


def create_console_router(service, auth: ConsoleAuth | None = None, kb: KbAdmin | None = None) -> APIRouter:
    """Every /console route, for create_web_app(extra_routes=[...])."""
    from bot.console import (ask_page, cases_page, duty_page, file_page, kb_page, questions_page, staff_page,
                             stats_page, tickets_page, visits_page)

    console = Console(service, auth, kb)
    router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
    _add_login_routes(router, console)
    tickets_page.add_routes(router, console)
    stats_page.add_routes(router, console)
    kb_page.add_routes(router, console)
    staff_page.add_routes(router, console)
    questions_page.add_routes(router, console)
    ask_page.add_routes(router, console)
    file_page.add_routes(router, console)
    duty_page.add_routes(router, console)
    visits_page.add_routes(router, console)
    cases_page.add_routes(router, console)
    return router


def _add_login_routes(router: APIRouter, console: Console) -> None:
    static_files = {p.name: p for p in STATIC.iterdir() if p.is_file()}

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        path = static_files.get(name)
        if path is None:
            raise Refusal(404, "没有这个文件。")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    @router.get("")
    @router.get("/")
    def home(request: Request) -> Response:
        return see_other("/console/tickets")

    @router.get("/login")
    def login(request: Request) -> Response:
        return console.login_page(request, "login.html", title="登录")

    @router.post("/login")
    async def login_with_password(request: Request) -> Response:
        form = await console.login_form(request)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        address = request.client.host if request.client else ""
        try:
            staff = await _in_thread(console.auth.password_login, name, password, address)
        except ConsoleAuthError as exc:
            status = 429 if isinstance(exc, LoginThrottled) else 401
            return console.login_page(request, "login.html", status, title="登录", error=str(exc), name=name)
        return console.start_session(staff.id, "password")

    @router.get("/login/{token}")
    def login_link(request: Request, token: str) -> Response:
        staff = console.auth.check_login_token(token)
        if staff is None:
            return console.login_page(request, "login.html", 403, title="登录",
                                      error="登录链接无效、已用过或已过期。请在聊天中重新发送 /console 获取新链接。")
        return console.login_page(request, "login_link.html", title="确认登录", person=staff, token=token)

    @router.post("/login/{token}")
    async def login_with_link(request: Request, token: str) -> Response:
        await console.login_form(request)
        try:
            staff = await _in_thread(console.auth.redeem_login_token, token)
        except ConsoleAuthError as exc:
            return console.login_page(request, "login.html", 403, title="登录", error=str(exc))
        return console.start_session(staff.id, "link")

    @router.post("/logout")
    async def logout(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        await console.form(request)
        await _in_thread(console.auth.close_session, visit.session_id)
        response = see_other("/console/login")
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response


async def _in_thread(fn, *args):
    """Run blocking work (database, scrypt) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
