"""Deliver a channel's outbox rows (messages to people other than the current sender), for any channel.

Each channel says what a failed send means: SKIP (this person cannot be reached
now; go on with the others), PAUSE (the service or the network is unwell; try
again next round), or WAIT (asked to slow down: pause without counting it
against the row). Rows are marked sent one by one, so a crash re-sends one
message at most and loses none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Protocol

from bot.core.messages import Reply

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 5  # failed deliveries of one row before this process stops trying it
SKIP, PAUSE, WAIT = "skip", "pause", "wait"
# how long a claimed row stays this process's: longer than a batch of sends (each waits 30 s at most)
LEASE_SECONDS = 120.0


class OutboxLike(Protocol):
    def pending(self, channel: str, user_id: str | None = None, limit: int = 100) -> list: ...
    def mark_sent(self, ids: list[int]) -> None: ...


class OutboxDelivery:
    def __init__(self, outbox: OutboxLike, channel: str, send: Callable[[str, Reply], Awaitable[None]],
                 classify: Callable[[Exception], str | None], redact: Callable[[str], str] = str,
                 batch: int = 20, interval: float = 2.0, wait_seconds: Callable[[Exception], float] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.outbox = outbox
        self.channel = channel
        self.send = send
        self.classify = classify  # None: not a delivery failure, let it propagate
        self.redact = redact
        self.batch = batch
        self.interval = interval
        self._failures: dict[int, int] = {}
        self.wait_seconds = wait_seconds  # how long a WAIT asks for (e.g. Telegram's retry_after)
        self.clock = clock
        self._resume_at = 0.0

    async def deliver(self) -> int:
        """Send the pending rows, marking each sent at once; return how many were sent."""
        if self.clock() < self._resume_at:
            return 0  # asked to slow down: not one call before the time is up
        skipped = {i for i, n in self._failures.items() if n >= GIVE_UP_AFTER}
        claim = getattr(self.outbox, "claim", None)
        if claim is not None:  # rows leased to this process: another replica never sends them too
            rows = await asyncio.to_thread(claim, self.channel, self.batch + len(skipped), LEASE_SECONDS)
        else:
            rows = await asyncio.to_thread(self.outbox.pending, self.channel, None, self.batch + len(skipped))
        sent = 0
        unsent = [r.id for r in rows]
        try:
            for row in (r for r in rows if r.id not in skipped):
                try:
                    await self.send(row.user_id, row.reply)
                except Exception as exc:
                    verdict = self.classify(exc)
                    if verdict is None:
                        raise
                    if verdict == WAIT and self.wait_seconds is not None:
                        self._resume_at = self.clock() + self.wait_seconds(exc)
                    if verdict != WAIT:
                        await self._failed(row.id, exc)
                    if verdict == SKIP:
                        continue
                    log.warning("%s outbox delivery paused: %s", self.channel, self.redact(str(exc)))
                    break
                await asyncio.to_thread(self.outbox.mark_sent, [row.id])
                unsent.remove(row.id)
                self._failures.pop(row.id, None)
                sent += 1
        finally:
            release = getattr(self.outbox, "release", None)
            if claim is not None and release is not None and unsent:
                # a claim is for sending now: what was not sent goes back at once, for the next round (here or
                # on another replica), instead of waiting out the lease
                await asyncio.to_thread(release, unsent)
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver()
            except Exception as exc:  # the database may be away for a moment; keep the loop alive
                log.error("%s outbox delivery failed: %s", self.channel, self.redact(repr(exc)))
            await asyncio.sleep(self.interval)

    async def _failed(self, row_id: int, exc: Exception) -> None:
        self._failures[row_id] = self._failures.get(row_id, 0) + 1
        log.warning("%s outbox row %s not delivered (attempt %s): %s", self.channel, row_id,
                    self._failures[row_id], self.redact(str(exc)))
        mark_failed = getattr(self.outbox, "mark_failed", None)  # SqlOutbox counts attempts
        if mark_failed is not None:
            await asyncio.to_thread(mark_failed, row_id)
