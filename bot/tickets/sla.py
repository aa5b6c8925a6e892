"""接诉即办 deadlines per SLA class, computed from the filing time.

Defaults follow Beijing's 12345 practice: dispatch within 1 h for emergencies,
2 h for water/power/gas/heating ("utility"), 24 h otherwise; first feedback to
the resident within 2 h / 24 h / 7 days, complex cases 15 days. A class may count
a deadline in working days instead (holidays off, 调休 weekends on: workdays.py),
as district guides promise "3个工作日内". Times are stored in UTC and shown in
Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bot.core.district_time import DISTRICT_ZONE

SHANGHAI = DISTRICT_ZONE


@dataclass(frozen=True)
class Deadlines:
    dispatch: datetime
    feedback: datetime


@dataclass(frozen=True)
class SlaPolicy:
    dispatch_hours: dict[str, float]
    feedback_hours: dict[str, float]
    remind_before_minutes: float = 30
    # a class listed here counts that deadline in working days instead of hours ("3个工作日内答复")
    dispatch_working_days: dict[str, int] = field(default_factory=dict)
    feedback_working_days: dict[str, int] = field(default_factory=dict)

    @classmethod
    def default(cls) -> "SlaPolicy":
        return cls(
            dispatch_hours={"emergency": 1, "utility": 2, "general": 24, "complex": 24},
            feedback_hours={"emergency": 2, "utility": 24, "general": 24 * 7, "complex": 24 * 15},
        )

    def deadlines(self, sla_class: str, created: datetime) -> Deadlines:
        cls = sla_class if sla_class in self.dispatch_hours else "general"
        return Deadlines(self._due(created, self.dispatch_hours[cls], self.dispatch_working_days.get(cls)),
                         self._due(created, self.feedback_hours[cls], self.feedback_working_days.get(cls)))

    @staticmethod
    def _due(created: datetime, hours: float, working_days: int | None) -> datetime:
        if not working_days:
            return created + timedelta(hours=hours)
        from bot.tickets.workdays import add_working_days

        local_due = add_working_days(as_utc(created).astimezone(SHANGHAI), int(working_days))
        return local_due.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def local(value: datetime | None) -> str:
    """Format a stored time for people in the district (Asia/Shanghai)."""
    if value is None:
        return ""
    return as_utc(value).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
