"""接诉即办 deadlines per SLA class, computed from the filing time.

Defaults follow Beijing's 12345 practice: dispatch within 1 h for emergencies,
2 h for water/power/gas/heating ("utility"), 24 h otherwise; first feedback to
the resident within 2 h / 24 h / 7 days, complex cases 15 days. Times are
stored in UTC and shown in Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Deadlines:
    dispatch: datetime
    feedback: datetime


@dataclass(frozen=True)
class SlaPolicy:
    dispatch_hours: dict[str, float]
    feedback_hours: dict[str, float]
    remind_before_minutes: float = 30

    @classmethod
    def default(cls) -> "SlaPolicy":
        return cls(
            dispatch_hours={"emergency": 1, "utility": 2, "general": 24, "complex": 24},
            feedback_hours={"emergency": 2, "utility": 24, "general": 24 * 7, "complex": 24 * 15},
        )

    def deadlines(self, sla_class: str, created: datetime) -> Deadlines:
        cls = sla_class if sla_class in self.dispatch_hours else "general"
        return Deadlines(created + timedelta(hours=self.dispatch_hours[cls]),
                         created + timedelta(hours=self.feedback_hours[cls]))


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
