"""How many messages this process is handling now, counted across channels.

Past the limit a channel refuses a message at once (the web API and Telegram's webhook answer
503: the page, the load balancer and Telegram send it again, maybe to another replica) instead
of queueing it behind the others until every resident waits. One gate for all channels, so the
limit bounds the process's work, not each channel's share of it. Used on the event loop only:
no lock is needed.
"""

from __future__ import annotations


class InFlight:
    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def enter(self) -> bool:
        """Take a place; False when the process is saturated (the message must be refused, not handled)."""
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1
