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


BEIJING = timezone(timedelta(hours=8))


def working_day_policy(**days) -> SlaPolicy:
    base = SlaPolicy.default()
    return SlaPolicy(base.dispatch_hours, base.feedback_hours, feedback_working_days=days)


@pytest.mark.parametrize("filed, working_days, due", [
    # Friday before the 2026 Spring Festival: the 调休 Saturday (Feb 14) counts, Feb 15-23 are off
    (datetime(2026, 2, 13, 10, 0, tzinfo=BEIJING), 3, datetime(2026, 2, 25, 10, 0, tzinfo=BEIJING)),
    # filed on a holiday: the count starts with the next working day
    (datetime(2026, 2, 17, 9, 0, tzinfo=BEIJING), 1, datetime(2026, 2, 24, 9, 0, tzinfo=BEIJING)),
    # the 调休 Saturday after the festival is a working day, the Sunday after it is not
    (datetime(2026, 2, 27, 16, 0, tzinfo=BEIJING), 2, datetime(2026, 3, 2, 16, 0, tzinfo=BEIJING)),
    # an ordinary week: Friday + 3 working days is Wednesday
    (datetime(2026, 11, 20, 10, 0, tzinfo=BEIJING), 3, datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)),
])
def test_a_deadline_in_working_days_skips_holidays_and_counts_adjusted_weekends(filed, working_days, due):
    deadlines = working_day_policy(general=working_days).deadlines("general", filed.astimezone(timezone.utc))

    assert deadlines.feedback == due
    assert deadlines.dispatch - filed == timedelta(hours=24)  # dispatch stays in hours


def test_beyond_the_calendar_package_years_monday_to_friday_count_and_admins_are_warned(caplog):
    from bot.tickets import workdays
    from bot.tickets.workdays import unsupported_year

    workdays._warned.discard(2027)  # warned once a year per process: this test must see it
    filed = datetime(2026, 12, 31, 10, 0, tzinfo=BEIJING)  # a Thursday; 2027's holidays are not known yet

    with caplog.at_level("WARNING"):
        due = working_day_policy(general=2).deadlines("general", filed.astimezone(timezone.utc)).feedback

    assert due == datetime(2027, 1, 4, 10, 0, tzinfo=BEIJING)  # Fri Jan 1 counted as a weekday, then Monday
    assert "2027" in caplog.text and "upgrade" in caplog.text
    assert unsupported_year(datetime(2026, 12, 6).date()) == 2027
