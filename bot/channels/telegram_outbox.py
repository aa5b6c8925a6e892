"""Deliver the outbox rows of the Telegram channel: messages to people other than the current sender."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.channels.telegram_logs import redactor
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
            except (Forbidden, BadRequest) as exc:  # blocked by the user, or no such chat: retrying soon will not help
                await self._failed(row.id, exc)
                continue
            except TelegramError as exc:  # flood control or the network: try the rest next round
                log.warning("outbox delivery paused: %s", redactor.redact(str(exc)))
                if not isinstance(exc, RetryAfter):
                    await self._failed(row.id, exc)
                break
            await asyncio.to_thread(self.outbox.mark_sent, [row.id])  # one by one: a crash re-sends one message at most
            self._failures.pop(row.id, None)
            sent += 1
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver()
            except Exception as exc:  # the database may be away for a moment; keep the loop alive
                log.error("outbox delivery failed: %s", redactor.redact(repr(exc)))
            await asyncio.sleep(self.interval)

    async def _failed(self, row_id: int, exc: Exception) -> None:
        self._failures[row_id] = self._failures.get(row_id, 0) + 1
        log.warning("outbox row %s not delivered (attempt %s): %s", row_id, self._failures[row_id],
                    redactor.redact(str(exc)))
        mark_failed = getattr(self.outbox, "mark_failed", None)  # SqlOutbox counts attempts
        if mark_failed is not None:
            await asyncio.to_thread(mark_failed, row_id)
