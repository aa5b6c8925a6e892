"""The knowledge-base page (admins only): documents with their status, upload, remove, re-ingest with progress."""

from __future__ import annotations

from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from bot.console.auth import Visit, csrf_ok
from bot.console.kb_admin import STAGES, KbAdminError, KbBusy
from bot.console.pages import Refusal, render, see_other
from bot.retrieval.loaders import SUPPORTED_SUFFIXES

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields beside the file
DONE = {"removed": "已删除“{name}”。点“重新导入”后，机器人就不再引用它。",
        "saved": "已上传“{name}”。点“重新导入”后，机器人就能引用它。",
        "restored": "已把“{name}”恢复为所选的历史版本（原来的内容也已留作历史版本）。点“重新导入”后生效。"}


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


class KbViews:
    def __init__(self, console):
        self.console = console
        self.kb = console.kb

    def page(self, request: Request, status: int = 200, error: str = "", flash: str = "") -> Response:
        documents = self.kb.documents()
        running = self.kb.running()
        return render(request, "kb.html", status, title="知识库", documents=documents, error=error, flash=flash,
                      running=running, accept=",".join(SUPPORTED_SUFFIXES), max_mb=f"{self.kb.max_mb:g}",
                      docs_dir=self.kb.docs_dir.name)

    async def upload_form(self, request: Request, visit: Visit) -> FormData:
        """The multipart form, read up to the size limit and CSRF-checked (starlette would spool any size)."""
        cap = self.kb.max_bytes + FORM_OVERHEAD
        length = request.headers.get("content-length", "")
        too_large = Refusal(413, self.kb.too_large_message(int(length) if length.isdigit() else None))
        if length.isdigit() and int(length) > cap:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                raise too_large
        try:
            form = await MultiPartParser(request.headers, _once(bytes(body)), max_files=1, max_fields=10,
                                         max_part_size=FORM_OVERHEAD).parse()
        except (MultiPartException, KeyError, ValueError) as exc:
            raise Refusal(400, "上传的表单格式不对，请在知识库页面重新选择文件上传。") from exc
        if not csrf_ok(visit.session_id, form.get("csrf")):
            raise Refusal(403, "页面已过期或来源不明，请返回上一页刷新后再提交。")
        return form


def add_routes(router: APIRouter, console) -> None:
    views = KbViews(console)
    kb = console.kb

    def admin(request: Request) -> Visit:
        visit = console.visit(request)
        console.require(visit, "admin")
        return visit

    @router.get("/kb")
    def kb_page(request: Request, ok: str = "", name: str = "", visit: Visit = Depends(admin)) -> Response:
        flash = DONE[ok].format(name=name[:120]) if ok in DONE else ""
        return views.page(request, flash=flash)

    @router.post("/kb/upload")
    async def upload(request: Request, visit: Visit = Depends(admin)) -> Response:
        try:
            form = await views.upload_form(request, visit)
        except Refusal as refusal:
            if refusal.status == 403:
                raise
            return await run_in_threadpool(views.page, request, refusal.status, refusal.message)
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return await run_in_threadpool(views.page, request, 400, "请先选择要上传的文件。")
        data = await file.read()
        try:
            saved, _ = await run_in_threadpool(kb.save, file.filename, data, bool(form.get("staff_only")))
        except KbAdminError as exc:
            status = 413 if len(data) > kb.max_bytes else 400
            return await run_in_threadpool(views.page, request, status, str(exc))
        audit = console.directory.audit
        await run_in_threadpool(audit.record, f"staff:{visit.staff.id}", "kb_upload", saved)
        if form.get("ingest"):
            try:
                job = kb.start_reingest()
            except KbBusy as exc:
                return await run_in_threadpool(views.page, request, 409, f"已上传“{saved}”，但{exc}")
            return see_other(f"/console/kb/jobs/{job.id}")
        return see_other(f"/console/kb?ok=saved&name={_q(saved)}")

    @router.post("/kb/remove")
    async def remove(request: Request, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        try:
            removed = await run_in_threadpool(kb.remove, str(form.get("name", "")))
        except KbAdminError as exc:
            return await run_in_threadpool(views.page, request, 404, str(exc))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "kb_remove", removed)
        return see_other(f"/console/kb?ok=removed&name={_q(removed)}")

    @router.post("/kb/restore")
    async def restore_version(request: Request, visit: Visit = Depends(admin)) -> Response:
        form = await console.form(request)
        name, version = str(form.get("name", "")), str(form.get("version", ""))
        try:
            restored = await run_in_threadpool(kb.restore_version, name, version)
        except KbAdminError as exc:
            return await run_in_threadpool(views.page, request, 404, str(exc))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "kb_restore", restored,
                                f"恢复到 {version}")
        return see_other(f"/console/kb?ok=restored&name={_q(restored)}")

    @router.post("/kb/reingest")
    async def reingest(request: Request, visit: Visit = Depends(admin)) -> Response:
        await console.form(request)
        try:
            job = kb.start_reingest()
        except KbBusy as exc:
            return await run_in_threadpool(views.page, request, 409, str(exc))
        await run_in_threadpool(console.directory.audit.record, f"staff:{visit.staff.id}", "kb_reingest")
        return see_other(f"/console/kb/jobs/{job.id}")

    @router.get("/kb/jobs/{job_id}")
    def job_page(request: Request, job_id: str, visit: Visit = Depends(admin)) -> Response:
        job = kb.job(job_id)
        if job is None:
            raise Refusal(404, "没有这个导入任务（服务重启后任务记录会清空）。")
        return render(request, "kb_job.html", title="重新导入", job=job, stages=STAGES)


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value)
