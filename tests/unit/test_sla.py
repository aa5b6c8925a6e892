"""接诉即办 deadlines per SLA class, and how they are shown in Asia/Shanghai."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.settings import TicketSettings
from bot.tickets.sla import SlaPolicy, as_utc, local

FILED = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai


@pytest.mark.parametrize("sla_class, dispatch, feedback", [
    ("emergency", timedelta(hours=1), timedelta(hours=2)),
    ("utility", timedelta(hours=2), timedelta(hours=24)),
    ("general", timedelta(hours=24), timedelta(days=7)),
    ("complex", timedelta(hours=24), timedelta(days=15)),
])
def test_default_deadlines_follow_the_12345_practice(sla_class, dispatch, feedback):
    deadlines = SlaPolicy.default().deadlines(sla_class, FILED)

    assert (deadlines.dispatch - FILED, deadlines.feedback - FILED) == (dispatch, feedback)


def test_an_unknown_sla_class_gets_the_general_deadlines():
    assert SlaPolicy.default().deadlines("whatever", FILED) == SlaPolicy.default().deadlines("general", FILED)


def test_the_shipped_settings_have_the_same_deadlines_as_the_default_policy():
    settings = TicketSettings()
    policy = SlaPolicy(dict(settings.dispatch_hours), dict(settings.feedback_hours))

    for sla_class in ("emergency", "utility", "general", "complex"):
        assert policy.deadlines(sla_class, FILED) == SlaPolicy.default().deadlines(sla_class, FILED)


def test_configured_hours_replace_the_defaults():
    policy = SlaPolicy({"utility": 0.5}, {"utility": 4})

    deadlines = policy.deadlines("utility", FILED)

    assert (deadlines.dispatch, deadlines.feedback) == (FILED + timedelta(minutes=30), FILED + timedelta(hours=4))


def test_deadlines_are_shown_in_shanghai_time_even_across_midnight():
    due = SlaPolicy.default().deadlines("emergency", FILED).dispatch

    assert local(due) == "2026-11-24 00:30"


def test_a_naive_time_read_back_from_sqlite_is_taken_as_utc():
    naive = datetime(2026, 11, 23, 15, 30)

    assert as_utc(naive) == FILED and local(naive) == "2026-11-23 23:30"
