"""问答 (every staff role): ask the knowledge base as a worker and see why it answered as it did.

Workers get the answer with its sources, staff-only documents included (marked
内部). Below it, the ranked passages with section, date, relevance, the two
signals it fuses (cosine, BM25 match) and what became of each: cited, near but
not about the question, too weak, or ranked after the cited ones. "以居民身份"
searches as a resident would (no staff-only document): an admin's retrieval test.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.console.auth import Visit
from bot.console.pages import render
from bot.core.answer import compose
from bot.core.ports import PUBLIC, STAFF, CuratedMatch
from bot.errors import IndexUnavailable
from bot.retrieval.retriever import Explained

MAX_QUESTION = 300
VERDICTS = {"cited": "已引用", "off_topic": "相关度够，但不是在讲这个问题（主题检查未通过）",
            "weak": "相关度不足", "beyond": "排在引用的几条之后"}


@dataclass
class Asked:
    question: str
    audience: str
    answer: str  # "" when the documents do not answer it
    sources: list[tuple[str, bool]]  # (citation label, staff-only)
    passages: list[Explained]
    curated: CuratedMatch | None  # an admin's answer residents would get first


def ask(service, question: str, audience: str) -> Asked:
    retriever = service.knowledge.retriever
    passages = retriever.explain(question, k=10, audience=audience)
    cited = [p.hit for p in passages if p.verdict == "cited"]
    answer, sources = "", []
    if cited:
        composed = compose(question, cited)
        staff_only = {h.source for h in cited if h.audience == STAFF}
        answer = composed.text
        sources = [(c.label(), c.source in staff_only) for c in composed.citations]
    curated = service.curated.match(question, count=False) if service.curated is not None else None
    return Asked(question, audience, answer, sources, passages, curated)


def add_routes(router: APIRouter, console) -> None:
    @router.get("/ask")
    async def ask_page(request: Request, q: str = "", as_resident: str = "",
                       visit: Visit = Depends(console.visit)) -> Response:
        question = " ".join(q.split())[:MAX_QUESTION]
        audience = PUBLIC if as_resident else STAFF
        result, error = None, ""
        if question:
            try:
                result = await run_in_threadpool(ask, console.service, question, audience)
            except IndexUnavailable:
                error = "知识库暂时不可用（可能正在首次导入），请稍后再试。"
        return render(request, "ask.html", title="问答", question=question, as_resident=bool(as_resident),
                      result=result, verdicts=VERDICTS, error=error,
                      min_relevance=console.service.knowledge.retriever.params.min_relevance)
