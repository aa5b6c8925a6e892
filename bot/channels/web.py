"""The web channel: the residents' chat page and its JSON API, as one FastAPI app.

Routes:
    GET  /                          the chat page (static HTML, JS and CSS from bot/channels/static)
    POST /api/chat                  {"user_id", "text", "button"} -> {"replies": [Reply.to_dict(), ...]}
    GET  /api/messages?user_id=...  pending notifications of that web user -> {"replies": [{..., "id"}]}, marked sent
    GET  /healthz                   {"status": "ok", ...details from the health callable}

Refused requests answer {"error": "<Chinese sentence>"} with 400, 413, 429 or 500.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from bot.channels.load import InFlight
from bot.channels.ratelimit import SLOW_DOWN, RateLimiter
from bot.channels.web_guard import (SecurityHeaders, WebError, check_button, check_user_id, clean_text,
                                    describe_validation, error_response, install_error_handlers, log_failure,
                                    parse_json_object, read_body)
from bot.core import texts
from bot.core.messages import Incoming, Reply
from bot.settings import WebSettings

CHANNEL = "web"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_NO_STORE = {"Cache-Control": "no-store"}


class ChatHandler(Protocol):
    def handle(self, incoming: Incoming) -> list[Reply]: ...


class WebOutbox(Protocol):
    """The part of storage.outbox.SqlOutbox the web channel uses."""

    def pending(self, channel: str, user_id: str | None = None, limit: int = 100) -> list[Any]: ...

    def mark_sent(self, ids: list[int]) -> None: ...


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str = ""
    text: str | None = None  # null is accepted for a button press
    button: str | None = None


def create_web_app(conversation: ChatHandler, settings: WebSettings, outbox: WebOutbox | None = None,
                   extra_routes: Iterable[APIRouter | BaseRoute] | None = None,
                   health: Callable[[], dict[str, Any]] | None = None, limiter=None,
                   in_flight: InFlight | None = None) -> FastAPI:
    """Build the web app around a conversation; extra_routes (routers or routes) join the same app.
    in_flight: the process's gate shared with the other channels (its own, of web.max_in_flight, if none)."""
    app = FastAPI(title="数字社工", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    limiter = limiter or RateLimiter(settings.rate_limit_per_minute)  # or Redis's, shared by the replicas
    # The limiter cannot say when this key's oldest message leaves the window; the window is an honest bound.
    retry_after = str(math.ceil(limiter.window))
    in_flight = in_flight or InFlight(settings.max_in_flight)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "chat.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    @app.post("/api/chat")
    async def chat(request: Request) -> JSONResponse:
        limit = settings.max_message_chars
        try:
            body = ChatRequest.model_validate(parse_json_object(await read_body(request, limit)))
        except ValidationError as exc:
            raise WebError(400, describe_validation(exc.errors())) from exc
        user_id = check_user_id(body.user_id)
        text = clean_text(body.text or "", limit)
        button = check_button(body.button)
        if not limiter.allow(user_id):
            raise WebError(429, f"{SLOW_DOWN}每分钟最多 {settings.rate_limit_per_minute} 条。",
                           {"Retry-After": retry_after})
        incoming = Incoming(channel=CHANNEL, user_id=user_id, text=text, button=button,
                            kind="button" if button else "text")
        if not in_flight.enter():
            # saturated: shed the message now (nothing was handled, the page sends it again) rather than queue it
            # behind the others until every resident waits
            raise WebError(503, texts.BUSY, {"Retry-After": "2"})
        try:
            replies = await run_in_threadpool(conversation.handle, incoming)
        except Exception as exc:
            log_failure(f"web chat of {user_id} failed ({incoming.kind}, {len(text)} chars)", exc)
            return error_response(500, texts.ERROR)
        finally:
            in_flight.leave()
        return JSONResponse({"replies": [r.to_dict() for r in replies]}, headers=_NO_STORE)

    @app.get("/api/messages")
    async def messages(user_id: str) -> JSONResponse:
        user_id = check_user_id(user_id)
        if outbox is None:
            return JSONResponse({"replies": []}, headers=_NO_STORE)
        try:
            pending = await run_in_threadpool(_take_pending, outbox, user_id)
        except Exception as exc:
            log_failure(f"web outbox of {user_id} failed", exc)
            return error_response(500, texts.ERROR)
        return JSONResponse({"replies": pending}, headers=_NO_STORE)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status: dict[str, Any] = {"status": "ok"}
        if health is not None:
            try:
                status.update(await run_in_threadpool(health))
            except Exception as exc:
                log_failure("health check failed", exc)
                return JSONResponse({"status": "error", "error": type(exc).__name__}, status_code=503,
                                    headers=_NO_STORE)
        return JSONResponse(status, headers=_NO_STORE)

    for route in extra_routes or ():
        if isinstance(route, APIRouter):
            app.include_router(route)
        else:
            app.router.routes.append(route)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _take_pending(outbox: WebOutbox, user_id: str) -> list[dict]:
    """Return the user's undelivered notifications and mark them sent (the page de-duplicates by id)."""
    rows = outbox.pending(CHANNEL, user_id)
    outbox.mark_sent([row.id for row in rows])
    return [{**row.reply.to_dict(), "id": row.id} for row in rows]
