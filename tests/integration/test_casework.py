"""The visit register and mediation cases on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.casework.mediation import CaseError, CaseNotFound, MediationDesk, PartyEntry
from bot.casework.register import PersonEntry, RegisterError, VisitRegister
from bot.storage.outbox import SqlOutbox
from bot.tickets.sla import as_utc
from bot.tickets.store import Actor


def register_of(db) -> VisitRegister:
    return VisitRegister(db.sessions, db.org, clock=db.clock, notifier=SqlOutbox(db.sessions))


def desk_of(db, days: int = 15) -> MediationDesk:
    return MediationDesk(db.sessions, db.org, clock=db.clock, followup_days=days, notifier=SqlOutbox(db.sessions))


def visit(register, worker, people, place="景村里3号楼2单元501", needs=("送餐上门",)):
    return register.save_visit(worker, "走访记录", place, "景村里-3", "jingcun-01", None, people, list(needs))


def test_a_visit_adds_people_with_their_tags_and_schedules_the_next_visit_by_tag(database):
    worker = database.add_staff(user_id="w1")
    register = register_of(database)

    saved = visit(register, worker, [PersonEntry("王大爷", 82, ["独居", "高龄"]), PersonEntry("李阿姨", 66, ["低保"]),
                                     PersonEntry("张三", 40, [])])
    people = {p.name: p for p in register.people(worker)}

    assert saved.person_ids and set(people) == {"王大爷", "李阿姨", "张三"}
    assert people["王大爷"].next_visit_due - people["王大爷"].last_visit_at == timedelta(days=30)
    assert people["李阿姨"].next_visit_due - people["李阿姨"].last_visit_at == timedelta(days=90)
    assert people["张三"].next_visit_due is None and people["王大爷"].needs == ["送餐上门"]
    assert people["王大爷"].community_id == "jingcun"


def test_a_second_visit_updates_the_same_person_and_a_due_visit_is_reminded_once(database):
    worker = database.add_staff(user_id="w1")
    database.add_staff(user_id="w-other", grids=("jingcun-02",))
    register = register_of(database)
    visit(register, worker, [PersonEntry("王大爷", 82, ["独居"])])

    database.clock.advance(days=31)
    first, second = register.remind_due(database.clock()), register.remind_due(database.clock())
    visit(register, worker, [PersonEntry("王大爷", 83, ["独居", "失能"])])
    [person] = register.people(worker)

    assert (first, second) == (1, 0)
    assert any("走访提醒" in m.text and "王大爷" in m.text for m in database.messages_to("w1"))
    assert database.messages_to("w-other") == []  # another grid's worker is not told
    assert (person.age, person.tags) == (83, ["独居", "失能"]) and person.reminded_at is None
    assert register.people(worker, due_only=True) == []


def test_the_register_is_seen_by_the_grid_its_supervisor_and_admins_only(database):
    worker = database.add_staff(user_id="w1")
    other = database.add_staff(user_id="w2", grids=("jingcun-02",))
    supervisor = database.add_staff("supervisor", user_id="s1", community="jingcun")
    elsewhere = database.add_staff("supervisor", user_id="s2", community="huajiang")
    admin = database.add_staff("admin", user_id="a1")
    register = register_of(database)
    visit(register, worker, [PersonEntry("王大爷", 82, ["独居"])])

    seen = {name: [p.name for p in register.people(actor)] for name, actor in
            (("worker", worker), ("other", other), ("supervisor", supervisor), ("elsewhere", elsewhere),
             ("admin", admin))}

    assert seen == {"worker": ["王大爷"], "other": [], "supervisor": ["王大爷"], "elsewhere": [], "admin": ["王大爷"]}
    with pytest.raises(RegisterError, match="本网格"):
        visit(register, other, [PersonEntry("赵奶奶", 90, [])])


def test_register_people_and_notes_are_erased_after_the_retention_period(database):
    worker = database.add_staff(user_id="w1")
    register = register_of(database)
    visit(register, worker, [PersonEntry("王大爷", 82, ["独居"])])

    erased = register.erase_before(database.clock() + timedelta(seconds=1))

    assert erased == 2 and register.people(worker) == []
    [old] = register.visits(worker)
    assert "王大爷" not in old.note and old.place == ""


def test_a_case_goes_from_acceptance_through_sessions_to_an_agreement_and_its_follow_up(database):
    worker = database.add_staff(user_id="w1")
    database.add_staff("supervisor", user_id="s1", community="jingcun")
    desk = desk_of(database)
    case_id = desk.open(worker, "楼上深夜拖拽家具，噪音扰民", "jingcun-01", None,
                        [PartyEntry("applicant", "王女士", "景村里3号楼401", "13812345678"),
                         PartyEntry("respondent", "赵先生", "景村里3号楼501")])

    desk.add_session(worker, case_id, database.clock(), "社区调解室", "双方、网格员", "双方陈述，约定再谈")
    mediating = desk.get(worker, case_id)[0].status
    due = desk.agree(worker, case_id, "一、晚十点后不拖拽家具；二、家具脚加装软垫。")
    with pytest.raises(CaseError, match="结案"):
        desk.add_session(worker, case_id, database.clock(), "", "", "再谈")
    database.clock.advance(days=14)
    early = desk.remind_followups(database.clock())
    database.clock.advance(days=1, seconds=1)
    reminded, again = desk.remind_followups(database.clock()), desk.remind_followups(database.clock())
    desk.record_followup(worker, case_id, "协议已履行，双方关系缓和")
    case, parties, sessions = desk.get(worker, case_id)

    assert mediating == "mediating" and case.status == "agreed" and len(sessions) == 1
    assert due - as_utc(case.agreed_at) == timedelta(days=15)
    assert (early, reminded, again) == (0, 1, 0)
    assert any("回访提醒" in m.text for m in database.messages_to("w1"))
    assert case.followup_outcome.startswith("协议已履行") and [p.role for p in parties] == ["applicant", "respondent"]
    assert desk.success_rate("jingcun") == (1, 1)


def test_a_failed_case_records_the_reason_and_the_way_forward(database):
    worker = database.add_staff(user_id="w1")
    desk = desk_of(database)
    case_id = desk.open(worker, "漏水赔偿纠纷", "jingcun-01", None, [PartyEntry("applicant", "李阿姨")])

    with pytest.raises(CaseError, match="途径"):
        desk.fail(worker, case_id, "对方拒绝赔偿", "shrug")
    desk.fail(worker, case_id, "对方拒绝赔偿", "court")
    case = desk.get(worker, case_id)[0]

    assert (case.status, case.guidance) == ("failed", "court")
    assert desk.success_rate() == (0, 1)
    with pytest.raises(CaseError):
        desk.agree(worker, case_id, "事后补充协议")


def test_a_worker_of_another_grid_sees_neither_the_case_nor_its_parties(database):
    worker = database.add_staff(user_id="w1")
    other = database.add_staff(user_id="w2", grids=("jingcun-02",))
    desk = desk_of(database)
    case_id = desk.open(worker, "噪音纠纷", "jingcun-01", None, [PartyEntry("applicant", "王女士")])

    with pytest.raises(CaseNotFound):
        desk.get(other, case_id)
    assert desk.cases(other) == [] and [c.id for c in desk.cases(worker)] == [case_id]
    with pytest.raises(CaseError, match="本网格"):
        desk.open(other, "不归我管的纠纷", "jingcun-01", None, [PartyEntry("applicant", "某人")])


def test_a_dispute_a_resident_reports_opens_a_case(database):
    desk = desk_of(database)
    database.store.listeners.append(lambda t, a, actor: desk.on_ticket(t, a, actor, database.store))
    worker = database.add_staff(user_id="w1")

    ticket = database.file("景村里3号楼楼上天天半夜吵，沟通没用，想请社区调解", kind="dispute")
    request = database.file("景村里3号楼2单元暖气不热", user_id="r2")

    [case] = desk.cases(worker)
    assert case.ticket_id == ticket.id and desk.case_of_ticket(request.id) is None
    assert desk.get(worker, case.id)[1][0].phone == "13812345678"


def test_parties_are_erased_after_the_retention_period(database):
    worker = database.add_staff(user_id="w1")
    desk = desk_of(database)
    case_id = desk.open(worker, "纠纷", "jingcun-01", None, [PartyEntry("applicant", "王女士", "3号楼", "13812345678")])
    desk.agree(worker, case_id, "和解")

    assert desk.erase_before(database.clock() + timedelta(seconds=1)) == 1
    [party] = desk.get(worker, case_id)[1]
    assert (party.name, party.place, party.phone) == ("（已删除）", "", "")
