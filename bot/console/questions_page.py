"""问答记录 (admins): what residents asked, what they got, and the queue of questions to work through.

Not covered and 👎 questions wait in the queue until an admin marks them handled
(after adding a document, or answering the resident through the ticket desk). The
log never shows who asked: it stores only a hash of the resident's account.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import Refusal, render, see_other, start_of_day

CURATED_DONE = {"saved": "已保存。与它相近的居民问题会先收到这条答复。", "retired": "已停用这条标准答复。"}
# plain words, not emoji: a staff PC without an emoji font shows boxes
KINDS = {"queue": "待处理（未覆盖或被评“没用”）", "all": "全部", "not_covered": "未覆盖", "down": "被评“没用”"}


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
        start = start_of_day(since)
        rows = log.recent(kind, source.strip()[:100], start)
        return render(request, "questions.html", title="问答记录", rows=rows, kinds=KINDS, kind=kind,
                      source=source, since=since, top=log.top_sources(), queue=log.queue_size(),
                      flash="已标记为已处理。" if ok else "")

    curated = console.service.curated

    @router.get("/curated")
    def curated_page(request: Request, question: str = "", edit: int = 0, ok: str = "",
                     visit: Visit = Depends(admin)) -> Response:
        editing = curated.get(edit) if edit else None
        return render(request, "curated.html", title="标准答复", items=curated.all(), editing=editing,
                      question=question[:500], flash=CURATED_DONE.get(ok, ""))

    @router.post("/curated")
    async def save_curated(request: Request, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        raw_id = str(form.get("id", ""))
        try:
            saved = await run_in_threadpool(curated.save, str(form.get("question", "")), str(form.get("answer", "")),
                                            str(form.get("source", "")), f"staff:{visit.staff.id}",
                                            int(raw_id) if raw_id.isdigit() else None)
        except ValueError as exc:
            return await run_in_threadpool(lambda: render(request, "curated.html", 400, title="标准答复",
                                                          items=curated.all(), editing=None,
                                                          question=str(form.get("question", ""))[:500],
                                                          error=str(exc)))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "curated_save",
                                f"标准答复 #{saved}", str(form.get("question", ""))[:200])
        return see_other("/console/curated?ok=saved")

    @router.post("/curated/{curated_id}/retire")
    async def retire_curated(request: Request, curated_id: int, visit: Visit = Depends(admin)) -> Response:
        await console.form(request)
        if not await run_in_threadpool(curated.retire, curated_id):
            raise Refusal(404, "没有这条在用的标准答复。")
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "curated_retire",
                                f"标准答复 #{curated_id}")
        return see_other("/console/curated?ok=retired")

    @router.post("/questions/{entry_id}/handled")
    async def mark_handled(request: Request, entry_id: int, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        if not await run_in_threadpool(log.mark_handled, entry_id):
            raise Refusal(404, "没有这条待处理的问题（可能已被处理）。")
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "question_handled",
                                f"问答 {entry_id}")
        back = str(form.get("back", ""))
        return see_other("/console/questions" + (back if back.startswith("?") else "?") + "&ok=1")
