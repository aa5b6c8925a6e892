"""Working days as China counts them: public holidays off, 调休 weekends on (the `chinese-calendar` package).

The package knows the State Council's yearly holiday notice for each year it covers
(1.11: 2004–2026) and raises for later years. Beyond them the calendar falls back to
Monday–Friday and says so once in the log; `unsupported_year()` lets the console tell
admins to upgrade the package when the new year's notice is out.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

log = logging.getLogger(__name__)
_warned: set[int] = set()


def is_workday(day: date) -> bool:
    import chinese_calendar

    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the package does not know yet
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning("chinese-calendar has no holidays for %d: counting Monday-Friday as working days; "
                        "upgrade the package when that year's holiday notice is published", day.year)
        return day.weekday() < 5


def unsupported_year(today: date) -> int | None:
    """This year or next when the package does not know its holidays yet (None when both are known)."""
    import chinese_calendar

    for year in (today.year, today.year + 1):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return year
    return None


def add_working_days(start: datetime, days: int) -> datetime:
    """The same local clock time on the `days`-th working day after start's day (start: an aware local time).

    Filed on Friday 10:00 with 3 working days: Wednesday 10:00; filed on a holiday, the
    count starts with the next working day. 调休 Saturdays count, holidays do not.
    """
    if days <= 0:
        return start
    day, counted = start.date(), 0
    while counted < days:
        day += timedelta(days=1)
        counted += is_workday(day)
    return start + timedelta(days=(day - start.date()).days)
