"""Rendering console pages: the Jinja2 templates, refusals as HTML pages, and the route class that shows them.

The web app's own error handlers answer JSON for the chat API; console routes
use ConsoleRoute, which turns a Refusal into a Chinese HTML page (and a missing
login on a GET into a redirect to the login page) before those handlers see it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.tickets.sla import as_utc, local

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
NO_STORE = {"Cache-Control": "no-store"}
ROLE_LABELS = {"worker": "网格员", "supervisor": "社区负责人", "admin": "管理员"}


class Refusal(Exception):
    """A request the console refuses, shown as a page with this status and Chinese message."""

    def __init__(self, status: int, message: str, title: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title or {400: "请求有误", 403: "没有权限", 404: "没有找到", 409: "操作没有完成",
                               413: "文件太大", 429: "请稍后再试"}.get(status, "出错了")


class LoginRequired(Exception):
    """No valid session cookie."""


@functools.cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = local
    env.filters["utc"] = as_utc  # SQLite gives back naive UTC times: compare them with "now" through this
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    return env


def nav_for(staff) -> list[tuple[str, str]]:
    """The menu a staff member sees: (path, label)."""
    if staff is None:
        return []
    items = [("/console/tickets", "工单"), ("/console/file", "受理"), ("/console/visits", "走访"),
             ("/console/cases", "调解"), ("/console/ask", "问答")]
    if staff.role in ("supervisor", "admin"):
        items += [("/console/duty", "值班"), ("/console/stats", "统计")]
    if staff.role == "admin":
        items += [("/console/kb", "知识库"), ("/console/questions", "问答记录"), ("/console/staff", "人员与邀请"),
                  ("/console/audit", "操作记录")]
    return items


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """A console page; the logged-in visit (if any) fills the menu and the CSRF token of every form."""
    visit = getattr(request.state, "visit", None)
    staff = visit.staff if visit is not None else None
    base = {"staff": staff, "csrf": visit.csrf if visit is not None else "", "nav": nav_for(staff),
            "path": request.url.path, "title": "", "flash": "", "error": ""}
    html = _environment().get_template(template).render({**base, **context})
    return HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})


def refusal_page(request: Request, refusal: Refusal) -> HTMLResponse:
    return render(request, "message.html", refusal.status, title=refusal.title, message=refusal.message)


class ConsoleRoute(APIRoute):
    """An APIRoute whose refusals become HTML pages."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse("/console/login", status_code=303, headers=NO_STORE)
                return refusal_page(request, Refusal(403, "登录已过期，请重新登录后再提交。"))
            except Refusal as refusal:
                return refusal_page(request, refusal)

        return console_handler


def start_of_day(since: str):
    """A "开始日期" form field (2026-11-01) as the start of that district day; None when empty."""
    from datetime import datetime

    from bot.tickets.sla import SHANGHAI

    if not since:
        return None
    try:
        return datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
    except ValueError as exc:
        raise Refusal(400, "开始日期的格式应当是 2026-11-01。") from exc


def who(actor: str, people: dict) -> str:
    """An event's actor as people read it: "王芳（网格员）", 居民, 系统 (people: staff by id)."""
    kind, _, number = actor.partition(":")
    if kind in ("staff", "console") and number.isdigit():
        person = people.get(int(number))
        return f"{person.name}（{ROLE_LABELS.get(person.role, person.role)}）" if person else "工作人员"
    return {"resident": "居民", "system": "系统", "cli": "命令行（管理员）"}.get(actor, actor)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=NO_STORE)
