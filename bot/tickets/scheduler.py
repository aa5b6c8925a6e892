"""Deadline watch: remind before a deadline, escalate once when it passes, close unrated tickets.

Each tick works from what is stored (``reminded_at``, ``escalated_at``), not
from timers in memory, so after a restart, or a clock jump of hours, it catches
up in one tick and never escalates the same ticket twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update

from bot.tickets.lifecycle import TransitionError
from bot.tickets.models import Ticket
from bot.tickets.store import SYSTEM, TicketStore

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    reminded: int = 0
    escalated: int = 0
    closed: int = 0
    erased: int = 0


class DeadlineWatch:
    def __init__(self, store: TicketStore, remind_before: timedelta = timedelta(minutes=30),
                 auto_close_after: timedelta = timedelta(days=7), retention: timedelta | None = None):
        self.store = store
        self.remind_before = remind_before
        self.auto_close_after = auto_close_after
        self.retention = retention
        # other personal data kept as long as tickets' (e.g. residents' intent choices): cutoff -> rows erased
        self.erasers: list[Callable[[datetime], int]] = []
        # other deadlines kept in the database (visits due, mediation follow-ups): now -> people reminded
        self.reminders: list[Callable[[datetime], int]] = []

    def tick(self) -> TickReport:
        now = self.store.clock()
        report = TickReport()
        sessions = self.store.sessions
        with sessions() as s:
            waiting = list(s.scalars(select(Ticket.id).where(
                Ticket.status.in_(("new", "assigned")), Ticket.reminded_at.is_(None), Ticket.escalated_at.is_(None),
                Ticket.dispatch_due <= now + self.remind_before, Ticket.dispatch_due > now)))
            overdue = list(s.scalars(select(Ticket.id).where(
                Ticket.status.in_(("new", "assigned")), Ticket.escalated_at.is_(None), Ticket.dispatch_due <= now)))
            late_feedback = list(s.scalars(select(Ticket.id).where(
                Ticket.status == "accepted", Ticket.feedback_escalated_at.is_(None), Ticket.feedback_due <= now)))
            unrated = list(s.scalars(select(Ticket.id).where(
                Ticket.status == "resolved", Ticket.resolved_at <= now - self.auto_close_after)))
        # each claim commits with its event and notifications: once only across processes, all or nothing; a
        # ticket whose claim fails (rolled back whole) is tried again next tick, the others go on
        deadlines = [(t, "remind", "派单时限将到", "reminded_at") for t in waiting] \
            + [(t, "escalate", "派单超时，已上报社区负责人", "escalated_at") for t in overdue] \
            + [(t, "escalate", "反馈超时，已上报社区负责人", "feedback_escalated_at") for t in late_feedback]
        for ticket_id, action, note, column in deadlines:
            try:
                if not self.store.add_event(ticket_id, SYSTEM, action, note, claim=column):
                    continue
            except Exception:  # noqa: BLE001 - logged; nothing of it was recorded
                log.exception("deadline %s of ticket %s failed; tried again next tick", action, ticket_id)
                continue
            if action == "remind":
                report.reminded += 1
            else:
                report.escalated += 1
        for ticket_id in unrated:
            try:
                self.store.transition(ticket_id, "close", SYSTEM, note="居民未评价，自动办结", expected="resolved")
                report.closed += 1
            except TransitionError:
                pass  # rated meanwhile
        for remind in self.reminders:
            try:
                report.reminded += remind(now)
            except Exception:  # noqa: BLE001 - one kind of reminder failing must not stop the tickets' deadlines
                log.exception("reminder %s failed", getattr(remind, "__qualname__", remind))
        if self.retention is not None:
            report.erased = self.erase_personal_data(now - self.retention)
            for erase in self.erasers:
                report.erased += erase(now - self.retention)
        if report.reminded or report.escalated or report.closed or report.erased:
            log.info("deadline tick: %s", report)
        return report

    def erase_personal_data(self, closed_before) -> int:
        """Blank phone, exact place, photos and location of tickets closed long ago; statistics stay."""
        with self.store.sessions.begin() as s:
            result = s.execute(update(Ticket).where(
                Ticket.status.in_(("closed", "cancelled", "merged")), Ticket.personal_erased.is_(False),
                Ticket.closed_at.is_not(None), Ticket.closed_at <= closed_before,
            ).values(phone="", place="", building_id=None, photos=[], latitude=None, longitude=None,
                     contact_time="", description="（个人信息已按保存期限删除）", personal_erased=True))
            return result.rowcount or 0

    async def run(self, interval_s: float = 60.0) -> None:
        """Tick forever (in the service's event loop, the work in a thread)."""
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("deadline tick failed; retrying next interval")
            await asyncio.sleep(interval_s)
