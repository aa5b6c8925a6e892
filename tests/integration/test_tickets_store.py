"""The ticket store on a real database (SQLite and PostgreSQL): routing, lifecycle, duplicates, races, notifications."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event, func, select

from bot.core.conversation import rating_buttons
from bot.tickets.lifecycle import PermissionDenied, TransitionError
from bot.tickets.models import Ticket
from bot.tickets.sla import as_utc
from bot.tickets.store import RESIDENT, SYSTEM

CJK = re.compile(r"[\u4e00-\u9fff]")
HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"


def ticket_count(db) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(Ticket))


def race(db, *calls, meet_before: str = "UPDATE TICKET ", patience: float = 10):
    """Run the calls in threads that wait for each other right before their first statement starting so.

    By default that is the UPDATE of the ticket row: both have read the ticket as
    "assigned" by then, so the database alone decides who wins. When the code under
    test serialises the calls, the others never arrive; after `patience` seconds
    the first goes on alone. Returns what each call returned or raised.
    """
    barrier = threading.Barrier(len(calls), timeout=patience)
    racing: set[int] = set()

    def before_update(conn, cursor, statement, parameters, context, executemany):
        me = threading.get_ident()
        if me in racing and statement.lstrip().upper().startswith(meet_before):
            racing.discard(me)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass  # the others were held back before this point: nothing to race

    results: list[object] = [None] * len(calls)

    def run(i, call):
        racing.add(threading.get_ident())
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the loser's exception is the result under test
            results[i] = exc

    event.listen(db.engine, "before_cursor_execute", before_update)
    try:
        threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a racing thread hung"
    finally:
        event.remove(db.engine, "before_cursor_execute", before_update)
    return results


# -- routing -----------------------------------------------------------------------


def test_report_goes_to_the_least_loaded_on_duty_worker_of_the_buildings_grid(database):
    busy = database.add_staff(user_id="w-busy")
    free = database.add_staff(user_id="w-free")
    database.add_staff(user_id="w-off", on_duty=False)
    database.add_staff(user_id="w-other", grids=("jingcun-02",))
    first = database.file("景村里3号楼2单元暖气不热", user_id="r1")
    database.store.transition(first.id, "accept", busy)  # accepted tickets still count as load

    second = database.file("景村里5号楼楼道堆了好多纸箱子，过不去人", user_id="r2", phone="13900001111")

    assert (first.assignee_id, second.assignee_id) == (busy.staff_id, free.staff_id)
    assert second.status == "assigned" and second.grid_id == "jingcun-01"


def test_a_worker_whose_tickets_are_resolved_counts_as_free_again(database):
    w1 = database.add_staff(user_id="w1")
    w2 = database.add_staff(user_id="w2")
    t1 = database.file("景村里1号楼电梯坏了好几天没人修", user_id="r1")
    t2 = database.file("景村里2号楼楼道灯不亮", user_id="r2", phone="13900001111")
    database.store.transition(t1.id, "accept", w1)
    database.store.transition(t1.id, "resolve", w1, note="已联系物业修好电梯")

    t3 = database.file("景村里6号楼下水道堵了往外冒水", user_id="r3", phone="13900002222")

    assert (t1.assignee_id, t2.assignee_id, t3.assignee_id) == (w1.staff_id, w2.staff_id, w1.staff_id)


def test_report_in_a_known_estate_with_no_matching_grid_stays_new_and_tells_that_communitys_supervisor(database):
    database.add_staff(user_id="w1")
    database.add_staff("supervisor", user_id="boss-jingcun", community="jingcun")
    database.add_staff("admin", user_id="admin")

    ticket = database.file("景村里30号楼门口垃圾好几天没人清运了")

    assert ticket.status == "new" and ticket.assignee_id is None and ticket.grid_id is None
    to_supervisor = database.messages_to("boss-jingcun")
    assert len(to_supervisor) == 1 and "待派单" in to_supervisor[0].text and ticket.id in to_supervisor[0].text
    assert ticket.community_id == "jingcun"


def test_report_with_no_known_place_stays_new_and_goes_to_the_admins(database):
    database.add_staff(user_id="w1")
    database.add_staff("admin", user_id="admin")

    ticket = database.file("我家门口那个路灯晚上不亮，黑咕隆咚的")

    assert ticket.status == "new" and ticket.assignee_id is None
    to_admin = database.messages_to("admin")
    assert len(to_admin) == 1 and "待派单" in to_admin[0].text
    assert database.messages_to("w1") == []


def test_handing_a_ticket_back_returns_it_to_the_supervisors_queue(database):
    worker = database.add_staff(user_id="w1")
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    ticket = database.file(HEATING)

    back = database.store.transition(ticket.id, "hand_back", worker, note="不归我们网格管")

    assert back.status == "new" and back.assignee_id is None
    assert any("退回" in m.text and ticket.id in m.text for m in database.messages_to("boss"))


# -- lifecycle ---------------------------------------------------------------------


def test_every_change_is_an_event_with_its_actor_and_time(database):
    worker = database.add_staff(user_id="w1")
    filed_at = database.clock.now
    ticket = database.file(HEATING)
    accepted_at = database.clock.advance(minutes=40)
    database.store.transition(ticket.id, "accept", worker, note="已电话联系")
    resolved_at = database.clock.advance(hours=5)
    database.store.transition(ticket.id, "resolve", worker, note="暖气片放了气，已经热了")
    closed_at = database.clock.advance(hours=2)
    database.desk.rate(ticket.id, "telegram", "r1", 5, "小王师傅很负责")

    events = database.store.events(ticket.id)

    me = f"staff:{worker.staff_id}"
    assert [(e.action, e.actor) for e in events] == [
        ("filed", "resident"), ("assign", "system"), ("accept", me), ("resolve", me), ("close", "resident")]
    assert [as_utc(e.at) for e in events] == [filed_at, filed_at, accepted_at, resolved_at, closed_at]
    assert [(e.from_status, e.to_status) for e in events[1:]] == [
        ("new", "assigned"), ("assigned", "accepted"), ("accepted", "resolved"), ("resolved", "closed")]
    assert events[3].note == "暖气片放了气，已经热了"


def test_resolving_before_accepting_is_refused_with_a_chinese_message(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING)

    with pytest.raises(TransitionError) as refused:
        database.store.transition(ticket.id, "resolve", worker, note="修好了")

    assert CJK.search(str(refused.value)) and "已派单" in str(refused.value)
    assert database.store.get(ticket.id).status == "assigned"
    assert database.count_events(ticket.id, "resolve") == 0


def test_rating_a_ticket_that_is_not_resolved_is_refused(database):
    database.add_staff(user_id="w1")
    ticket = database.file(HEATING)

    with pytest.raises(TransitionError) as refused:
        database.desk.rate(ticket.id, "telegram", "r1", 5)

    assert CJK.search(str(refused.value))
    assert database.store.get(ticket.id).rating is None


def test_closing_a_cancelled_ticket_is_refused(database):
    ticket = database.file(HEATING)
    database.store.transition(ticket.id, "cancel", RESIDENT, note="暖气自己好了")

    with pytest.raises(TransitionError):
        database.store.transition(ticket.id, "close", SYSTEM)

    assert database.store.get(ticket.id).status == "cancelled"


def test_only_the_assigned_worker_can_accept_or_resolve(database):
    assignee = database.add_staff(user_id="w1")
    colleague = database.add_staff(user_id="w2")
    ticket = database.file(HEATING)
    assert ticket.assignee_id == assignee.staff_id

    with pytest.raises(PermissionDenied) as refused:
        database.store.transition(ticket.id, "accept", colleague)
    assert CJK.search(str(refused.value))
    database.store.transition(ticket.id, "accept", assignee)
    with pytest.raises(PermissionDenied):
        database.store.transition(ticket.id, "resolve", colleague, note="我顺手修了")

    assert database.store.get(ticket.id).status == "accepted"
    assert database.count_events(ticket.id, "resolve") == 0


def test_the_same_problem_again_within_a_day_is_linked_to_the_open_ticket(database):
    database.add_staff(user_id="w1")
    first, linked = database.store.file(database.draft(HEATING))
    database.clock.advance(hours=20)

    again, linked_again = database.store.file(database.draft("景村里3号楼2单元暖气还是冰凉的，老人冻得不行"))

    assert (linked, linked_again) == (False, True)
    assert again.id == first.id and ticket_count(database) == 1
    assert database.count_events(first.id, "resident_added") == 1
    assert "老人冻得不行" in database.store.events(first.id)[-1].note


def test_the_same_problem_after_a_day_is_filed_as_a_new_ticket(database):
    database.add_staff(user_id="w1")
    first = database.file(HEATING)
    database.clock.advance(hours=25)

    again, linked = database.store.file(database.draft("景村里3号楼2单元暖气又不热了"))

    assert not linked and again.id != first.id and ticket_count(database) == 2


def test_another_residents_report_of_the_same_problem_is_not_linked(database):
    database.add_staff(user_id="w1")
    first = database.file(HEATING, user_id="r1")

    other, linked = database.store.file(database.draft(HEATING, user_id="r2", phone="13900001111"))

    assert not linked and other.id != first.id


def test_rating_four_closes_the_ticket(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING)
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="换了阀门")

    info = database.desk.rate(ticket.id, "telegram", "r1", 4)

    stored = database.store.get(ticket.id)
    assert info.status == "closed" and stored.status == "closed"
    assert stored.rating == 4 and stored.closed_at is not None


def test_rating_two_reopens_the_ticket_for_the_same_worker(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING)
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="放了气")

    info = database.desk.rate(ticket.id, "telegram", "r1", 2, "还是不热，摸着温乎")

    stored = database.store.get(ticket.id)
    assert info.status == "assigned" and stored.status == "assigned"
    assert stored.reopen_count == 1 and stored.assignee_id == worker.staff_id and stored.resolved_at is None
    assert "不满意" in database.messages_to("w1")[-1].text


def test_a_resident_cannot_rate_someone_elses_ticket(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING, user_id="r1")
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="好了")

    with pytest.raises(Exception, match="没有找到"):
        database.desk.rate(ticket.id, "telegram", "r2", 1)

    assert database.store.get(ticket.id).status == "resolved"


# -- two presses at the same moment -------------------------------------------------------


def test_accepting_the_same_ticket_twice_at_once_lets_exactly_one_win(database):
    worker = database.add_staff(user_id="w1")  # pressing 接单 on the phone and in the web console together
    ticket = database.file(HEATING)

    results = race(database, lambda: database.store.transition(ticket.id, "accept", worker, note="手机"),
                   lambda: database.store.transition(ticket.id, "accept", worker, note="电脑"))

    winners = [r for r in results if isinstance(r, Ticket)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], TransitionError) and CJK.search(str(losers[0]))
    assert database.count_events(ticket.id, "accept") == 1
    assert database.store.get(ticket.id).version == 3  # filed 1, assigned 2, accepted 3


def test_two_workers_of_a_grid_accepting_at_once_leaves_the_ticket_with_its_assignee(database):
    assignee = database.add_staff(user_id="w1")
    colleague = database.add_staff(user_id="w2")
    ticket = database.file(HEATING)

    results = race(database, lambda: database.store.transition(ticket.id, "accept", assignee),
                   lambda: database.store.transition(ticket.id, "accept", colleague))

    assert isinstance(results[0], Ticket) and results[0].status == "accepted"
    assert isinstance(results[1], (TransitionError, PermissionDenied))
    assert database.count_events(ticket.id, "accept") == 1
    assert database.store.get(ticket.id).assignee_id == assignee.staff_id


def test_the_same_report_sent_twice_at_once_is_filed_once(database):
    database.add_staff(user_id="w1")
    draft = database.draft(HEATING)  # a double tap, or Telegram redelivering the confirmation

    results = race(database, lambda: database.store.file(draft), lambda: database.store.file(draft),
                   meet_before="INSERT INTO TICKET ", patience=1)

    assert all(isinstance(r, tuple) for r in results), results
    assert ticket_count(database) == 1
    assert sorted(linked for _, linked in results) == [False, True]


# -- notifications --------------------------------------------------------------------


def test_the_assigned_worker_gets_the_ticket_with_the_full_phone_and_buttons(database):
    database.add_staff(user_id="w1")
    ticket = database.file(HEATING, phone="13812345678")

    card = database.messages_to("w1")[-1]

    assert "13812345678" in card.text and "景村里3号楼2单元" in card.text and "供暖" in card.text
    assert f"t:accept:{ticket.id}" in [b.payload for b in card.buttons]


def test_the_worker_is_told_even_when_only_one_database_connection_is_free(database):
    from sqlalchemy import create_engine

    database.add_staff(user_id="w1")
    one = create_engine(database.url, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        store = database.new_store(one)
        store.file(database.draft(HEATING))
    finally:
        one.dispose()

    assert len(database.messages_to("w1")) == 1


def test_the_resident_is_told_at_each_step(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING)
    database.store.transition(ticket.id, "accept", worker)
    database.store.transition(ticket.id, "resolve", worker, note="阀门没开，已经打开")

    texts = [m.text for m in database.messages_to("r1")]

    assert len(texts) == 3
    assert "已派给网格员" in texts[0] and "已接单" in texts[1] and "阀门没开，已经打开" in texts[2]


def test_resolving_sends_rating_buttons_to_the_resident(database):
    worker = database.add_staff(user_id="w1")
    ticket = database.file(HEATING)
    database.store.transition(ticket.id, "accept", worker)

    database.store.transition(ticket.id, "resolve", worker, note="已经修好了")

    last = database.messages_to("r1")[-1]
    assert [b.payload for b in last.buttons] == [b.payload for b in rating_buttons(ticket.id)]
    assert database.dialogues.load("telegram", "r1").rating_ticket == ticket.id


def test_a_resident_never_receives_another_residents_phone(database):
    worker = database.add_staff(user_id="w1")
    database.add_staff("supervisor", user_id="boss", community="jingcun")
    phones = {"r1": "13812345678", "r2": "15922223333"}
    for user, phone in phones.items():
        ticket = database.file(f"景村里3号楼2单元暖气不热，有事打我电话{phone}", user_id=user, phone=phone)
        database.store.transition(ticket.id, "accept", worker)
        database.store.transition(ticket.id, "resolve", worker, note="已处理，楼里几家一起放了气")
        database.desk.rate(ticket.id, "telegram", user, 1, "没修好")
        database.store.transition(ticket.id, "hand_back", worker)

    for user, phone in phones.items():
        other = next(p for u, p in phones.items() if u != user)
        said = [m.text for m in database.messages_to(user)]
        assert said, f"{user} was told nothing"
        assert not any(other in text for text in said), (user, said)
    assert any(phones["r1"] in m.text for m in database.messages_to("w1"))


# -- hand-out: tickets nobody was assigned ------------------------------------------------


def test_a_worker_takes_a_waiting_ticket_of_their_grid_and_the_resident_is_told(database):
    ticket = database.file(HEATING)  # nobody covers the grid yet: it waits
    worker = database.add_staff(user_id="w1")

    taken = database.store.take(ticket.id, worker)

    assert (ticket.status, taken.status, taken.assignee_id) == ("new", "assigned", worker.staff_id)
    assert "已派给网格员" in database.messages_to("r1")[-1].text
    card = database.messages_to("w1")[-1]
    assert "13812345678" in card.text and f"t:accept:{ticket.id}" in [b.payload for b in card.buttons]
    assert database.count_events(ticket.id, "take") == 1


def test_a_worker_cannot_take_a_ticket_of_another_grid_or_one_already_assigned(database):
    waiting = database.file(HEATING)
    other_grid = database.add_staff(user_id="w-other", grids=("jingcun-02",))
    with pytest.raises(PermissionDenied, match="本网格"):
        database.store.take(waiting.id, other_grid)

    first = database.add_staff(user_id="w1")
    database.store.take(waiting.id, first)
    second = database.add_staff(user_id="w2")
    with pytest.raises(TransitionError, match="已派单"):
        database.store.take(waiting.id, second)
    assert database.store.get(waiting.id).assignee_id == first.staff_id


def test_two_workers_taking_the_same_waiting_ticket_at_once_leaves_it_with_one(database):
    ticket = database.file(HEATING)
    w1, w2 = database.add_staff(user_id="w1"), database.add_staff(user_id="w2")

    results = race(database, lambda: database.store.take(ticket.id, w1), lambda: database.store.take(ticket.id, w2))

    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1 and isinstance(next(r for r in results if isinstance(r, Exception)), TransitionError)
    assert database.store.get(ticket.id).assignee_id == winners[0].assignee_id
    assert database.count_events(ticket.id, "take") == 1


def test_binding_a_worker_routes_the_tickets_that_waited_in_their_grids(database):
    heating = database.file(HEATING, user_id="r1")
    corridor = database.file("景村里5号楼楼道堆了好多纸箱子，过不去人", user_id="r2")
    elsewhere = database.file("景村里30号楼门口垃圾好几天没人清运了", user_id="r3")  # no grid matched
    code = database.staff.create_invite("worker", grids=["jingcun-01"], name="王网格")

    worker = database.staff.bind(code, "telegram", "w-new")

    statuses = {t: database.store.get(t.id) for t in (heating, corridor, elsewhere)}
    assert [(s.status, s.assignee_id) for s in (statuses[heating], statuses[corridor])] == [("assigned", worker.id)] * 2
    assert statuses[elsewhere].status == "new"
    assert len([m for m in database.messages_to("w-new") if "新工单" in m.text]) == 2


def test_a_supervisor_closes_a_duplicate_with_a_reason_the_resident_reads(database):
    worker = database.add_staff(user_id="w1")
    boss = database.add_staff("supervisor", user_id="boss", community="jingcun")
    ticket = database.file(HEATING)

    closed = database.store.dismiss(ticket.id, boss, "duplicate", "与楼上邻居反映的是同一问题，已在处理")

    assert closed.status == "cancelled"
    told = database.messages_to("r1")[-1].text
    assert ticket.id in told and "重复工单：与楼上邻居反映的是同一问题，已在处理" in told
    assert "不用再处理" in database.messages_to("w1")[-1].text
    with pytest.raises(PermissionDenied):
        database.store.dismiss(database.file("景村里5号楼楼道堆了纸箱子", user_id="r2").id, worker, "invalid", "不是问题")


def test_closing_needs_a_reason_and_a_known_kind(database):
    boss = database.add_staff("supervisor", user_id="boss", community="jingcun")
    ticket = database.file(HEATING)

    with pytest.raises(TransitionError, match="理由"):
        database.store.dismiss(ticket.id, boss, "duplicate", "   ")
    with pytest.raises(TransitionError, match="原因"):
        database.store.dismiss(ticket.id, boss, "spam", "广告")
    assert database.store.get(ticket.id).status == "new"


def test_a_supervisor_of_another_community_cannot_close_the_ticket(database):
    other = database.add_staff("supervisor", user_id="boss-2", community="huajiang")
    ticket = database.file(HEATING)

    with pytest.raises(PermissionDenied):
        database.store.dismiss(ticket.id, other, "invalid", "不是我们社区的")
