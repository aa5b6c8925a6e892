"""An AnswerWriter backed by a langchain chat model; None (the extractive answer) whenever in doubt.

Every way the model can fail the resident ends in None, and the core then sends
the extractive answer it already has:
- no reply within the budget: the call runs in a worker thread and the writer
  stops waiting at ``timeout_seconds`` of wall-clock time, whatever the socket
  does (a server that accepts and never answers, or trickles bytes, cannot hold
  the resident); the HTTP client's own timeout ends the abandoned call soon after;
- HTTP errors (500, 429, 401), refused connections, malformed replies: any
  exception of the call;
- an answer that fails :func:`bot.llm.checks.problems`, or says "文件里没有写".

After a failed call the endpoint is left alone for ``cooldown_seconds`` (longer if
a 429 asks for it with Retry-After), so while it is down each resident gets the
extractive answer at once instead of waiting out a budget per message.

"文件里没有写" also falls back rather than being passed on: the core only calls
the writer when the retriever found passages above its relevance threshold, and
the extractive answer quotes them with their sources, so the resident sees what
the documents do say rather than a bare refusal the model may have got wrong.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Iterable, Sequence

from bot.core.ports import Hit
from bot.llm.checks import NOT_COVERED, Passage, leaks, problems, says_not_covered, strip_citations, strip_thinking
from bot.llm.prompt import REWRITE_SYSTEM_PROMPT, SYSTEM_PROMPT, answer_messages, rewrite_messages
from bot.llm.redact import redact_passage, redact_resident_text

log = logging.getLogger(__name__)

REWRITE_SHARE = 0.5  # a follow-up spends at most 1.5 budgets: half on the rewrite, one on the answer
MAX_REWRITE_CHARS = 80
_LABEL = re.compile(r"^(改写后的问题|改写后|完整问题|问题)\s*[:：]\s*")
_QUOTES = "\"'“”‘’「」『』"


class LangchainWriter:
    """Writes answers with any langchain chat model (ChatOpenAI in production, see bot.llm.build_writer)."""

    def __init__(self, model, timeout_seconds: float, max_passages: int = 4, secrets: Iterable[str] = (),
                 cooldown_seconds: float = 30.0, workers: int = 8, clock: Callable[[], float] = time.monotonic):
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.max_passages = max_passages
        self.cooldown_seconds = cooldown_seconds
        # what an answer must never repeat: the rules, and the configuration's secrets
        self.secrets = [SYSTEM_PROMPT, REWRITE_SYSTEM_PROMPT, *(s for s in secrets if s)]
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
        self._lock = threading.Lock()
        self._resting_until = 0.0

    # -- the AnswerWriter port ------------------------------------------------
    def write(self, question: str, hits: Sequence[Hit], extractive: str) -> str | None:
        """Return a checked answer written from hits, without [n] markers; None to use the extractive one."""
        if not hits or not question.strip():
            return None
        passages = [Passage(i + 1, redact_passage(h.title), redact_passage(h.section), h.date, redact_passage(h.text))
                    for i, h in enumerate(hits[: self.max_passages])]
        text = self._call(answer_messages(redact_resident_text(question), passages), self.timeout_seconds)
        if text is None:
            return None
        if says_not_covered(text):
            log.info("the model found no answer in the passages; extractive answer used")
            return None
        found = problems(text, passages, self.secrets)
        if found:
            log.info("model answer rejected (%s); extractive answer used", "; ".join(found))
            return None
        return strip_citations(text)

    def rewrite(self, follow_up: str, topic: str, previous_question: str) -> str | None:
        """Return the follow-up as one standalone question line, or None to keep the core's own query."""
        if not follow_up.strip():
            return None
        messages = rewrite_messages(redact_resident_text(follow_up), redact_passage(topic),
                                    redact_resident_text(previous_question))
        text = self._call(messages, self.timeout_seconds * REWRITE_SHARE)
        if text is None:
            return None
        line = _LABEL.sub("", text.strip()).strip(_QUOTES + " ")
        if not line or "\n" in line or len(line) > MAX_REWRITE_CHARS or NOT_COVERED in line \
                or re.search(r"[<＜]", line) or leaks(line, self.secrets):
            log.info("model rewrite rejected; the core's own query used")
            return None
        return line

    def close(self) -> None:
        """Stop waiting for calls in flight; the HTTP timeout ends them."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- calling the model -----------------------------------------------------
    def _call(self, messages: list[tuple[str, str]], budget: float) -> str | None:
        if self._clock() < self._resting_until:
            return None
        from langchain_core.messages import HumanMessage, SystemMessage

        as_messages = [SystemMessage(text) if role == "system" else HumanMessage(text) for role, text in messages]
        started = self._clock()
        try:
            future = self._pool.submit(self.model.invoke, as_messages)
        except RuntimeError:  # closed
            return None
        try:
            reply = future.result(timeout=budget)
        except FutureTimeout:
            future.cancel()
            self._rest(self.cooldown_seconds, f"no reply within {budget:.1f}s")
            return None
        except Exception as exc:  # any failure of the endpoint or the client is a fallback, never an error
            self._rest(_retry_after(exc) or self.cooldown_seconds, _describe(exc))
            return None
        text = _text_of(reply)
        log.debug("model replied in %.2fs (%d chars)", self._clock() - started, len(text))
        return strip_thinking(text).replace("**", "")

    def _rest(self, seconds: float, reason: str) -> None:
        with self._lock:
            self._resting_until = max(self._resting_until, self._clock() + seconds)
        log.warning("language model unavailable (%s); extractive answers for the next %.0fs", reason, seconds)


def _text_of(reply) -> str:
    content = getattr(reply, "content", reply)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
    return ""


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}" + (f" HTTP {status}" if status else "")


def _retry_after(exc: Exception) -> float | None:
    """Seconds a 429 asks us to wait (Retry-After), capped at five minutes."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return min(float(value), 300.0) if value else None
    except ValueError:
        return None
