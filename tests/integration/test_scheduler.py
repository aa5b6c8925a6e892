"""The deadline watch with a fake clock: reminders, escalation exactly once, auto-close, and data retention."""

from __future__ import annotations

import threading

import pytest

from bot.storage.db import make_engine
from bot.tickets.stats import compute_stats

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"  # utility: dispatch 2 h, feedback 24 h


@pytest.fixture
def staffed(database):
    """The database with a worker of jingcun-01 and the community's supervisor."""
    database.worker = database.add_staff(user_id="w1")
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    return database


def reminders(db) -> list[str]:
    return [m.text for m in db.messages_to("w1") if m.text.startswith("提醒")]


def escalations(db) -> list[str]:
    return [m.text for m in db.messages_to("boss") if "超时" in m.text]


@pytest.fixture
def restarted(staffed):
    """Return restart() -> a new DeadlineWatch on a new engine and TicketStore: what a restarted process has."""
    engines = []

    def restart():
        engine = make_engine(staffed.url)
        engines.append(engine)
        return staffed.watch(staffed.new_store(engine))

    yield restart
    for engine in engines:
        engine.dispose()


def test_the_worker_is_reminded_once_shortly_before_the_dispatch_deadline(staffed):
    ticket = staffed.file(HEATING)
    watch = staffed.watch()
    staffed.clock.advance(hours=1, minutes=20)
    assert watch.tick().reminded == 0  # not yet within 30 minutes of the deadline

    staffed.clock.advance(minutes=15)
    first = watch.tick()
    staffed.clock.advance(minutes=10)
    again = watch.tick()

    assert (first.reminded, again.reminded, first.escalated) == (1, 0, 0)
    assert len(reminders(staffed)) == 1 and ticket.id in reminders(staffed)[0]
    assert staffed.count_events(ticket.id, "remind") == 1


def test_an_overdue_ticket_escalates_to_the_supervisor_exactly_once(staffed):
    ticket = staffed.file(HEATING)
    watch = staffed.watch()
    staffed.clock.advance(hours=2, minutes=1)

    reports = [watch.tick() for _ in range(5)]

    assert [r.escalated for r in reports] == [1, 0, 0, 0, 0]
    assert staffed.count_events(ticket.id, "escalate") == 1
    said = escalations(staffed)
    assert len(said) == 1 and ticket.id in said[0] and "督办" in said[0]
    assert "13812345678" in said[0]  # the supervisor may call the resident


def test_an_escalated_ticket_is_not_escalated_again_after_a_restart_or_a_clock_jump(staffed, restarted):
    ticket = staffed.file(HEATING)
    staffed.clock.advance(hours=2, minutes=5)
    assert staffed.watch().tick().escalated == 1

    after_restart = restarted().tick()
    staffed.clock.advance(hours=10)
    after_jump = restarted().tick()

    assert (after_restart.escalated, after_jump.escalated) == (0, 0)
    assert staffed.count_events(ticket.id, "escalate") == 1 and len(escalations(staffed)) == 1


def test_a_process_that_was_down_past_the_deadline_escalates_once_on_its_first_tick(staffed, restarted):
    ticket = staffed.file(HEATING)
    staffed.clock.advance(hours=10)  # down over the reminder and the deadline

    first = restarted().tick()
    second = restarted().tick()

    assert (first.escalated, first.reminded, second.escalated) == (1, 0, 0)
    assert staffed.count_events(ticket.id, "escalate") == 1 and reminders(staffed) == []


def test_two_processes_ticking_at_once_escalate_a_ticket_only_once(staffed, restarted):
    ticket = staffed.file(HEATING)
    staffed.clock.advance(hours=3)
    watches = [restarted(), restarted()]
    reports = [None, None]

    def tick(i):
        reports[i] = watches[i].tick()

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sum(r.escalated for r in reports) == 1
    assert staffed.count_events(ticket.id, "escalate") == 1 and len(escalations(staffed)) == 1


def test_an_escalation_whose_notification_cannot_be_written_is_not_recorded_and_happens_on_the_next_tick(
        staffed, monkeypatch):
    """The claim, the event and the supervisor's message commit together: a failure (or a kill) between
    them leaves none of them, so the next tick, on any replica, escalates and tells the supervisor."""
    from sqlalchemy.exc import OperationalError

    from bot.storage.outbox import SqlOutbox

    ticket = staffed.file(HEATING)
    staffed.clock.advance(hours=2, minutes=1)
    real = SqlOutbox.notify_in

    def broken(session, channel, user_id, reply):
        raise OperationalError("INSERT INTO outbox", {}, Exception("connection lost"))

    monkeypatch.setattr(SqlOutbox, "notify_in", staticmethod(broken))
    assert staffed.watch().tick().escalated == 0  # logged; the tick goes on with the other tickets

    assert staffed.new_store().get(ticket.id).escalated_at is None
    assert staffed.count_events(ticket.id, "escalate") == 0 and escalations(staffed) == []

    monkeypatch.setattr(SqlOutbox, "notify_in", staticmethod(real))
    assert staffed.watch().tick().escalated == 1
    assert staffed.count_events(ticket.id, "escalate") == 1 and len(escalations(staffed)) == 1


