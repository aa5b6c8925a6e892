"""Staff: invite codes, /bind, and what staff and residents can do and see in the chat (service wired from a config)."""

from __future__ import annotations

import pytest

from bot.app import build_service
from bot.core import texts
from bot.core.messages import Incoming
from bot.settings import load_settings
from bot.errors import BotError
from bot.tickets.staff import InviteError
from bot.tickets.store import Actor

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"
PHONE = "13812345678"


@pytest.fixture
def service(database, tmp_path):
    """The whole service built from a temporary config on the test database, sharing its fake clock."""
    svc = build_service(load_settings(database.config(tmp_path / "service")), clock=database.clock)
    yield svc
    svc.engine.dispose()


def say(service, user: str, text: str) -> list:
    return service.conversation.handle(Incoming("telegram", user, text=text))


def press(service, user: str, payload: str) -> list:
    return service.conversation.handle(Incoming("telegram", user, button=payload, kind="button"))


def joined(replies) -> str:
    return "\n".join(r.text for r in replies)


def bind(service, user: str, role: str = "worker", grids=("jingcun-01",), community=None, name="") -> None:
    code = service.staff.create_invite(role, list(grids) if role == "worker" else [], community, name)
    assert "绑定成功" in joined(say(service, user, f"/bind {code}"))


# -- invite codes --------------------------------------------------------------------------


def test_a_wrong_invite_code_is_refused(database):
    database.staff.create_invite("worker", ["jingcun-01"])

    with pytest.raises(InviteError, match="邀请码不正确"):
        database.staff.bind("ABCD2345EF", "telegram", "w1")

    assert database.staff.find("telegram", "w1") is None


def test_a_used_invite_code_is_refused_the_second_time(database):
    code = database.staff.create_invite("worker", ["jingcun-01"], name="王芳")
    database.staff.bind(code, "telegram", "w1")

    with pytest.raises(InviteError, match="已经用过"):
        database.staff.bind(code, "telegram", "someone-else")

    assert database.staff.find("telegram", "someone-else") is None


def test_an_expired_invite_code_is_refused_and_a_fresh_one_still_works(database):
    old = database.staff.create_invite("worker", ["jingcun-01"], ttl_hours=72)
    database.clock.advance(hours=48)
    fresh = database.staff.create_invite("worker", ["jingcun-02"], ttl_hours=72)
    database.clock.advance(hours=25)

    with pytest.raises(InviteError, match="过期"):
        database.staff.bind(old, "telegram", "w1")
    staff = database.staff.bind(fresh, "telegram", "w1")

    assert staff.grids == ["jingcun-02"]


def test_an_invite_for_an_unknown_grid_is_not_created(database):
    with pytest.raises(InviteError, match="未知网格"):
        database.staff.create_invite("worker", ["jingcun-99"])


# -- binding and commands in the chat -------------------------------------------------------------


def test_binding_in_the_chat_makes_the_user_the_grids_worker(service, database):
    code = service.staff.create_invite("worker", ["jingcun-01"], name="王芳")

    replies = say(service, "w1", f"/bind {code.lower()}")  # typed by hand, in lower case

    assert "绑定成功" in joined(replies) and "网格员" in joined(replies)
    staff = service.staff.find("telegram", "w1")
    assert (staff.role, staff.grids, staff.name) == ("worker", ["jingcun-01"], "王芳")
    ticket = database.file(HEATING)
    assert ticket.assignee_id == staff.id


def test_a_wrong_code_in_the_chat_gets_a_clear_chinese_reply(service):
    replies = say(service, "w1", "/bind NOPE23XYZ9")

    assert "邀请码不正确" in joined(replies)
    assert service.staff.find("telegram", "w1") is None


