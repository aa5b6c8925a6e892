"""问答记录 (admins): what residents asked, what they got, and the queue of questions to work through.

Not covered and 👎 questions wait in the queue until an admin marks them handled
(after adding a document, or answering the resident through the ticket desk). The
log never shows who asked: it stores only a hash of the resident's account.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import Refusal, render, see_other
from bot.tickets.sla import SHANGHAI

KINDS = {"queue": "待处理（未覆盖或👎，未处理）", "all": "全部", "not_covered": "未覆盖", "down": "👎 没用"}


def add_routes(router: APIRouter, console) -> None:
    def admin(request: Request) -> Visit:
        visit = console.visit(request)
        console.require(visit, "admin")
        return visit

    log = console.service.answer_log

    @router.get("/questions")
    def questions_page(request: Request, kind: str = "queue", source: str = "", since: str = "", ok: str = "",
                       visit: Visit = Depends(admin)) -> Response:
        kind = kind if kind in KINDS else "queue"
        start = None
        if since:
            try:
                start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
            except ValueError as exc:
                raise Refusal(400, "开始日期的格式应当是 2026-11-01。") from exc
        rows = log.recent(kind, source.strip()[:100], start)
        return render(request, "questions.html", title="问答记录", rows=rows, kinds=KINDS, kind=kind,
                      source=source, since=since, top=log.top_sources(), queue=log.queue_size(),
                      flash="已标记为已处理。" if ok else "")

    @router.post("/questions/{entry_id}/handled")
    async def mark_handled(request: Request, entry_id: int, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        if not await run_in_threadpool(log.mark_handled, entry_id):
            raise Refusal(404, "没有这条待处理的问题（可能已被处理）。")
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "question_handled",
                                f"问答 {entry_id}")
        back = str(form.get("back", ""))
        return see_other("/console/questions" + (back if back.startswith("?") else "?") + "&ok=1")