def test_an_accepted_ticket_is_not_escalated_for_dispatch(staffed):
    ticket = staffed.file(HEATING)
    staffed.clock.advance(minutes=50)
    staffed.store.transition(ticket.id, "accept", staffed.worker)
    staffed.clock.advance(hours=5)

    assert staffed.watch().tick().escalated == 0


def test_an_accepted_ticket_escalates_when_the_feedback_deadline_passes(staffed):
    ticket = staffed.file(HEATING)
    staffed.clock.advance(minutes=50)
    staffed.store.transition(ticket.id, "accept", staffed.worker)
    watch = staffed.watch()
    staffed.clock.advance(hours=23)
    assert watch.tick().escalated == 0

    staffed.clock.advance(minutes=20)  # 24 h 10 min after filing

    assert watch.tick().escalated == 1 and len(escalations(staffed)) == 1


def test_a_resolved_ticket_nobody_rates_closes_after_the_auto_close_days(staffed):
    ticket = staffed.file(HEATING)
    staffed.store.transition(ticket.id, "accept", staffed.worker)
    staffed.store.transition(ticket.id, "resolve", staffed.worker, note="已修好")
    watch = staffed.watch()
    staffed.clock.advance(days=6, hours=23)
    assert watch.tick().closed == 0

    staffed.clock.advance(hours=2)
    report = watch.tick()

    stored = staffed.store.get(ticket.id)
    assert report.closed == 1 and stored.status == "closed" and stored.rating is None
    assert staffed.store.events(ticket.id)[-1].actor == "system"
    assert watch.tick().closed == 0


def test_retention_erases_personal_data_of_old_closed_tickets_and_statistics_still_count_them(staffed):
    old = staffed.file(HEATING, photos=["AgACAgUAAxkBAAIB-photo"], latitude=39.0921, longitude=117.2152)
    staffed.store.transition(old.id, "accept", staffed.worker)
    staffed.store.transition(old.id, "resolve", staffed.worker, note="已修好")
    staffed.desk.rate(old.id, "telegram", "r1", 5)
    still_open = staffed.file("景村里5号楼楼道堆了好多纸箱子", user_id="r2", phone="13900001111")
    staffed.clock.advance(days=300)
    recent = staffed.file("景村里6号楼隔壁装修电钻太吵了", user_id="r3", phone="13700002222")
    staffed.store.transition(recent.id, "accept", staffed.worker)
    staffed.store.transition(recent.id, "resolve", staffed.worker, note="已协调")
    staffed.desk.rate(recent.id, "telegram", "r3", 4)
    staffed.clock.advance(days=66)  # old: closed 366 days ago; recent: 66 days ago

    report = staffed.watch(retention_days=365).tick()

    erased, kept, untouched = (staffed.store.get(t.id) for t in (old, recent, still_open))
    assert report.erased == 1
    assert (erased.phone, erased.place, erased.photos, erased.latitude) == ("", "", [], None)
    assert erased.personal_erased and "景村里" not in erased.description
    assert kept.phone == "13700002222" and untouched.phone == "13900001111"
    stats = compute_stats(staffed.sessions)
    assert stats.total == 3 and stats.by_category["供暖"] == 1 and stats.by_grid["jingcun-01"] == 3
    assert stats.satisfaction_mean == 4.5


def test_a_ticket_nobody_was_assigned_warns_the_supervisor_before_its_dispatch_deadline(database):
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    ticket = database.file(HEATING)  # no worker covers the grid
    watch = database.watch()
    before = len(database.messages_to("boss"))

    database.clock.advance(hours=1, minutes=35)
    assert watch.tick().reminded == 1

    warning = database.messages_to("boss")[before:]
    assert len(warning) == 1 and ticket.id in warning[0].text and "请尽快在工作台派单" in warning[0].text


def test_the_deadline_watch_does_not_escalate_over_the_spring_festival(database):
    from datetime import datetime, timedelta, timezone

    from bot.tickets.notifications import TicketNotifications
    from bot.tickets.scheduler import DeadlineWatch
    from bot.tickets.sla import SlaPolicy
    from bot.tickets.store import TicketStore
    from bot.storage.outbox import SqlOutbox

    base = SlaPolicy.default()
    policy = SlaPolicy(base.dispatch_hours, base.feedback_hours, dispatch_working_days={"general": 1})
    store = TicketStore(database.sessions, database.org, policy, clock=database.clock)
    TicketNotifications(store, SqlOutbox(database.sessions)).attach()
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    database.clock.now = datetime(2026, 2, 14, 8, 0, tzinfo=timezone.utc)  # 16:00 on the 调休 Saturday
    ticket, _ = store.file(database.draft("景村里5号楼楼道堆满纸箱子，过不去人"))  # nobody on duty: it waits
    watch = DeadlineWatch(store, timedelta(minutes=30), timedelta(days=7))

    database.clock.now = datetime(2026, 2, 20, 8, 0, tzinfo=timezone.utc)  # mid-festival
    during = watch.tick()
    database.clock.now = datetime(2026, 2, 24, 8, 30, tzinfo=timezone.utc)  # the first working day, 16:30

    assert store.get(ticket.id).dispatch_due.replace(tzinfo=timezone.utc) == datetime(2026, 2, 24, 8, 0,
                                                                                     tzinfo=timezone.utc)
    assert during.escalated == 0 and during.reminded == 0
    assert watch.tick().escalated == 1
