"""An OpenAI-compatible chat-completions stand-in on 127.0.0.1, for running langchain's real client in tests.

Point a client at ``standin.base_url`` (``http://127.0.0.1:PORT/v1``). POST
/v1/chat/completions answers with what the test scripted:

- ``reply``: the assistant's text, or a function of the request body returning it;
- ``status``: an HTTP status to answer with instead (500, 429 …), with an OpenAI-style error body;
- ``delay``: seconds to wait before answering (woken early when the stand-in stops);
- ``trickle``: send the headers at once, then one byte of the body every ``trickle`` seconds;
- ``raw``: bytes to send as the body as they are (a malformed reply).

Every request is recorded in ``requests`` (path, headers, parsed JSON body), so a
test can read the prompt that was sent. Any other path answers 404 and is
recorded in ``unknown``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    def content(self, role: str) -> str:
        return "\n".join(m.get("content", "") for m in self.messages if m.get("role") == role)


class OpenAIStandIn:
    def __init__(self, reply: str | Callable[[dict], str] = "好的[1]"):
        self.reply = reply
        self.status = 200
        self.delay = 0.0
        self.trickle = 0.0
        self.raw: bytes | None = None
        self.headers: dict[str, str] = {}
        self.requests: list[Request] = []
        self.unknown: list[str] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "OpenAIStandIn":
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="openai-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "OpenAIStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- answering -------------------------------------------------------------
    def _answer(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        if self.delay and self._stopping.wait(self.delay):
            return
        if self.raw is not None:
            return _send(handler, 200, self.raw, self.headers)
        if self.status != 200:
            error = {"error": {"message": f"stand-in error {self.status}", "type": "server_error", "code": None}}
            return _send(handler, self.status, json.dumps(error).encode(), self.headers)
        text = self.reply(body) if callable(self.reply) else self.reply
        payload = json.dumps(_completion(body.get("model", ""), text), ensure_ascii=False).encode()
        if self.trickle:
            return self._send_slowly(handler, payload)
        _send(handler, 200, payload, self.headers)

    def _send_slowly(self, handler: BaseHTTPRequestHandler, payload: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        for i in range(len(payload)):
            if self._stopping.wait(self.trickle):
                return
            handler.wfile.write(payload[i:i + 1])
            handler.wfile.flush()


def _completion(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (timeout) closes its socket: expected, not a test failure


def _handler_for(standin: OpenAIStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                standin.unknown.append(self.path)
                return _send(self, 404, b'{"error": {"message": "unknown path"}}', {})
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            standin.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            try:
                standin._answer(self, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped waiting

        def log_message(self, format, *args) -> None:
            pass

    return Handler
