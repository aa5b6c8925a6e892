"""A Bot API stand-in that misbehaves the way Telegram does under load: 429 with retry_after, 5xx, slow answers.

Extends tests/e2e/botapi_standin.py (unchanged) by overriding its request handling
for sendMessage only; every attempt, failed or not, is recorded, so a test can count
how often the bot tried and how many copies a person really received.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from tests.e2e.botapi_standin import ApiError, BotApiStandIn, Call


@dataclass
class Hang:
    seconds: float
    deliver: bool  # True: the message arrives, only the answer is late; False: it is lost


class FlakyBotApi(BotApiStandIn):
    def __init__(self, token: str, poll_cap: float = 0.5):
        super().__init__(token, poll_cap)
        self._faults: list[int | Hang] = []
        self._flood_until = 0.0
        self._fault_lock = threading.Lock()
        self.attempts: list[tuple[float, str, int]] = []  # (monotonic time, chat id, HTTP status answered)

    # -- steering ----------------------------------------------------------------------------------
    def flood(self, seconds: float) -> None:
        """Answer every sendMessage with 429 and the remaining retry_after for this many seconds."""
        with self._fault_lock:
            self._flood_until = time.monotonic() + seconds

    def fail_next(self, *faults: int | Hang) -> None:
        """The next sendMessage calls answer these HTTP statuses (502, 500 …) or hang (Hang)."""
        with self._fault_lock:
            self._faults.extend(faults)

    # -- reading -----------------------------------------------------------------------------------
    def attempts_to(self, chat_id: int | str) -> list[tuple[float, int]]:
        """(when the request arrived, the status it got) of every sendMessage to one chat, in arrival order."""
        return sorted((at, status) for at, chat, status in self.attempts if chat == str(chat_id))

    def delivered(self, chat_id: int | str, needle: str = "") -> list[str]:
        return [t for t in self.texts_to(int(chat_id)) if needle in t]

    # -- the API -----------------------------------------------------------------------------------
    def _handle(self, path: str, params: dict) -> tuple[int, dict]:
        if not path.lower().endswith("/sendmessage"):
            return super()._handle(path, params)
        chat = str(params.get("chat_id"))
        arrived = time.monotonic()
        with self._fault_lock:
            wait = self._flood_until - time.monotonic()
            fault = self._faults.pop(0) if self._faults and wait <= 0 else None
        if wait > 0:
            return self._refuse(arrived, chat, params, 429, f"Too Many Requests: retry after {math.ceil(wait)}",
                                {"retry_after": math.ceil(wait)})
        if isinstance(fault, int):
            return self._refuse(arrived, chat, params, fault, {500: "Internal Server Error", 502: "Bad Gateway",
                                                               503: "Service Unavailable"}.get(fault, "Error"))
        if isinstance(fault, Hang):
            time.sleep(fault.seconds)
            if not fault.deliver:
                return self._refuse(arrived, chat, params, 504, "Gateway Timeout")
        status, payload = super()._handle(path, params)
        self.attempts.append((arrived, chat, status))
        return status, payload

    def _refuse(self, arrived: float, chat: str, params: dict, status: int, description: str,
                parameters: dict | None = None) -> tuple[int, dict]:
        call = Call("sendMessage", params, result=ApiError(status, description))
        with self._cond:
            self._calls.append(call)
        self.attempts.append((arrived, chat, status))
        payload = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return status, payload
