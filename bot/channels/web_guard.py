"""The web app's edge: security headers, Chinese error responses, and checks of what clients send."""

from __future__ import annotations

import json
import logging
import traceback
import unicodedata

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core import texts
from bot.core.privacy import mask

log = logging.getLogger("bot.channels.web")

MAX_USER_ID = 128
MAX_BUTTON = 200

# Scripts and styles only from our own files: a message that smuggles markup in cannot run anything.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
     b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

_STATUS_TEXT = {404: "没有这个页面或接口。", 405: "不支持这种请求方式。"}


class WebError(Exception):
    """A request the chat API refuses; the message is shown to the resident as is."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def log_failure(what: str, exc: BaseException) -> None:
    """Log an unexpected exception with its traceback, personal data masked."""
    # The masking log filter sees only the message, not the traceback, so the traceback is masked here.
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.error("%s\n%s", mask(what), mask(detail))


class SecurityHeaders:
    """Add the security headers to every response, including a last-resort 500 of our own."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # answered here so that even this response carries the headers
            log_failure(f"web request {scope.get('method')} {scope.get('path')} failed", exc)
            if not started:
                await error_response(500, texts.ERROR)(scope, receive, send_with_headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every refused request as JSON {"error": "..."} in Chinese."""

    @app.exception_handler(WebError)
    async def _web_error(request: Request, exc: WebError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = _STATUS_TEXT.get(exc.status_code, "请求没有成功。")
        return error_response(exc.status_code, message, dict(exc.headers or {}))


def describe_validation(errors) -> str:
    """One Chinese sentence for pydantic's first complaint about a request."""
    first = next(iter(errors), {})
    kind = first.get("type", "")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    field = loc[0] if loc else ""
    if kind.startswith("json"):
        return "请求内容不是有效的 JSON，请按 {\"user_id\": \"…\", \"text\": \"…\"} 的格式发送。"
    if kind == "missing":
        return f"缺少参数 {field}。"
    if kind in ("model_attributes_type", "dict_type"):
        return "请求内容应当是一个 JSON 对象。"
    if field:
        return f"参数 {field} 的格式不对，应当是文字。"
    return "请求格式不对。"


def check_user_id(user_id: str | None) -> str:
    """Return the user id, or raise WebError(400) when it is missing, too long or has control characters."""
    user_id = (user_id or "").strip()
    if not user_id:
        raise WebError(400, "缺少 user_id（用户标识），请刷新页面后再试。")
    if len(user_id) > MAX_USER_ID:
        raise WebError(400, f"user_id 太长了，最多 {MAX_USER_ID} 个字符。")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in user_id):
        raise WebError(400, "user_id 里不能有控制字符。")
    return user_id


def clean_text(text: str, limit: int) -> str:
    """Drop invisible control characters (newlines and tabs stay); refuse text over the limit with 413."""
    if len(text) > limit:
        raise WebError(413, f"消息太长了：最多 {limit} 个字，这条有 {len(text)} 个字。请分几条发送。")
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")


def check_button(button: str | None) -> str | None:
    if button is None or button == "":
        return None
    if len(button) > MAX_BUTTON or any(unicodedata.category(c) == "Cc" for c in button):
        raise WebError(400, "按钮数据不对，请刷新页面后重新操作。")
    return button


async def read_body(request: Request, limit_chars: int) -> bytes:
    """Read the body, refusing with 413 once it is surely longer than limit_chars characters."""
    # Escaped JSON spends at most 12 bytes on one character (a surrogate pair written as two \uXXXX).
    cap = limit_chars * 12 + 4096
    length = request.headers.get("content-length", "")
    too_long = WebError(413, f"消息太长了：最多 {limit_chars} 个字。请分几条发送。")
    if length.isdigit() and int(length) > cap:
        raise too_long
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_long
    return bytes(body)


def parse_json_object(raw: bytes) -> dict:
    """Decode a JSON object or raise WebError(400) in Chinese."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebError(400, "请求内容不是有效的 JSON，请按 {\"user_id\": \"…\", \"text\": \"…\"} 的格式发送。") from exc
    if not isinstance(data, dict):
        raise WebError(400, "请求内容应当是一个 JSON 对象。")
    return data
