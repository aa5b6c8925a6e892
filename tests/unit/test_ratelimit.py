"""The per-user rate limiter, driven by a fake clock."""

from __future__ import annotations

import pytest

from bot.channels.ratelimit import RateLimiter, Verdict


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_limiter(per_minute: int = 3, clock: FakeClock | None = None) -> tuple[RateLimiter, FakeClock]:
    clock = clock or FakeClock()
    return RateLimiter(per_minute, clock=clock), clock


def test_allows_up_to_the_limit_within_a_minute():
    limiter, _ = make_limiter(3)
    assert [limiter.allow("42") for _ in range(4)] == [True, True, True, False]


def test_warns_once_then_drops_the_rest_of_the_flood():
    limiter, clock = make_limiter(2)
    verdicts = []
    for _ in range(6):
        verdicts.append(limiter.check("42"))
        clock.advance(0.1)
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN, Verdict.DROP, Verdict.DROP, Verdict.DROP]


def test_allows_again_once_the_oldest_message_leaves_the_window():
    limiter, clock = make_limiter(2)
    limiter.check("42")
    clock.advance(30)
    limiter.check("42")
    assert limiter.check("42") is Verdict.WARN
    clock.advance(30)  # the first message is now a minute old
    assert limiter.check("42") is Verdict.ALLOW
    assert limiter.check("42") is Verdict.WARN  # a new flood is told again, once


def test_dropped_messages_do_not_lengthen_the_wait():
    limiter, clock = make_limiter(1)
    limiter.check("42")
    for _ in range(50):
        clock.advance(1)
        limiter.check("42")
    clock.advance(10)  # 60 s after the one accepted message
    assert limiter.allow("42")


def test_says_how_long_to_wait_without_counting_the_question():
    limiter, clock = make_limiter(2)
    assert limiter.retry_after("42") == 0
    limiter.check("42")
    clock.advance(20)
    limiter.check("42")
    clock.advance(5)
    assert limiter.retry_after("42") == pytest.approx(35)
    assert limiter.retry_after("42") == pytest.approx(35)
    clock.advance(35)
    assert limiter.retry_after("42") == 0 and limiter.allow("42")


def test_keeps_users_apart():
    limiter, _ = make_limiter(1)
    assert limiter.allow("王阿姨")
    assert not limiter.allow("王阿姨")
    assert limiter.allow("李大爷")


def test_forgets_users_who_have_gone_quiet():
    limiter, clock = make_limiter(5)
    for user in range(2000):
        limiter.check(str(user))
    clock.advance(61)
    for _ in range(2048):
        limiter.check("still-here")
    assert len(limiter) == 1


def test_refuses_a_limit_below_one():
    with pytest.raises(ValueError):
        RateLimiter(0)
