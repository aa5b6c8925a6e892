"""今日我当班 and 受理 on a real database (SQLite and PostgreSQL): the roster, routing by it, walk-in tickets."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.district_time import DISTRICT_ZONE
from bot.core.walk_in import WalkIn, ticket_draft
from bot.tickets.duty import DutyBoard, DutyError, DutyRoster
from bot.storage.outbox import OutboxRow
from bot.tickets.stats import compute_stats

# START is Monday 2026-11-23 in the district; the next day is Tuesday
TUESDAY = date(2026, 11, 24)


def roster_of(db) -> DutyRoster:
    return DutyRoster(db.sessions, db.org, clock=db.clock)


def test_a_report_from_an_off_duty_workers_grid_goes_to_the_days_duty_worker(database):
    own = database.add_staff(user_id="w-own", grids=("jingcun-01",))
    duty = database.add_staff(user_id="w-duty", grids=("jingcun-03",))
    database.add_staff(user_id="w-other", grids=("huajiang-01",))
    roster = roster_of(database)
    roster.set_day("jingcun", TUESDAY, [duty.staff_id], "staff:1")

    monday = database.file("景村里3号楼2单元暖气不热", user_id="r1")  # no roster today: the grid's own worker
    database.clock.advance(days=1)
    tuesday = database.file("景村里4号楼楼道堆满了纸箱子", user_id="r2")
    duty_grid = database.file("景村东里2号楼楼道灯坏了", user_id="r3")

    assert monday.assignee_id == own.staff_id
    assert tuesday.assignee_id == duty.staff_id and tuesday.grid_id == "jingcun-01"
    assert duty_grid.assignee_id == duty.staff_id
    assert any(tuesday.id in m.text for m in database.messages_to("w-duty"))
    assert not any(tuesday.id in m.text for m in database.messages_to("w-own"))


def test_the_grid_worker_on_the_roster_keeps_their_own_grid(database):
    own = database.add_staff(user_id="w-own", grids=("jingcun-01",))
    other = database.add_staff(user_id="w-duty", grids=("jingcun-03",))
    roster_of(database).set_day("jingcun", date(2026, 11, 23), [other.staff_id, own.staff_id], "cli")

    ticket = database.file("景村里3号楼2单元暖气不热", user_id="r1")

    assert ticket.assignee_id == own.staff_id


def test_a_duty_worker_on_leave_is_not_routed_to_and_the_supervisor_is_told(database):
    own = database.add_staff(user_id="w-own")
    on_leave = database.add_staff(user_id="w-leave", grids=("jingcun-02",), on_duty=False)
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    roster_of(database).set_day("jingcun", date(2026, 11, 23), [on_leave.staff_id], "cli")

    ticket = database.file("景村里3号楼2单元暖气不热", user_id="r1")

    assert ticket.status == "new" and ticket.assignee_id is None and own.staff_id
    assert any("待派单" in m.text for m in database.messages_to("boss"))


def test_the_roster_refuses_outsiders_the_past_and_far_future_and_a_day_can_be_cleared(database):
    worker = database.add_staff(user_id="w1", grids=("jingcun-01",))
    outsider = database.add_staff(user_id="w2", grids=("huajiang-01",))
    supervisor = database.add_staff("supervisor", user_id="boss", community="jingcun", name="李社长")
    roster = roster_of(database)

    with pytest.raises(DutyError, match="不是景村社区的在职工作人员"):
        roster.set_day("jingcun", TUESDAY, [outsider.staff_id], "cli")
    with pytest.raises(DutyError, match="过去"):
        roster.set_day("jingcun", date(2026, 11, 22), [worker.staff_id], "cli")
    with pytest.raises(DutyError, match="最多提前"):
        roster.set_day("jingcun", date(2027, 11, 22), [worker.staff_id], "cli")
    names = roster.set_day("jingcun", TUESDAY, [supervisor.staff_id, worker.staff_id], "cli")
    week = roster.week("jingcun", date(2026, 11, 23))
    roster.set_day("jingcun", TUESDAY, [], "cli")

    assert names == ["李社长", "worker-w1"] and week[TUESDAY] == [supervisor.staff_id, worker.staff_id]
    assert roster.week("jingcun", date(2026, 11, 23))[TUESDAY] == []
    assert [p.id for p in roster.members("jingcun")] == [worker.staff_id, supervisor.staff_id]


def test_residents_are_told_the_duty_names_and_the_halls_hours_never_a_workers_phone(database):
    worker = database.add_staff(user_id="w1", name="王芳")
    roster = roster_of(database)
    roster.set_day("jingcun", date(2026, 11, 23), [worker.staff_id], "cli")
    board = DutyBoard(roster, database.places)

    [by_address] = board.today("景村里3号楼今天谁值班")
    everyone = board.today("今天谁值班")

    assert by_address.community == "景村社区" and by_address.on_duty == ("王芳",)
    assert "8:30" in by_address.hours and by_address.phone.startswith("022-2800-2100")
    assert [d.community for d in everyone] == ["景村社区", "华江里社区", "安江里社区"]
    assert everyone[1].on_duty == ()


def test_a_walk_in_ticket_records_source_and_filer_routes_and_sends_the_resident_nothing(database):
    worker = database.add_staff(user_id="w1", name="王芳")
    walk_in = WalkIn("景村里3号楼2单元王阿姨来电，暖气不热", "景村里3号楼2单元王阿姨来电，暖气不热", "供暖", "utility",
                     "景村里3号楼2单元", "景村里-3", "jingcun-01", "jingcun", "13912345678", "下午", "phone")

    ticket, _ = database.store.file(ticket_draft(walk_in, worker.staff_id))
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="已联系供热站调试")
    stored = database.store.get(ticket.id)
    filed = database.store.events(ticket.id)[0]
    stats = compute_stats(database.sessions, now=database.clock())

    assert (stored.source, stored.filed_by, stored.status) == ("phone", worker.staff_id, "resolved")
    assert filed.actor == f"staff:{worker.staff_id}" and "电话受理" in filed.note
    with database.sessions() as s:
        channels = set(s.scalars(select(OutboxRow.channel)))
    assert channels == {"telegram"}  # the worker's new-ticket message; nothing queued for the "desk"
    assert stats.by_source == {"phone": 1} and stats.response_by_source["phone"] == (1, 1)
    assert re.fullmatch(r"phone-[0-9a-f]{12}", stored.user_id)


def test_two_walk_ins_of_the_same_problem_are_two_tickets(database):
    worker = database.add_staff(user_id="w1")
    walk_in = WalkIn("景村里3号楼暖气不热", "景村里3号楼暖气不热", "供暖", "utility", "景村里3号楼", "景村里-3",
                     "jingcun-01", "jingcun", "", "", "window")

    first, linked_first = database.store.file(ticket_draft(walk_in, worker.staff_id))
    second, linked_second = database.store.file(ticket_draft(walk_in, worker.staff_id))

    assert first.id != second.id and not linked_first and not linked_second


def test_the_admin_duty_command_sets_and_prints_the_roster(database, tmp_path, run_python):
    worker = database.add_staff(user_id="w1", name="王芳")
    config = database.config(tmp_path / "service")
    tomorrow = (datetime.now(DISTRICT_ZONE).date() + timedelta(days=1)).isoformat()

    set_by_name = run_python("-m", "bot", "admin", "duty", "--community", "jingcun", "--day", "tomorrow",
                             "--set", "王芳", "--config", str(config))
    printed = run_python("-m", "bot", "admin", "duty", "--community", "jingcun", "--config", str(config))
    unknown = run_python("-m", "bot", "admin", "duty", "--community", "nowhere", "--config", str(config))
    bad_name = run_python("-m", "bot", "admin", "duty", "--community", "jingcun", "--set", "张三",
                          "--config", str(config))

    assert set_by_name.returncode == 0, set_by_name.stderr
    assert "当班：王芳" in set_by_name.stdout
    assert f"{tomorrow}" in printed.stdout and f"王芳（{worker.staff_id}）" in printed.stdout
    assert "未排班" in printed.stdout  # today and the rest of the week
    assert unknown.returncode == 2 and "unknown community" in unknown.stderr
    assert bad_name.returncode == 2 and "张三" in bad_name.stderr
