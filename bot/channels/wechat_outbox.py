"""What a failed WeChat API send means for outbox delivery (see outbox_delivery.py)."""

from __future__ import annotations

from bot.channels.outbox_delivery import PAUSE, SKIP, OutboxDelivery, OutboxLike
from bot.channels.wechat_api import UNDELIVERABLE, secret_filter
from bot.channels.wechat_errors import WeChatApiError


def classify(exc: Exception) -> str | None:
    if isinstance(exc, WeChatApiError):
        # this user cannot be reached now (e.g. past the 48-hour window); the others may be
        return SKIP if exc.errcode in UNDELIVERABLE else PAUSE
    return None


def wechat_delivery(outbox: OutboxLike, channel: str, send, batch: int = 20, interval: float = 2.0) -> OutboxDelivery:
    return OutboxDelivery(outbox, channel, send, classify, secret_filter.redact, batch, interval)
