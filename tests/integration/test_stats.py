"""The three rates (三率) and counts on a hand-made set of tickets, and the admin commands that print them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.tickets.stats import compute_stats
from bot.tickets.store import RESIDENT
from tests.integration.db import START, write_config

# The hand-made week (times after START, Monday 10:00 of ISO week 48 in Shanghai):
#   t1 供暖      jingcun-01  accepted +1 h (due 2 h)   rated 5 -> closed
#   t2 楼道堆物  jingcun-01  accepted +30 h (due 24 h) rated 2 -> reopened, resolved again, auto-closed unrated
#   t3 噪音扰民  jingcun-02  accepted +2 h (due 24 h)  rated 3 -> closed
#   t4 供暖      huajiang-02 never accepted (overdue)
#   t5 环境卫生  jingcun-03  cancelled by the resident (left out of the rates)
#   t6 供水      jingcun-01  filed a week later (week 49), accepted +1 h, rated 4 -> closed
# response 3/5 (t1 t3 t6), resolution 3/4 confirmed among rated closed (t2 is not),
# satisfaction mean (5+2+3+4)/4 = 3.5 and share of 4-5 = 2/4.


@pytest.fixture
def week(database):
    """The database holding the hand-made tickets above; returns (database, tickets by name)."""
    db = database
    w1 = db.add_staff(user_id="w1")
    w2 = db.add_staff(user_id="w2", grids=("jingcun-02",))
    db.add_staff(user_id="w3", grids=("huajiang-02",))
    db.add_staff(user_id="w4", grids=("jingcun-03",))
    t = {
        "t1": db.file("景村里3号楼2单元暖气不热", user_id="r1"),
        "t2": db.file("景村里2号楼楼道里堆满了纸箱子和旧家具", user_id="r2"),
        "t3": db.file("景村里8号楼楼下饭馆排风机噪音太大，晚上睡不着", user_id="r3"),
        "t4": db.file("华江里十二号楼502暖气片冰凉", user_id="r4"),
        "t5": db.file("景村东里5栋垃圾桶满了好几天没人清", user_id="r5"),
    }
    store, desk = db.store, db.desk
    db.clock.advance(hours=1)
    store.transition(t["t1"].id, "accept", w1)
    db.clock.advance(hours=1)
    store.transition(t["t3"].id, "accept", w2)
    store.transition(t["t1"].id, "resolve", w1, note="放气后已热")
    desk.rate(t["t1"].id, "telegram", "r1", 5)
    store.transition(t["t5"].id, "cancel", RESIDENT, note="自己清走了")
    db.clock.advance(hours=28)
    store.transition(t["t2"].id, "accept", w1)
    store.transition(t["t2"].id, "resolve", w1, note="已通知住户清走")
    store.transition(t["t3"].id, "resolve", w2, note="已让饭馆加装消音")
    desk.rate(t["t2"].id, "telegram", "r2", 2, "还堆着呢")
    desk.rate(t["t3"].id, "telegram", "r3", 3)
    db.clock.advance(hours=1)
    store.transition(t["t2"].id, "accept", w1)
    store.transition(t["t2"].id, "resolve", w1, note="已全部清走")
    db.clock.now = START + timedelta(days=7)
    t["t6"] = db.file("景村里4号楼楼上漏水漏到我家厨房了", user_id="r6")
    db.clock.advance(hours=1)
    store.transition(t["t6"].id, "accept", w1)
    store.transition(t["t6"].id, "resolve", w1, note="楼上换了水管")
    desk.rate(t["t6"].id, "telegram", "r6", 4)
    db.clock.now = START + timedelta(days=8, hours=8)
    assert db.watch().tick().closed == 1  # t2, a week after its second resolution
    return db, t


def test_the_three_rates_match_the_hand_made_week(week):
    db, t = week

    stats = compute_stats(db.sessions, now=db.clock.now)

    assert stats.total == 6
    assert stats.response_rate == pytest.approx(3 / 5)
    assert stats.resolution_rate == pytest.approx(3 / 4)
    assert stats.satisfaction_mean == pytest.approx(3.5)
    assert stats.satisfaction_rate == pytest.approx(2 / 4)
    assert stats.overdue == [t["t4"].id]


def test_counts_by_category_grid_week_and_status_match_the_hand_made_week(week):
    db, _ = week

    stats = compute_stats(db.sessions)

    assert dict(stats.by_category) == {"供暖": 2, "楼道堆物": 1, "噪音扰民": 1, "环境卫生": 1, "供水": 1}
    assert dict(stats.by_grid) == {"jingcun-01": 3, "jingcun-02": 1, "huajiang-02": 1, "jingcun-03": 1}
    assert dict(stats.by_week) == {"2026-W48": 5, "2026-W49": 1}
    assert dict(stats.by_status) == {"closed": 4, "assigned": 1, "cancelled": 1}


def test_statistics_can_be_limited_to_a_period_or_a_community(week):
    db, t = week

    since = compute_stats(db.sessions, since=START + timedelta(days=7))
    huajiang = compute_stats(db.sessions, community="huajiang")

    assert since.total == 1 and dict(since.by_category) == {"供水": 1} and since.satisfaction_mean == 4
    assert huajiang.total == 1 and huajiang.response_rate == 0


def test_rates_are_empty_rather_than_zero_when_there_is_nothing_to_measure(database):
    stats = compute_stats(database.sessions)

    assert stats.total == 0
    assert (stats.response_rate, stats.resolution_rate, stats.satisfaction_mean) == (None, None, None)


def test_a_reopened_ticket_keeps_its_first_timely_response(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file("景村里3号楼2单元暖气不热")
    database.clock.advance(minutes=40)
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="放了气")
    database.desk.rate(ticket.id, "telegram", "r1", 1, "还是不热")
    database.clock.advance(days=2)
    database.store.transition(ticket.id, "accept", worker, note="再次上门")

    assert compute_stats(database.sessions).response_rate == 1.0


# -- the admin commands ------------------------------------------------------------------------


def test_admin_stats_prints_the_rates_and_counts(week, tmp_path, run_python):
    db, _ = week

    done = run_python("-m", "bot", "admin", "stats", "--config", str(db.config(tmp_path / "cli")))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "工单总数 6：待办 1，待派单 0，超时 1" in out
    assert "响应率 60.0%（3/5）" in out and "解决率 75.0%（3/4）" in out and "满意率 50.0%（2/4）" in out
    assert "平均评分 3.50" in out
    # the names the console shows, not raw codes
    assert "供暖 2" in out and "景村社区第一网格 3" in out and "已办结 4" in out and "2026-W48 5" in out
    assert "jingcun-01" not in out and "closed" not in out


@pytest.fixture
def sqlite_config(tmp_path, service_index):
    return write_config(tmp_path / "admin", f"sqlite:///{(tmp_path / 'admin' / 'bot.db').as_posix()}",
                        index_dir=service_index)


def test_admin_invite_prints_a_code_that_binds_a_worker_of_the_grid(sqlite_config, run_python):
    from bot.app import build_service
    from bot.settings import load_settings

    done = run_python("-m", "bot", "admin", "invite", "--config", str(sqlite_config), "--role", "worker",
                      "--grid", "jingcun-01", "--name", "王芳")

    assert done.returncode == 0, done.stderr
    code = done.stdout.split("/bind")[-1].strip()
    assert len(code) == 10 and code.isalnum(), done.stdout
    service = build_service(load_settings(sqlite_config))
    try:
        staff = service.staff.bind(code, "telegram", "w1")
    finally:
        service.engine.dispose()
    assert (staff.role, staff.grids, staff.name) == ("worker", ["jingcun-01"], "王芳")


@pytest.mark.parametrize("args, says", [
    (["invite", "--role", "worker"], "网格"),
    (["invite", "--role", "worker", "--grid", "jingcun-99"], "jingcun-99"),
    (["invite", "--role", "supervisor"], "社区"),
    (["stats", "--since", "上个月"], "--since"),
], ids=["worker-without-grid", "unknown-grid", "supervisor-without-community", "since-not-a-date"])
def test_admin_commands_with_bad_arguments_exit_2_with_one_clear_line(sqlite_config, run_python, args, says):
    done = run_python("-m", "bot", "admin", args[0], "--config", str(sqlite_config), *args[1:])

    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert done.stdout == ""


def test_admin_invite_with_an_unknown_role_exits_2_naming_the_role(sqlite_config, run_python):
    done = run_python("-m", "bot", "admin", "invite", "--config", str(sqlite_config), "--role", "boss")

    assert done.returncode == 2
    assert "boss" in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr
