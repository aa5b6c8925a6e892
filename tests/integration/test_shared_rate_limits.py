"""Rate limits shared by replicas through Redis (127.0.0.1:6379, as CI runs it): a flood split over replicas
is counted once."""

from __future__ import annotations

import secrets

import pytest

from bot.channels.ratelimit import RateLimiter, RedisRateLimiter, Verdict, build_limiter

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS} (CI starts it; run redis-server locally)")
    yield client
    client.close()


def test_two_replicas_count_one_residents_messages_together(redis_client):
    prefix = f"test-{secrets.token_hex(4)}"
    now = [1000.0]
    replica_a = RedisRateLimiter(redis_client, 3, prefix, clock=lambda: now[0])
    replica_b = RedisRateLimiter(redis_client, 3, prefix, clock=lambda: now[0])

    verdicts = [replica_a.check("u1"), replica_b.check("u1"), replica_a.check("u1"), replica_b.check("u1"),
                replica_a.check("u1"), replica_b.check("u2")]
    now[0] += 61  # the window has passed
    later = replica_b.check("u1")

    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.ALLOW, Verdict.WARN, Verdict.DROP, Verdict.ALLOW]
    assert later is Verdict.ALLOW
    redis_client.delete(*redis_client.keys(f"{prefix}:*"))


def test_without_a_redis_url_each_process_counts_alone(redis_client):
    assert isinstance(build_limiter(5, "web", ""), RateLimiter)
    assert isinstance(build_limiter(5, "web", REDIS), RedisRateLimiter)
