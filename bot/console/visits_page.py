"""走访 (every staff role): the visit register of one's grids (智能采集), and recording a visit from one note.

A worker writes or pastes the visit note; core/visit_note.py reads the place,
the people with their tags, their needs and the problems seen; the form shows
the reading with services the knowledge base offers for each need, the worker
corrects it, ticks the problems to file as tickets, and saves. The register
lists those due a visit first, by grid and tag, and exports as CSV.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.casework.register import TAGS, PersonEntry, RegisterError
from bot.console.auth import Visit
from bot.console.exports import csv_cell
from bot.console.pages import render, see_other
from bot.core.ports import STAFF
from bot.core.visit_note import NEED_WORDS, read_visit
from bot.core.walk_in import WalkIn, ticket_draft
from bot.tickets.sla import local
from bot.tickets.store import Actor

MAX_NOTE = 2000
EXTRA_ROWS = 2  # blank person rows under the ones read, for someone the reading missed
NEEDS = tuple(NEED_WORDS)


def add_routes(router: APIRouter, console) -> None:
    service = console.service
    register = service.register

    def page(request: Request, template: str, status: int = 200, **context) -> Response:
        base = {"title": "走访", "tags": TAGS, "needs": NEEDS, "categories": service.categorizer.categories,
                "grid_names": {g.id: g.name for g in console.org.grids.values()}}
        return render(request, template, status, **{**base, **context})

    @router.get("/visits")
    def visits_page(request: Request, grid: str = "", tag: str = "", due: str = "", ok: str = "",
                    visit: Visit = Depends(console.visit)) -> Response:
        actor = Actor.of(visit.staff)
        people = register.people(actor, grid, tag if tag in TAGS else "", bool(due))
        flash = f"已保存走访记录{'，并生成工单 ' + ok if ok.startswith('T') else ''}。" if ok else ""
        return page(request, "visits.html", people=people, recent=register.visits(actor, 20), grid=grid, tag=tag,
                    due=bool(due), now=service.store.clock(), flash=flash,
                    csv_url="/console/visits.csv?" + "&".join(f"{k}={quote(v)}" for k, v in
                                                             (("grid", grid), ("tag", tag), ("due", due)) if v))

    @router.get("/visits.csv")
    def visits_csv(grid: str = "", tag: str = "", due: str = "", visit: Visit = Depends(console.visit)) -> Response:
        people = register.people(Actor.of(visit.staff), grid, tag if tag in TAGS else "", bool(due))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["网格", "地址", "姓名", "年龄", "标签", "需求", "上次走访", "下次走访"])
        grids = {g.id: g.name for g in console.org.grids.values()}
        for p in people:  # what a worker typed never runs as a spreadsheet formula
            writer.writerow([csv_cell(str(v)) for v in (
                grids.get(p.grid_id or "", p.grid_id or ""), p.place, p.name, p.age or "", "、".join(p.tags or []),
                "、".join(p.needs or []), local(p.last_visit_at), local(p.next_visit_due))])
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": "attachment; filename*=UTF-8''" + quote("走访登记.csv"),
            "Cache-Control": "no-store"})

    @router.get("/visits/new")
    def new_visit(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        return page(request, "visit_new.html", note="", reading=None)

    @router.post("/visits/read")
    async def read(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request)
        note = " ".join(str(form.get("note", "")).split())
        if not note:
            return page(request, "visit_new.html", 400, note="", reading=None,
                        error="请先写下走访的情况，例如：今天走访景村里3号楼2单元501，王大爷82岁独居，想申请送餐，楼道灯坏了。")
        if len(note) > MAX_NOTE:
            return page(request, "visit_new.html", 400, note=note[:MAX_NOTE], reading=None,
                        error=f"记录太长了（{len(note)} 字），请精简到 {MAX_NOTE} 字以内。")
        reading = await run_in_threadpool(read_visit, note, service.intake.places, service.categorizer)
        services = await run_in_threadpool(_services_for, service, reading.needs)
        return page(request, "visit_new.html", note=note, reading=reading, services=services,
                    rows=len(reading.people) + EXTRA_ROWS)

    @router.post("/visits")
    async def save(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request, limit_fields=300)
        actor = Actor.of(visit.staff)
        note = " ".join(str(form.get("note", "")).split())[:MAX_NOTE]
        place = " ".join(str(form.get("place", "")).split())[:200]
        match = service.intake.places.resolve(place) if place else None
        people = _people_of(form)
        needs = [n for n in form.getlist("needs") if n in NEEDS]
        problems = _problems_of(form, service)
        if actor.role == "worker" and (match is None or match.grid_id not in actor.grids):
            return await _again(request, page, service, note, "只能登记本网格的走访：地址对应不到您负责的网格。")
        if problems and (match is None or match.grid_id is None):
            return await _again(request, page, service, note, "地址对应不到网格，不能生成工单：请写清小区和楼号。")
        tickets = []
        for text, category in problems:
            walk_in = WalkIn(note, f"走访发现：{text}（{place}）", category.name, category.sla_class, match.text,
                             match.building_id, match.grid_id, match.community, "", "", "visit")
            ticket, _ = await run_in_threadpool(service.store.file, ticket_draft(walk_in, visit.staff.id))
            tickets.append(ticket.id)
        try:
            saved = await run_in_threadpool(register.save_visit, actor, note, match.text if match else place,
                                            match.building_id if match else None, match.grid_id if match else None,
                                            match.community if match else None, people, needs, tickets)
        except RegisterError as exc:
            return await _again(request, page, service, note, str(exc))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "visit_save",
                                f"走访 #{saved.id}", f"{len(people)} 人，工单 {len(tickets)} 张")
        return see_other("/console/visits?ok=" + (",".join(tickets) if tickets else str(saved.id)))


async def _again(request, page, service, note: str, error: str) -> Response:
    reading = await run_in_threadpool(read_visit, note, service.intake.places, service.categorizer)
    services = await run_in_threadpool(_services_for, service, reading.needs)
    return page(request, "visit_new.html", 400, note=note, reading=reading, services=services,
                rows=len(reading.people) + EXTRA_ROWS, error=error)


def _services_for(service, needs: list[str]) -> dict[str, str]:
    """need -> the knowledge base's document on it (what the worker can tell the household, or apply for)."""
    out = {}
    for need in needs:
        hits = service.knowledge.retriever.search(f"{need}怎么申请", k=1, audience=STAFF)
        if hits:
            out[need] = hits[0].title
    return out


def _people_of(form) -> list[PersonEntry]:
    people = []
    for i in range(50):
        name = " ".join(str(form.get(f"p{i}_name", "")).split())
        if f"p{i}_name" not in form:
            break
        if not name:
            continue
        age = str(form.get(f"p{i}_age", "")).strip()
        people.append(PersonEntry(name[:64], int(age) if age.isdigit() and 0 < int(age) < 130 else None,
                                  [t for t in form.getlist(f"p{i}_tags") if t in TAGS]))
    return people


def _problems_of(form, service) -> list[tuple[str, object]]:
    """The problems ticked to file: (what was seen, its category)."""
    out = []
    for i in range(20):
        if f"q{i}_text" not in form:
            break
        if not form.get(f"q{i}_file"):
            continue
        category = service.categorizer.by_name.get(str(form.get(f"q{i}_category", "")))
        text = " ".join(str(form.get(f"q{i}_text", "")).split())[:500]
        if category is not None and text:
            out.append((text, category))
    return out
