"""受理 (every staff role): file a ticket for a resident who came to the window, called, or was visited.

One free-text note is read by the chat intake's own extraction (core/walk_in.py);
the form shows what was understood, the worker corrects it and confirms. The
ticket records its source and who filed it, routes like any other, and sends the
resident nothing (they have no chat with the bot): the worker tells them the number.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import render, see_other
from bot.core.privacy import find_phone
from bot.core.walk_in import SOURCES, WalkIn, read_note, ticket_draft
from bot.tickets.lifecycle import SOURCE_LABELS
from bot.tickets.store import Actor, can_view

MAX_NOTE = 1000


def add_routes(router: APIRouter, console) -> None:
    service = console.service
    categories = service.categorizer.categories

    def page(request: Request, status: int = 200, **context) -> Response:
        base = {"title": "受理登记", "reading": None, "note": "", "categories": categories,
                "grid_names": {g.id: g.name for g in console.org.grids.values()},
                "sources": {k: SOURCE_LABELS[k] for k in SOURCES}}
        return render(request, "file.html", status, **{**base, **context})

    @router.get("/file")
    def file_form(request: Request, ok: str = "", visit: Visit = Depends(console.visit)) -> Response:
        flash = f"已登记工单 {ok}，已按网格派单。请把工单号告诉居民。" if ok.isalnum() and ok else ""
        return page(request, flash=flash)

    @router.post("/file/read")
    async def read(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request)
        note = " ".join(str(form.get("note", "")).split())
        if not note:
            return page(request, 400, error="请先写下居民反映的情况，例如：景村里3号楼2单元王阿姨来电，暖气不热，电话139…，下午在家。")
        if len(note) > MAX_NOTE:
            return page(request, 400, note=note[:MAX_NOTE], error=f"记录太长了（{len(note)} 字），请精简到 {MAX_NOTE} 字以内。")
        reading = await run_in_threadpool(read_note, service.intake, note)
        return page(request, note=note, reading=reading)

    @router.post("/file")
    async def file(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request)
        walk_in, problem = _checked(service, form)
        if problem:
            return page(request, 400, note=walk_in.note, reading=walk_in, error=problem)
        ticket, _ = await run_in_threadpool(service.store.file, ticket_draft(walk_in, visit.staff.id))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "ticket_file", ticket.id,
                                f"{SOURCE_LABELS[walk_in.source]} {ticket.category}")
        fresh = await run_in_threadpool(service.store.get, ticket.id)
        if can_view(Actor.of(visit.staff), fresh):
            return see_other(f"/console/tickets/{ticket.id}?ok=filed")
        return see_other(f"/console/file?ok={ticket.id}")  # another grid's: it went to that grid's worker


def _checked(service, form) -> tuple[WalkIn, str]:
    """The form as a walk-in, the place resolved again (the worker may have corrected it); the problem, if any."""
    text = {k: " ".join(str(form.get(k, "")).split()) for k in
            ("note", "description", "category", "place", "phone", "contact_time", "source")}
    category = service.categorizer.by_name.get(text["category"])
    match = service.intake.places.resolve(text["place"]) if text["place"] else None
    phone = find_phone(text["phone"]) or "" if text["phone"] else ""
    walk_in = WalkIn(text["note"][:MAX_NOTE], text["description"][:2000], category.name if category else "",
                     category.sla_class if category else "general", (match.text if match else text["place"])[:200],
                     match.building_id if match else None, match.grid_id if match else None,
                     match.community if match else "", phone, text["contact_time"][:64],
                     text["source"] if text["source"] in SOURCES else "")
    if not walk_in.description:
        return walk_in, "请写明居民反映的问题。"
    if category is None:
        return walk_in, "请选择类别。"
    if not walk_in.source:
        return walk_in, "请选择受理方式（窗口、电话或走访）。"
    if not walk_in.place:
        return walk_in, "请写明地点（小区、楼号），网格员要上门或派单。"
    if text["phone"] and not phone:
        return walk_in, "电话号码不对：请写 11 位手机号或带区号的固定电话；居民不留电话就空着。"
    return walk_in, ""
