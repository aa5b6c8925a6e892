"""Deliver the outbox rows of the WeChat channel (e.g. "your ticket was resolved, please rate") via the message API."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

from bot.channels.wechat_api import UNDELIVERABLE, secret_filter
from bot.channels.wechat_errors import WeChatApiError
from bot.core.messages import Reply

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 5  # failed deliveries of one row before this process stops trying it


class OutboxLike(Protocol):
    def pending(self, channel: str, user_id: str | None = None, limit: int = 100) -> list: ...
    def mark_sent(self, ids: list[int]) -> None: ...


class OutboxDelivery:
    def __init__(self, outbox: OutboxLike, channel: str, send: Callable[[str, Reply], Awaitable[None]],
                 batch: int = 20, interval: float = 2.0):
        self.outbox = outbox
        self.channel = channel
        self.send = send
        self.batch = batch
        self.interval = interval
        self._failures: dict[int, int] = {}

    async def deliver(self) -> int:
        """Send the pending rows, marking each sent at once; return how many were sent."""
        skipped = {i for i, n in self._failures.items() if n >= GIVE_UP_AFTER}
        rows = await asyncio.to_thread(self.outbox.pending, self.channel, None, self.batch + len(skipped))
        sent = 0
        for row in (r for r in rows if r.id not in skipped):
            try:
                await self.send(row.user_id, row.reply)
            except WeChatApiError as exc:
                await self._failed(row.id, exc)
                if exc.errcode in UNDELIVERABLE:  # this user cannot be reached now; the others may be
                    continue
                break  # the API or the network is unwell: try again next round
            await asyncio.to_thread(self.outbox.mark_sent, [row.id])  # one by one: a crash re-sends one at most
            self._failures.pop(row.id, None)
            sent += 1
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver()
            except Exception as exc:  # the database may be away for a moment; keep the loop alive
                log.error("wechat outbox delivery failed: %s", secret_filter.redact(repr(exc)))
            await asyncio.sleep(self.interval)

    async def _failed(self, row_id: int, exc: WeChatApiError) -> None:
        self._failures[row_id] = self._failures.get(row_id, 0) + 1
        log.warning("wechat outbox row %s not delivered (attempt %s): %s", row_id, self._failures[row_id], exc)
        mark_failed = getattr(self.outbox, "mark_failed", None)  # SqlOutbox counts attempts
        if mark_failed is not None:
            await asyncio.to_thread(mark_failed, row_id)
