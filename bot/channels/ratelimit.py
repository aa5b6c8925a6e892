"""Per-user rate limiting for the channels: a sliding one-minute window of accepted messages per key.

Over the limit the first message is answered with SLOW_DOWN (Verdict.WARN) and the
rest are dropped unprocessed (Verdict.DROP) until the oldest accepted message leaves
the window, so a flood costs the core nothing. Dropped messages do not count, so a
flood does not lengthen the wait. Thread-safe, so the web channel can share it.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from typing import Callable

SLOW_DOWN = "您发得太快了，请稍等一会儿再发。"
_SWEEP_EVERY = 1024  # checks between sweeps of idle keys, so memory follows active users only


class Verdict(enum.Enum):
    ALLOW = "allow"  # process the message
    WARN = "warn"  # first message over the limit: tell the user once
    DROP = "drop"  # further messages over the limit: ignore silently


class RateLimiter:
    """Allow `per_minute` messages per key in any window of `window` seconds."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, window: float = 60.0):
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, not {per_minute}")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._accepted: dict[str, deque[float]] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._checks = 0

    def check(self, key: str) -> Verdict:
        """Count one message from key and say what to do with it."""
        now = self._clock()
        with self._lock:
            self._checks += 1
            if self._checks % _SWEEP_EVERY == 0:
                self._sweep(now)
            accepted = self._accepted.setdefault(key, deque())
            while accepted and now - accepted[0] >= self.window:
                accepted.popleft()
            if len(accepted) < self.per_minute:
                accepted.append(now)
                self._warned.discard(key)
                return Verdict.ALLOW
            if key in self._warned:
                return Verdict.DROP
            self._warned.add(key)
            return Verdict.WARN

    def allow(self, key: str) -> bool:
        """Count one message from key; True when it may be processed."""
        return self.check(key) is Verdict.ALLOW

    def retry_after(self, key: str) -> float:
        """Seconds until key may send again without being refused (0 when it may now); counts nothing."""
        now = self._clock()
        with self._lock:
            accepted = self._accepted.get(key)
            if not accepted or len(accepted) < self.per_minute:
                return 0.0
            return max(0.0, accepted[-self.per_minute] + self.window - now)

    def __len__(self) -> int:
        """Number of keys currently remembered."""
        with self._lock:
            return len(self._accepted)

    def _sweep(self, now: float) -> None:
        idle = [k for k, times in self._accepted.items() if not times or now - times[-1] >= self.window]
        for key in idle:
            del self._accepted[key]
            self._warned.discard(key)


# One sliding window per key in Redis, so every replica counts the same messages: the accepted messages are a
# sorted set scored by time; the "told once" flag a key with the window's lifetime. One script: atomic.
_CHECK = """
local key, warned = KEYS[1], KEYS[2]
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  redis.call('DEL', warned)
  return 'allow'
end
if redis.call('SET', warned, '1', 'NX', 'PX', math.ceil(window * 1000)) then
  return 'warn'
end
return 'drop'
"""


class RedisRateLimiter:
    """RateLimiter's sliding window kept in Redis, shared by the replicas; the same verdicts."""

    def __init__(self, client, per_minute: int, prefix: str, clock: Callable[[], float] = time.time,
                 window: float = 60.0):
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, not {per_minute}")
        self.client, self.per_minute, self.prefix, self._clock, self.window = client, per_minute, prefix, clock, window
        self._script = client.register_script(_CHECK)
        self._seq = 0
        self._seq_lock = threading.Lock()

    def check(self, key: str) -> Verdict:
        with self._seq_lock:
            self._seq += 1
            member = f"{self._clock():.6f}:{id(self)}:{self._seq}"  # unique: two messages in one instant both count
        verdict = self._script(keys=[f"{self.prefix}:rl:{key}", f"{self.prefix}:rw:{key}"],
                               args=[self._clock(), self.window, self.per_minute, member])
        return Verdict((verdict.decode() if isinstance(verdict, bytes) else verdict))

    def allow(self, key: str) -> bool:
        return self.check(key) is Verdict.ALLOW


def build_limiter(per_minute: int, channel: str, redis_url: str = "", clock: Callable[[], float] | None = None):
    """Redis's shared window when the cluster has a Redis (replicas), this process's own otherwise."""
    if not redis_url:
        return RateLimiter(per_minute, clock=clock or time.monotonic)
    import redis

    return RedisRateLimiter(redis.Redis.from_url(redis_url), per_minute, prefix=f"shegong:{channel}",
                            clock=clock or time.time)
