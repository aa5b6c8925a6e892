"""Remember the messages being answered, so that WeChat's retries never run the core twice.

WeChat waits five seconds for an answer and then sends the same message again,
three times in all. Each message becomes one Turn: the task computing its
answer, and how that answer leaves (passively as the HTTP response, or through
the message API). A retry finds the Turn by MsgId (events: sender + CreateTime)
and waits for the same task instead of starting another.

The cache lives in this process's memory. Several processes behind one callback
URL would need a shared store (a table in the database with the key as primary
key, claimed with INSERT … ON CONFLICT DO NOTHING), because WeChat may send a
retry to another process than the first attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

PASSIVE = "passive"
API = "api"


@dataclass
class Answer:
    parts: list[str]  # the text messages of the answer, in order


@dataclass
class Turn:
    expires: float
    task: asyncio.Task[Answer] | None = None  # set right after the Turn is created
    delivery: str | None = None  # None until decided: PASSIVE (in an HTTP response) or API
    rest_sent: bool = False  # parts after the first of a passive answer went out through the API


class TurnCache:
    """Turns by key, for `ttl` seconds, at most `max_turns` (the oldest go first)."""

    def __init__(self, ttl: float = 600.0, max_turns: int = 10000, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_turns, self.clock = ttl, max_turns, clock
        self._turns: OrderedDict[str, Turn] = OrderedDict()

    def get(self, key: str) -> Turn | None:
        self._expire()
        return self._turns.get(key)

    def add(self, key: str | None) -> Turn:
        """A new Turn, remembered under key (a message without one is not remembered)."""
        turn = Turn(self.clock() + self.ttl)
        if key is None:
            return turn
        self._turns[key] = turn
        while len(self._turns) > self.max_turns:
            self._turns.popitem(last=False)  # a flood; an evicted turn still finishes and delivers
        return turn

    def __len__(self) -> int:
        return len(self._turns)

    def _expire(self) -> None:
        now = self.clock()
        while self._turns:
            key, turn = next(iter(self._turns.items()))
            if turn.expires > now or (turn.task is not None and not turn.task.done()):
                break
            del self._turns[key]
