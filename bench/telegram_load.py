"""Residents over Telegram: the real service (python-telegram-bot, long polling) against a Bot API stand-in.

Used by bench/reliability.py. The stand-in (tests/e2e/botapi_standin.py) runs
in this process; residents push updates into it and wait for the bot's
sendMessage calls to their chat. Latency is from the update being offered to
the first message the bot sends back (what the resident sees first). Three
residents in four send one message each as a new chat; the fourth walks through
whole reports by pressing the buttons the bot sent (one in five presses
"确认提交" twice), and the ticket number the bot shows is compared with the database.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import defaultdict

from tests.e2e.botapi_standin import BotApiStandIn

TOKEN = "987654321:AAE-bench_load_token"
TICKET = re.compile(r"T\d{11}")
REPLY_TIMEOUT = 60.0
QUIET = 0.25  # a turn's replies are complete when nothing more arrived for this long (or buttons/a number came)
APOLOGY = "系统刚才出了点问题"


class IndexedBotApi(BotApiStandIn):
    """The stand-in, with each chat's messages indexed (the base class scans every call, too slow at 200 chats)."""

    def __init__(self, token: str = TOKEN):
        super().__init__(token, poll_cap=0.5)
        self.by_chat: dict[int, list[tuple[float, dict]]] = defaultdict(list)
        self._index_lock = threading.Lock()

    def _send_message(self, params: dict) -> dict:
        message = super()._send_message(params)
        with self._index_lock:
            self.by_chat[int(params["chat_id"])].append((time.monotonic(), message))
        return message

    def seen(self, chat: int) -> int:
        with self._index_lock:
            return len(self.by_chat.get(chat, ()))

    def since(self, chat: int, n: int) -> list[tuple[float, dict]]:
        with self._index_lock:
            return list(self.by_chat.get(chat, ())[n:])


def button_data(message: dict, label: str) -> str | None:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text") == label:
                return button.get("callback_data")
    return None


class TelegramResidents:
    def __init__(self, api: IndexedBotApi, load):
        self.api = api
        self.load = load  # bench.reliability.Load: latencies, errors, confirmed

    async def turn(self, chat: int, text: str | None = None, data: str | None = None,
                   whole: bool = False) -> list[dict]:
        """Send a text or press a button; return the messages the bot sent back (all of them when whole)."""
        before = self.api.seen(chat)
        offered = time.monotonic()
        if data is not None:
            self.api.push_callback(chat, data)
        else:
            self.api.push_text(chat, text or "")
        got = await self._wait(chat, before, offered + REPLY_TIMEOUT)
        if not got:
            self.load.errors += 1
            self.load.latencies.append(REPLY_TIMEOUT)
            return []
        self.load.latencies.append(got[0][0] - offered)
        if whole:
            while True:
                last = got[-1][1]
                if last.get("reply_markup") or TICKET.search(last.get("text", "")):
                    break
                await asyncio.sleep(QUIET)
                more = self.api.since(chat, before)
                if len(more) == len(got):
                    break
                got = more
        messages = [m for _, m in got]
        if any(APOLOGY in m.get("text", "") for m in messages):
            self.load.errors += 1
        return messages

    async def _wait(self, chat: int, before: int, deadline: float) -> list[tuple[float, dict]]:
        while time.monotonic() < deadline:
            got = self.api.since(chat, before)
            if got:
                return got
            await asyncio.sleep(0.01)
        return []

    async def report(self, chat: int, text: str, phone: str, double_tap: bool) -> None:
        messages = await self.turn(chat, text, whole=True)
        for _ in range(6):
            if not messages:
                return
            last = messages[-1]
            number = TICKET.search(last.get("text", ""))
            if number and ("已提交" in last["text"] or "已经反映过" in last["text"]):
                self.load.confirmed[str(chat)] = number.group(0)
                return
            confirm = button_data(last, "确认提交")
            when = button_data(last, "随时都可以")
            if confirm:
                if double_tap:
                    self.api.push_callback(chat, confirm)  # the first tap, unanswered yet, then the second
                messages = await self.turn(chat, data=confirm, whole=True)
            elif "电话" in last.get("text", ""):
                messages = await self.turn(chat, phone, whole=True)
            elif when:
                messages = await self.turn(chat, data=when, whole=True)
            else:
                messages = await self.turn(chat, "景村里3号楼2单元", whole=True)


def chat_id(level: int, worker: int, i: int) -> int:
    """Distinct per level, so a level's tickets are found by the prefix of user_id (see prefix())."""
    return int(f"7{level:03d}{worker:03d}{i:04d}")


def prefix(level: int) -> str:
    return f"7{level:03d}"


async def closed_loop(api: IndexedBotApi, load, pool: list[str], heating: str, seconds: float, sample) -> None:
    residents = TelegramResidents(api, load)
    stop_at = time.monotonic() + seconds

    async def worker(w: int) -> None:
        i = 0
        while time.monotonic() < stop_at and i < 9999:
            chat = chat_id(load.concurrency, w, i)
            n = w * 100_000 + i
            if w % 4 == 0:
                await residents.report(chat, heating.format(b=1 + n % 12, u=1 + n % 4), f"139{n:08d}",
                                       double_tap=i % 5 == 1)
            else:
                await residents.turn(chat, pool[(w * 7919 + i) % len(pool)])
            i += 1

    async def sampler() -> None:
        while True:
            sample()
            await asyncio.sleep(0.5)

    started = time.monotonic()
    watcher = asyncio.create_task(sampler())
    await asyncio.gather(*(worker(w) for w in range(load.concurrency)))
    watcher.cancel()
    load.elapsed = time.monotonic() - started