def test_a_resident_sending_staff_commands_gets_the_staff_only_reply_and_nothing_changes(service, database):
    bind(service, "w1")
    ticket = database.file(HEATING, user_id="r1")

    for replies in (say(service, "r2", "/tickets"), say(service, "r2", f"/ticket {ticket.id}"),
                    press(service, "r2", f"t:accept:{ticket.id}"), press(service, "r2", f"t:resolve:{ticket.id}")):
        assert [r.text for r in replies] == [texts.STAFF_ONLY]

    assert database.store.get(ticket.id).status == "assigned"
    assert database.count_events(ticket.id, "accept") == 0
    assert PHONE not in joined(say(service, "r2", f"/ticket {ticket.id}"))


def test_a_worker_of_another_grid_cannot_view_the_ticket_and_never_sees_the_phone(service, database):
    bind(service, "w1")
    bind(service, "w-other", grids=("jingcun-02",))
    ticket = database.file(HEATING, phone=PHONE)

    shown = say(service, "w-other", f"/ticket {ticket.id}")
    listed = say(service, "w-other", "/tickets")
    pressed = press(service, "w-other", f"t:accept:{ticket.id}")

    assert "没有找到" in joined(shown) and "没有找到" in joined(pressed)
    assert ticket.id not in joined(listed)
    seen = joined(shown + listed + pressed) + "".join(m.text for m in database.messages_to("w-other"))
    assert PHONE not in seen and "5678" not in seen
    assert database.store.get(ticket.id).status == "assigned"


def test_a_colleague_in_the_same_grid_sees_the_ticket_with_the_phone_masked(service, database):
    bind(service, "w1")
    ticket = database.file(HEATING, phone=PHONE)
    bind(service, "w2")  # joined after the ticket was assigned to w1

    colleague = joined(say(service, "w2", f"/ticket {ticket.id}"))
    assignee = joined(say(service, "w1", f"/ticket {ticket.id}"))

    assert ticket.id in colleague and PHONE not in colleague and "138****5678" in colleague
    assert PHONE in assignee


def test_a_supervisor_of_another_community_cannot_view_the_ticket(service, database):
    bind(service, "w1")
    bind(service, "boss-huajiang", role="supervisor", community="huajiang")
    bind(service, "boss-jingcun", role="supervisor", community="jingcun")
    ticket = database.file(HEATING)

    assert "没有找到" in joined(say(service, "boss-huajiang", f"/ticket {ticket.id}"))
    assert PHONE in joined(say(service, "boss-jingcun", f"/ticket {ticket.id}"))


def test_tickets_lists_the_workers_tickets_soonest_deadline_first(service, database):
    bind(service, "w1")
    noise = database.file("景村里2号楼隔壁天天装修电钻响，吵得睡不着", user_id="r1")  # general: 24 h, due at 24:00
    database.clock.advance(minutes=30)
    heating = database.file(HEATING, user_id="r2")  # utility: 2 h, due at 2:30
    database.clock.advance(minutes=30)
    gas = database.file("景村里5号楼天然气停了做不了饭", user_id="r3", sla_class="emergency")  # 1 h, due at 2:00

    listing = joined(say(service, "w1", "/tickets"))

    positions = [listing.index(t.id) for t in (gas, heating, noise)]
    assert positions == sorted(positions), listing


def test_a_worker_accepts_and_resolves_with_buttons_and_the_resident_rates_by_text(service, database):
    bind(service, "w1")
    ticket = database.file(HEATING, user_id="r1")

    accepted = press(service, "w1", f"t:accept:{ticket.id}")
    asked = press(service, "w1", f"t:resolve:{ticket.id}")
    resolved = say(service, "w1", "暖气片里有空气，放完气已经热了")
    rated = say(service, "r1", "5")

    assert "已接单" in joined(accepted) and "怎么处理" in joined(asked) and "已办结反馈" in joined(resolved)
    assert "谢谢您的评价" in joined(rated)
    stored = database.store.get(ticket.id)
    assert (stored.status, stored.rating, stored.resolution_note) == ("closed", 5, "暖气片里有空气，放完气已经热了")


