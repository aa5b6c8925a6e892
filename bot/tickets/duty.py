"""今日我当班: the duty roster of each community, and what it means for routing and for residents.

A day on which a community has shifts is a day on which only the people on them
work there: a new report from a grid whose own worker is not on the roster goes
to that day's duty worker of the community (the least loaded one). A day without
shifts routes as before, by each worker's 在岗 switch. Residents who ask "今天谁
值班" get the community hall's hours and the duty staff's names, never a phone of
theirs (the hall's public number is in district.toml).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.district_time import DISTRICT_ZONE
from bot.core.ports import CommunityDuty, Places
from bot.errors import BotError
from bot.tickets.audit import AuditLog
from bot.tickets.models import DutyShift, Staff
from bot.tickets.organisation import Community, Organisation
from bot.tickets.sla import utcnow

MAX_DAYS_AHEAD = 62  # a roster is planned for weeks, not years: a typo in the year is refused


class DutyError(BotError):
    """A shift the roster refuses; the message is shown as is."""


def district_day(moment: datetime) -> date:
    return moment.astimezone(DISTRICT_ZONE).date()


def rostered_ids(s: Session, community_id: str, day: date) -> set[int] | None:
    """The staff ids on duty in this community on this day; None when the day has no shifts."""
    ids = set(s.scalars(select(DutyShift.staff_id).where(DutyShift.community_id == community_id,
                                                         DutyShift.day == day)))
    return ids or None


def belongs(staff: Staff, community: str, org: Organisation) -> bool:
    """Who may be on a community's roster: its supervisors and the workers of its grids."""
    if not staff.active:
        return False
    if staff.role == "supervisor":
        return staff.community == community
    if staff.role == "worker":
        return any(org.grids[g].community_id == community for g in (staff.grids or []) if g in org.grids)
    return False


class DutyRoster:
    def __init__(self, sessions: sessionmaker[Session], org: Organisation, clock: Callable[[], datetime] = utcnow,
                 audit: AuditLog | None = None):
        self.sessions = sessions
        self.org = org
        self.clock = clock
        self.audit = audit or AuditLog(sessions, clock)

    def today(self) -> date:
        return district_day(self.clock())

    def members(self, community: str) -> list[Staff]:
        """The people who may be put on this community's roster, workers first."""
        with self.sessions() as s:
            people = [p for p in s.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
                      if belongs(p, community, self.org)]
            for p in people:
                s.expunge(p)
        return sorted(people, key=lambda p: (p.role != "worker", p.id))

    def on_duty(self, community: str, day: date) -> list[Staff]:
        """Who is on duty (active people only), in the order they were put on."""
        with self.sessions() as s:
            rows = list(s.execute(select(Staff).join(DutyShift, DutyShift.staff_id == Staff.id)
                                  .where(DutyShift.community_id == community, DutyShift.day == day,
                                         Staff.active.is_(True)).order_by(DutyShift.id)).scalars())
            for p in rows:
                s.expunge(p)
        return rows

    def week(self, community: str, start: date, days: int = 7) -> dict[date, list[int]]:
        """Staff ids on duty, day by day from start."""
        out: dict[date, list[int]] = {start + timedelta(days=i): [] for i in range(days)}
        with self.sessions() as s:
            for day, staff_id in s.execute(select(DutyShift.day, DutyShift.staff_id)
                                           .where(DutyShift.community_id == community, DutyShift.day >= start,
                                                  DutyShift.day < start + timedelta(days=days))
                                           .order_by(DutyShift.id)):
                out.setdefault(day, []).append(staff_id)
        return out

    def set_day(self, community: str, day: date, staff_ids: list[int], by: str) -> list[str]:
        """Replace the day's shifts with these people (an empty list clears the day); their names."""
        if community not in self.org.communities:
            raise DutyError(f"没有这个社区：{community}")
        today = self.today()
        if day < today:
            raise DutyError("过去的日子不能再排班。")
        if day > today + timedelta(days=MAX_DAYS_AHEAD):
            raise DutyError(f"最多提前 {MAX_DAYS_AHEAD} 天排班。")
        wanted = list(dict.fromkeys(staff_ids))
        with self.sessions.begin() as s:
            people = {p.id: p for p in s.scalars(select(Staff).where(Staff.id.in_(wanted or [0])))}
            names = []
            for staff_id in wanted:
                person = people.get(staff_id)
                if person is None or not belongs(person, community, self.org):
                    raise DutyError(f"工号 {staff_id} 不是{self.org.communities[community].name}的在职工作人员。")
                names.append(person.name)
            s.execute(delete(DutyShift).where(DutyShift.community_id == community, DutyShift.day == day))
            now = self.clock()
            for staff_id in wanted:
                s.add(DutyShift(community_id=community, day=day, staff_id=staff_id, set_by=by[:64], set_at=now))
        self.audit.record(by, "duty_set", f"{self.org.communities[community].name} {day.isoformat()}",
                          "、".join(names) or "清空")
        return names


class DutyBoard:
    """What residents may know of a community's duty (implements core.ports.DutyBoard)."""

    def __init__(self, roster: DutyRoster, places: Places):
        self.roster = roster
        self.places = places

    def today(self, text: str) -> list[CommunityDuty]:
        org = self.roster.org
        named = self._named(text)
        communities = [org.communities[c] for c in named] if named else list(org.communities.values())
        day = self.roster.today()
        return [self._duty(c, day) for c in communities]

    def _named(self, text: str) -> list[str]:
        org = self.roster.org
        found = [c.id for c in org.communities.values() if c.name in text or c.name.removesuffix("社区") in text]
        if not found:
            match = self.places.resolve(text)
            if match is not None and match.community:
                found = [match.community]
        return found

    def _duty(self, community: Community, day: date) -> CommunityDuty:
        names = tuple(p.name for p in self.roster.on_duty(community.id, day))
        return CommunityDuty(community.name, community.hours, community.office, community.phone, names)
