"""What a failed Telegram send means for outbox delivery (see outbox_delivery.py)."""

from __future__ import annotations

from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.channels.outbox_delivery import PAUSE, SKIP, WAIT, OutboxDelivery, OutboxLike
from bot.channels.telegram_logs import redactor


def classify(exc: Exception) -> str | None:
    if isinstance(exc, (Forbidden, BadRequest)):  # blocked by the user, or no such chat: retrying soon will not help
        return SKIP
    if isinstance(exc, RetryAfter):  # flood control: wait, it is not the row's fault
        return WAIT
    if isinstance(exc, TelegramError):  # the network or Telegram: try the rest next round
        return PAUSE
    return None


def retry_after_seconds(exc: Exception) -> float:
    """Seconds Telegram asked us to wait (RetryAfter.retry_after is a number or a timedelta)."""
    value = getattr(exc, "retry_after", None)
    if value is None:
        return 0.0
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


def telegram_delivery(outbox: OutboxLike, channel: str, send, batch: int = 20, interval: float = 2.0) -> OutboxDelivery:
    return OutboxDelivery(outbox, channel, send, classify, redactor.redact, batch, interval,
                          wait_seconds=retry_after_seconds)
