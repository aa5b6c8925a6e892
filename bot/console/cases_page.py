"""调解 (every staff role): mediation cases of one's grids or community, from acceptance to the follow-up visit.

A case opens from a dispute ticket (the ticket page links here) or from scratch;
its page holds the parties (masked for no one who may see the case at all: only
the grid's workers, the community's supervisors and admins may), the sessions,
law passages suggested for its summary from the separate law knowledge base
(with article numbers), and the forms for the next step. An agreement prints as
a 调解协议书 for the parties to sign.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.casework.mediation import GUIDANCE, STATUS_LABELS, CaseError, CaseNotFound, PartyEntry
from bot.console.auth import Visit
from bot.console.pages import Refusal, render, see_other
from bot.core.district_time import DISTRICT_ZONE
from bot.core.privacy import find_phone
from bot.errors import BotError
from bot.tickets.lifecycle import TicketNotFound
from bot.tickets.store import Actor, can_see_personal_data, can_view

log = logging.getLogger(__name__)
DONE = {"opened": "已受理调解案件。", "session": "已记录这次调解。", "agreed": "已记录调解协议，到期会提醒回访。",
        "failed": "已记录调解不成的原因和告知的途径。", "followup": "已记录回访情况。"}


def add_routes(router: APIRouter, console) -> None:
    service = console.service
    desk = service.mediation

    def case_or_404(visit: Visit, case_id: int):
        try:
            return desk.get(Actor.of(visit.staff), case_id)
        except CaseNotFound as exc:
            raise Refusal(404, str(exc)) from exc

    def case_page(request: Request, visit: Visit, case_id: int, status: int = 200, **extra) -> Response:
        case, parties, sessions = case_or_404(visit, case_id)
        laws = _laws_for(service, case.summary)
        grids = {g.id: g.name for g in console.org.grids.values()}
        return render(request, "case.html", status, title=f"调解案件 #{case.id}", case=case, parties=parties,
                      sessions=sessions, laws=laws, status_labels=STATUS_LABELS, guidance=GUIDANCE,
                      grid_name=grids.get(case.grid_id or "", "未匹配网格"), now=service.store.clock(),
                      followup_days=desk.followup_days, **extra)

    @router.get("/cases")
    def cases_page(request: Request, status: str = "", visit: Visit = Depends(console.visit)) -> Response:
        actor = Actor.of(visit.staff)
        cases = desk.cases(actor, status if status in STATUS_LABELS else "")
        community = visit.staff.community if visit.staff.role == "supervisor" else None
        agreed, closed = desk.success_rate(community)
        return render(request, "cases.html", title="调解", cases=cases, chosen=status, status_labels=STATUS_LABELS,
                      agreed=agreed, closed=closed, now=service.store.clock())

    @router.get("/cases/new")
    def new_case(request: Request, ticket: str = "", visit: Visit = Depends(console.visit)) -> Response:
        source = None
        if ticket:
            try:
                source = service.store.get(ticket.upper())
            except TicketNotFound:
                source = None
            if source is None or not can_view(Actor.of(visit.staff), source):
                raise Refusal(404, f"没有找到工单 {ticket}。")
        personal = source is not None and can_see_personal_data(Actor.of(visit.staff), source)
        return render(request, "case_new.html", title="受理调解", ticket=source, personal=personal,
                      grids=_grids_for(console, visit))

    @router.post("/cases")
    async def open_case(request: Request, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request)
        text = {k: " ".join(str(form.get(k, "")).split()) for k in
                ("summary", "grid", "ticket", "a_name", "a_place", "a_phone", "r_name", "r_place", "r_phone")}
        grid = text["grid"] if text["grid"] in console.org.grids else None
        parties = [PartyEntry("applicant", text["a_name"], text["a_place"], find_phone(text["a_phone"]) or ""),
                   PartyEntry("respondent", text["r_name"], text["r_place"], find_phone(text["r_phone"]) or "")]
        try:
            case_id = await run_in_threadpool(desk.open, Actor.of(visit.staff), text["summary"], grid, None, parties,
                                              text["ticket"] or None)
        except BotError as exc:
            return render(request, "case_new.html", 400, title="受理调解", ticket=None, personal=False,
                          grids=_grids_for(console, visit), error=str(exc), form=text)
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "case_open",
                                f"调解案件 #{case_id}", text["ticket"])
        return see_other(f"/console/cases/{case_id}?ok=opened")

    @router.get("/cases/{case_id}")
    def case_detail(request: Request, case_id: int, ok: str = "", visit: Visit = Depends(console.visit)) -> Response:
        return case_page(request, visit, case_id, flash=DONE.get(ok, ""))

    @router.get("/cases/{case_id}/agreement")
    def agreement(request: Request, case_id: int, visit: Visit = Depends(console.visit)) -> Response:
        case, parties, sessions = case_or_404(visit, case_id)
        if case.status != "agreed":
            raise Refusal(409, "案件还没有达成协议。")
        return render(request, "agreement.html", title=f"调解协议书 #{case.id}", case=case, parties=parties,
                      sessions=sessions, community=console.org.communities.get(case.community_id or ""))

    @router.post("/cases/{case_id}/{step}")
    async def step(request: Request, case_id: int, step: str, visit: Visit = Depends(console.visit)) -> Response:
        form = await console.form(request)
        actor = Actor.of(visit.staff)
        value = {k: str(form.get(k, "")).strip() for k in
                 ("held_at", "location", "attendees", "notes", "terms", "reason", "guidance", "outcome")}
        try:
            if step == "session":
                held = _when(value["held_at"])
                await run_in_threadpool(desk.add_session, actor, case_id, held, value["location"],
                                        value["attendees"], value["notes"])
            elif step == "agree":
                await run_in_threadpool(desk.agree, actor, case_id, value["terms"])
            elif step == "fail":
                await run_in_threadpool(desk.fail, actor, case_id, value["reason"], value["guidance"])
            elif step == "followup":
                await run_in_threadpool(desk.record_followup, actor, case_id, value["outcome"])
            else:
                raise Refusal(404, "没有这个操作。")
        except CaseNotFound as exc:
            raise Refusal(404, str(exc)) from exc
        except CaseError as exc:
            return await run_in_threadpool(lambda: case_page(request, visit, case_id, 400, error=str(exc)))
        if step in ("agree", "fail"):
            await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "case_close",
                                    f"调解案件 #{case_id}", STATUS_LABELS["agreed" if step == "agree" else "failed"])
        return see_other(f"/console/cases/{case_id}?ok=" + {"agree": "agreed", "fail": "failed"}.get(step, step))


def _when(value: str) -> datetime:
    """A datetime-local field (2026-12-06T15:30) as that moment in the district."""
    try:
        # stored in UTC like every time (SQLite keeps no offset)
        return datetime.fromisoformat(value).replace(tzinfo=DISTRICT_ZONE).astimezone(timezone.utc)
    except ValueError as exc:
        raise CaseError("请填写调解的日期和时间。") from exc


def _grids_for(console, visit: Visit) -> list:
    staff = visit.staff
    grids = list(console.org.grids.values())
    if staff.role == "worker":
        return [g for g in grids if g.id in (staff.grids or [])]
    if staff.role == "supervisor":
        return [g for g in grids if g.community_id == staff.community]
    return grids


def _laws_for(service, summary: str) -> list:
    """Law passages for the case's summary, with their article numbers (the law base's sections)."""
    laws = getattr(service, "laws", None)
    if laws is None or not summary:
        return []
    try:
        return list(laws.retriever.search(summary[:300], k=3))
    except Exception:  # noqa: BLE001 - the case page works without suggestions
        log.exception("law suggestions for a mediation case failed")
        return []