def test_a_worker_off_duty_when_a_report_came_takes_it_from_the_chat(service, database):
    from sqlalchemy import update

    from bot.tickets.models import Staff

    bind(service, "w1")
    with database.sessions.begin() as s:
        s.execute(update(Staff).where(Staff.user_id == "w1").values(on_duty=False))
    ticket = database.file(HEATING, phone=PHONE)  # nobody on duty: it waits as 待派单
    assert ticket.status == "new"

    listing = joined(say(service, "w1", "/tickets"))
    shown = say(service, "w1", f"/ticket {ticket.id}")
    took = press(service, "w1", f"t:take:{ticket.id}")

    assert ticket.id in listing and "无人接" in listing
    assert PHONE not in joined(shown)  # not theirs yet: masked
    assert f"t:take:{ticket.id}" in [b.payload for r in shown for b in r.buttons]
    assert "已派给您" in joined(took) and f"t:accept:{ticket.id}" in [b.payload for r in took for b in r.buttons]
    assert database.store.get(ticket.id).status == "assigned"
    assert PHONE in joined(say(service, "w1", f"/ticket {ticket.id}"))


# -- people leave, invites are withdrawn -----------------------------------------------------------


def test_a_deactivated_worker_is_refused_and_their_open_tickets_go_to_a_colleague(service, database):
    bind(service, "w1", name="王芳")
    ticket = database.file(HEATING, phone=PHONE)
    bind(service, "w2", name="李娜")  # same grid, joined later
    bind(service, "admin", role="admin")
    admin = service.staff.find("telegram", "admin")
    leaver = service.staff.find("telegram", "w1")

    rerouted = service.staff.deactivate(leaver.id, Actor.of(admin))

    colleague = service.staff.find("telegram", "w2")
    assert rerouted == [ticket.id] and database.store.get(ticket.id).assignee_id == colleague.id
    assert service.staff.find("telegram", "w1") is None
    assert joined(say(service, "w1", "/tickets")) == texts.STAFF_ONLY
    assert PHONE in joined(say(service, "w2", f"/ticket {ticket.id}"))
    later = database.file("景村里5号楼楼道堆了好多纸箱子", user_id="r2")
    assert database.store.get(later.id).assignee_id == colleague.id  # never routed to someone who left
    [entry] = [e for e in service.staff.audit.recent() if e.action == "staff_deactivate"]
    assert "王芳" in entry.target and entry.actor == f"staff:{admin.id}" and "重新派单 1 张" in entry.detail


def test_an_admin_cannot_deactivate_themselves_or_someone_already_gone(service):
    bind(service, "admin", role="admin")
    bind(service, "w1")
    admin = Actor.of(service.staff.find("telegram", "admin"))
    worker = service.staff.find("telegram", "w1")

    with pytest.raises(BotError, match="自己"):
        service.staff.deactivate(admin.staff_id, admin)
    service.staff.deactivate(worker.id, admin)
    with pytest.raises(BotError, match="在职"):
        service.staff.deactivate(worker.id, admin)


def test_a_revoked_invite_no_longer_binds_and_leaves_the_open_list(service):
    keep = service.staff.create_invite("worker", ["jingcun-01"], None, "留着的")
    drop = service.staff.create_invite("worker", ["jingcun-02"], None, "撤销的")
    listed = {i.name: i.id for i in service.staff.open_invites()}

    service.staff.revoke_invite(listed["撤销的"], "staff:1")

    assert [i.name for i in service.staff.open_invites()] == ["留着的"]
    assert "过期" in joined(say(service, "w9", f"/bind {drop}"))
    assert "绑定成功" in joined(say(service, "w8", f"/bind {keep}"))
    assert [e.action for e in service.staff.audit.recent()][:2] == ["invite_revoke", "invite"]


def test_staff_help_lists_the_staff_commands_and_a_residents_does_not(service):
    bind(service, "w1")
    bind(service, "a1", role="admin")

    worker, admin, resident = (joined(say(service, user, "/help")) for user in ("w1", "a1", "r1"))

    assert "/tickets" in worker and "/ticket 工单号" in worker and "/console" in worker and "/reingest" not in worker
    assert "/reingest" in admin
    assert "/tickets" not in resident and resident == texts.HELP
