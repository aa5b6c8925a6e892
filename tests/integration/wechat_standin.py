"""A stand-in for WeChat's message API on 127.0.0.1: access tokens and text messages, every call recorded.

Official accounts: GET /cgi-bin/token, POST /cgi-bin/message/custom/send.
WeCom: GET /cgi-bin/gettoken, POST /cgi-bin/message/send (agentid required).
Tokens are "TOKEN-1", "TOKEN-2", …; ``revoke_tokens()`` makes every token issued so
far answer errcode 40001, as WeChat does once another client fetched a new one.
``fail_next_sends(45015, …)`` queues error codes for the next message sends.
Any other path answers 404 and is recorded in ``unknown`` so that a test can fail on it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERRMSG = {40001: "invalid credential, access_token is invalid or not latest", 40013: "invalid appid",
          40125: "invalid appsecret", 45015: "response out of time limit or subscription is canceled",
          44002: "empty post data", 47001: "data format error", -1: "system error"}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: bytes = b""
    answer: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body.decode("utf-8"))


class WeChatApiStandIn:
    def __init__(self, app_id: str, secret: str, kind: str = "official", expires_in: int = 7200):
        self.app_id, self.secret, self.kind, self.expires_in = app_id, secret, kind, expires_in
        self.calls: list[Call] = []
        self.unknown: list[Call] = []
        self.valid_tokens: set[str] = set()
        self._failures: list[int] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- running -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "WeChatApiStandIn":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="wechat-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- steering and reading ------------------------------------------------
    def revoke_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def fail_next_sends(self, *errcodes: int) -> None:
        with self._lock:
            self._failures.extend(errcodes)

    def token_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path in ("/cgi-bin/token", "/cgi-bin/gettoken")]

    def send_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path in ("/cgi-bin/message/custom/send", "/cgi-bin/message/send")]

    def delivered(self, user_id: str | None = None) -> list[str]:
        """The texts the API accepted (errcode 0), in order, optionally to one user."""
        return [c.json["text"]["content"] for c in self.send_calls()
                if c.answer.get("errcode") == 0 and (user_id is None or c.json["touser"] == user_id)]

    async def wait_for_delivery(self, count: int = 1, user_id: str | None = None, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.delivered(user_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} message(s) expected, the API got {self.delivered(user_id)!r}")
            await asyncio.sleep(0.02)
        return self.delivered(user_id)

    # -- the API ---------------------------------------------------------------
    def handle(self, call: Call) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append(call)
            if (self.kind, call.method, call.path) in (("official", "GET", "/cgi-bin/token"),
                                                       ("wecom", "GET", "/cgi-bin/gettoken")):
                return 200, self._token(call.query)
            if (self.kind, call.method, call.path) in (("official", "POST", "/cgi-bin/message/custom/send"),
                                                       ("wecom", "POST", "/cgi-bin/message/send")):
                return 200, self._send(call)
            self.unknown.append(call)
            return 404, {"errcode": 404, "errmsg": "no such API in the stand-in"}

    def _token(self, query: dict[str, str]) -> dict[str, Any]:
        if self.kind == "wecom":
            if query.get("corpid") != self.app_id:
                return _error(40013)
            if query.get("corpsecret") != self.secret:
                return _error(40125)
        else:
            if query.get("grant_type") != "client_credential" or query.get("appid") != self.app_id:
                return _error(40013)
            if query.get("secret") != self.secret:
                return _error(40125)
        token = f"TOKEN-{next(self._numbers)}"
        self.valid_tokens.add(token)
        return {"access_token": token, "expires_in": self.expires_in} | ({"errcode": 0, "errmsg": "ok"}
                                                                        if self.kind == "wecom" else {})

    def _send(self, call: Call) -> dict[str, Any]:
        if call.query.get("access_token") not in self.valid_tokens:
            return _error(40001)
        try:
            data = call.json
        except ValueError:
            return _error(47001)
        if data.get("msgtype") != "text" or not data.get("touser") or not data.get("text", {}).get("content"):
            return _error(44002)
        if self.kind == "wecom" and not isinstance(data.get("agentid"), int):
            return _error(47001)
        if self._failures:
            return _error(self._failures.pop(0))
        return {"errcode": 0, "errmsg": "ok"}


def _error(code: int) -> dict[str, Any]:
    return {"errcode": code, "errmsg": ERRMSG.get(code, "error")}


def _handler_for(standin: WeChatApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _serve(self, body: bytes) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            call = Call(self.command, url.path, query, body)
            status, answer = standin.handle(call)
            call.answer = answer
            raw = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
