"""A small Telegram Bot API stand-in on 127.0.0.1, for running the real python-telegram-bot in tests.

Point the bot at it with ``base_url=standin.base_url`` (``http://127.0.0.1:PORT/bot{token}``).
It implements the methods our channel uses, records every call, serves pushed updates
through getUpdates (long polling, capped at ``poll_cap`` seconds), and answers any other
method with 404 while recording it in ``unknown`` so that the test fails. Chats in
``blocked`` get 403 "bot was blocked by the user" from sendMessage, as Telegram answers.
python-telegram-bot posts form-encoded bodies whose structured values are JSON strings;
JSON bodies are accepted too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


class ApiError(Exception):
    """An error the real Bot API answers with, e.g. 403 "bot was blocked by the user"."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    result: Any = None
    at: float = field(default_factory=time.monotonic)


class BotApiStandIn:
    def __init__(self, token: str, poll_cap: float = 0.5):
        self.token = token
        self.poll_cap = poll_cap
        self.bot_user = {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "数字社工",
                         "username": "hexi_shegong_bot", "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self._calls: list[Call] = []
        self.unknown: list[Call] = []
        self._updates: list[dict] = []
        self._cond = threading.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._closing = False
        self.blocked: set[int] = set()  # chats whose user blocked the bot: sendMessage answers 403
        self._server: ThreadingHTTPServer | None = None
        self._methods: dict[str, Callable[[dict], Any]] = {
            "getme": lambda p: self.bot_user,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "answercallbackquery": lambda p: True,
            "sendchataction": lambda p: True,
            "getfile": lambda p: {"file_id": p["file_id"], "file_unique_id": "u" + p["file_id"], "file_size": 2048,
                                  "file_path": f"photos/{p['file_id']}.jpg"},
            "deletewebhook": lambda p: True,
            "setwebhook": lambda p: True,
            "setmycommands": lambda p: True,
            "getmycommands": lambda p: [],
        }

    # -- running -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot{{token}}"

    def start(self, port: int = 0) -> "BotApiStandIn":
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="botapi-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- what the bot did ------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._calls)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def messages_to(self, chat_id: int) -> list[Call]:
        """The messages the bot sent to chat_id (refused ones excluded)."""
        return [c for c in self.calls_of("sendMessage")
                if str(c.params.get("chat_id")) == str(chat_id) and not isinstance(c.result, ApiError)]

    def messages_sent(self) -> list[Call]:
        return [c for c in self.calls_of("sendMessage") if not isinstance(c.result, ApiError)]

    def texts_to(self, chat_id: int) -> list[str]:
        return [c.params["text"] for c in self.messages_to(chat_id)]

    async def wait_for(self, predicate: Callable[[list[Call]], Any], timeout: float = 5.0) -> Any:
        """Wait until predicate(calls) is truthy and return its value; fail with the calls seen."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.calls)
            if value:
                return value
            if time.monotonic() > deadline:
                seen = "\n".join(f"  {c.method} {c.params}" for c in self.calls)
                raise AssertionError(f"timed out after {timeout}s; calls so far:\n{seen}")
            await asyncio.sleep(0.02)

    async def wait_for_text(self, chat_id: int, needle: str, timeout: float = 5.0) -> Call:
        """Wait for a message to chat_id containing needle and return its sendMessage call."""
        return await self.wait_for(
            lambda calls: next((c for c in reversed(self.messages_to(chat_id)) if needle in c.params["text"]), None),
            timeout)

    # -- what users do -----------------------------------------------------------
    def push(self, update: dict) -> dict:
        update = {"update_id": next(self._update_ids), **update}  # an update_id given in update wins
        with self._cond:
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def push_text(self, user_id: int, text: str, first_name: str = "王阿姨") -> dict:
        return self.push(self.text_update(user_id, text, first_name))

    def text_update(self, user_id: int, text: str, first_name: str = "王阿姨") -> dict:
        """An update carrying a text message (commands get their bot_command entity), not queued."""
        message = self._user_message(user_id, first_name, text=text)
        if text.startswith("/"):
            command = text.split()[0]
            length = len(command.encode("utf-16-le")) // 2  # entity offsets count UTF-16 units
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": next(self._update_ids), "message": message}

    def push_photo(self, user_id: int, caption: str = "", first_name: str = "王阿姨") -> dict:
        sizes = [{"file_id": f"photo-{w}", "file_unique_id": f"p{w}", "width": w, "height": w * 3 // 4,
                  "file_size": w * 40} for w in (90, 1280, 320)]
        extra = {"caption": caption} if caption else {}
        return self.push({"message": self._user_message(user_id, first_name, photo=sizes, **extra)})

    def push_sticker(self, user_id: int, first_name: str = "王阿姨") -> dict:
        sticker = {"file_id": "sticker-1", "file_unique_id": "s1", "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "type": "regular", "emoji": "👍"}
        return self.push({"message": self._user_message(user_id, first_name, sticker=sticker)})

    def push_callback(self, user_id: int, data: str, first_name: str = "王阿姨") -> dict:
        """Press the button carrying `data` on the latest message to user_id that shows it."""
        message = next((c.result for c in reversed(self.messages_to(user_id))
                        if data in _callback_data(c.params.get("reply_markup"))), None)
        if message is None:
            raise AssertionError(f"no message to {user_id} has a button with callback_data {data!r}")
        query = {"id": str(next(self._update_ids)), "from": _user(user_id, first_name),
                 "chat_instance": f"ci-{user_id}", "data": data, "message": message}
        return self.push({"callback_query": query})

    def _user_message(self, user_id: int, first_name: str, **content) -> dict:
        return {"message_id": next(self._message_ids), "date": int(time.time()), "from": _user(user_id, first_name),
                "chat": {"id": user_id, "type": "private", "first_name": first_name}, **content}

    # -- methods -------------------------------------------------------------------
    def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), self.poll_cap)
        deadline = time.monotonic() + wait
        with self._cond:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]  # the offset confirms older ones
            while not self._updates and not self._closing and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return self._updates[: int(params.get("limit") or 100)]

    def _send_message(self, params: dict) -> dict:
        if int(params["chat_id"]) in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "from": self.bot_user,
                   "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params["text"]}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _edit_message_text(self, params: dict) -> dict:
        return {"message_id": int(params["message_id"]), "date": int(time.time()), "edit_date": int(time.time()),
                "from": self.bot_user, "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params["text"]}

    def _handle(self, path: str, params: dict) -> tuple[int, dict]:
        prefix = f"/bot{self.token}/"
        method = path[len(prefix):] if path.startswith(prefix) else path
        handler = self._methods.get(method.lower()) if path.startswith(prefix) else None
        call = Call(method, params)
        if handler is None:
            with self._cond:
                self.unknown.append(call)
                self._calls.append(call)
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        try:
            call.result = handler(params)
        except ApiError as exc:
            call.result = exc
            with self._cond:
                self._calls.append(call)
            return exc.code, {"ok": False, "error_code": exc.code, "description": exc.description}
        with self._cond:
            self._calls.append(call)
        return 200, {"ok": True, "result": call.result}


def _user(user_id: int, first_name: str) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "zh-hans"}


def _callback_data(markup: Any) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [b.get("callback_data") for row in rows for b in row]


_JSON_PARAMS = {"reply_markup", "allowed_updates", "commands", "entities", "link_preview_options", "reply_parameters",
                "scope"}


def _decode(name: str, value: str) -> Any:
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _handler_for(standin: BotApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/_sent":  # for a process outside (bench/cluster.py): what was sent
                self._send(200, [{"chat_id": str(c.params.get("chat_id")), "text": c.params.get("text", "")}
                                 for c in standin.messages_sent()])
                return
            self._answer(urlsplit(self.path).query)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "json" in (self.headers.get("Content-Type") or ""):
                self._answer(None, json.loads(body or b"{}"))
            else:
                self._answer(body.decode("utf-8"))

        def _answer(self, form: str | None, params: dict | None = None) -> None:
            if params is None:
                params = {k: _decode(k, v[0]) for k, v in parse_qs(form or "", keep_blank_values=True).items()}
            self._send(*standin._handle(urlsplit(self.path).path, params))

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the bot gave up a long poll while stopping
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


def main() -> None:
    """Serve on a fixed port until killed (scripts/cluster.sh): GET /_sent lists the messages the bot sent."""
    import argparse

    parser = argparse.ArgumentParser(description="A Telegram Bot API stand-in on 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    BotApiStandIn(args.token).start(args.port)
    threading.Event().wait()


if __name__ == "__main__":
    main()
