"""Prometheus metrics and readiness: what a district's IT sees of the service (prometheus-client).

- messages by channel and intent, the time to answer, "not covered" answers: counted as
  messages are handled (MeteredConversation wraps the conversation at the composition root);
- tickets by status, unassigned and overdue tickets, the outbox and journal backlog, the
  index generation: read from the database, the journal folder and the index at each scrape.

Each service has its own registry, so several services in one process (tests) never clash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from bot.core import texts

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NOT_COVERED = (texts.NOT_COVERED, texts.NOT_COVERED_BRIEF)


class ServiceMetrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter("shegong_messages_total", "Messages handled, by channel and the intent of the reply",
                                ["channel", "intent"], registry=self.registry)
        self.latency = Histogram("shegong_reply_seconds", "Time from a message to its replies, by channel",
                                 ["channel"], registry=self.registry,
                                 buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30))
        self.not_covered = Counter("shegong_not_covered_total", "Questions answered 'the documents do not cover it'",
                                   registry=self.registry)

    def observe(self, channel: str, replies: list, seconds: float) -> None:
        intent = next((r.intent for r in reversed(replies) if getattr(r, "intent", "")), "") or "none"
        self.messages.labels(channel, intent).inc()
        self.latency.labels(channel).observe(seconds)
        if any(r.text.startswith(_NOT_COVERED) for r in replies):
            self.not_covered.inc()

    def expose(self) -> bytes:
        return generate_latest(self.registry)


class MeteredConversation:
    """The conversation, timed and counted; everything else passes through unchanged."""

    def __init__(self, inner, metrics: ServiceMetrics):
        self._inner = inner
        self._metrics = metrics

    def handle(self, incoming) -> list:
        started = time.perf_counter()
        replies = self._inner.handle(incoming)
        self._metrics.observe(incoming.channel, replies, time.perf_counter() - started)
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class StateCollector:
    """Gauges read at scrape time: tickets, backlogs and the index (a failing source is skipped, not fatal)."""

    def __init__(self, service):
        self.service = service

    def describe(self):
        return []

    def collect(self):
        from bot.storage.outbox import OutboxRow
        from bot.tickets.models import Ticket

        service = self.service
        try:
            now = service.store.clock()
            with service.sessions() as s:
                by_status = dict(s.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all())
                overdue = s.scalar(select(func.count()).select_from(Ticket).where(
                    Ticket.status.in_(("new", "assigned")), Ticket.dispatch_due < now)) or 0
                overdue += s.scalar(select(func.count()).select_from(Ticket).where(
                    Ticket.status == "accepted", Ticket.feedback_due < now)) or 0
                outbox = s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))) or 0
        except Exception as exc:  # the database away: /readyz says so; the other gauges still come
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
        else:
            tickets = GaugeMetricFamily("shegong_tickets", "Tickets by status", labels=["status"])
            for status, count in sorted(by_status.items()):
                tickets.add_metric([status], count)
            yield tickets
            yield GaugeMetricFamily("shegong_tickets_unassigned", "Tickets waiting for a worker (待派单)",
                                    value=by_status.get("new", 0))
            yield GaugeMetricFamily("shegong_tickets_overdue", "Open tickets past the deadline that matters now",
                                    value=overdue)
            yield GaugeMetricFamily("shegong_outbox_backlog", "Notifications not yet delivered", value=outbox)
        journal = getattr(service.conversation, "journal", None)
        if journal is not None:
            yield GaugeMetricFamily("shegong_journal_backlog", "Messages kept on disk while the database was away",
                                    value=len(journal.pending()))
        try:
            snap = service.knowledge.index.snapshot()
        except Exception:  # noqa: BLE001 - a Chroma server away: no index gauges this time
            snap = None
        if snap is not None:
            yield GaugeMetricFamily("shegong_index_generation", "Knowledge index generation served",
                                    value=snap.generation)
            yield GaugeMetricFamily("shegong_index_passages", "Passages in the served index", value=len(snap.entries))


def readiness(service) -> tuple[bool, dict]:
    """Ready when the database answers and the knowledge index is loaded; the reasons when not."""
    problems = {}
    try:
        with service.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems["database"] = type(exc).__name__
    try:
        if service.knowledge.index.snapshot() is None:
            problems["index"] = "empty"
    except Exception as exc:  # noqa: BLE001
        problems["index"] = type(exc).__name__
    return not problems, problems
