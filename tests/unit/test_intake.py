"""Intake (智能采集) with fakes: ask only for what is missing, validate the phone, confirm, change, cancel."""

from __future__ import annotations

import pytest

from bot.core.intake import ASK_PHONE, ASK_PLACE, ASK_TIME, CHANGE_BUTTONS, CONFIRM_BUTTONS, TIME_BUTTONS, Intake
from bot.core.messages import Incoming, Location
from tests.fakes import FakeCategorizer, FakePlaces, MemoryTicketDesk


@pytest.fixture
def desk() -> MemoryTicketDesk:
    return MemoryTicketDesk()


@pytest.fixture
def intake(desk) -> Intake:
    return Intake(desk, FakePlaces(), FakeCategorizer())


def said(text: str = "", **kw) -> Incoming:
    return Incoming("telegram", "r1", text=text, **kw)


def pressed(payload: str) -> Incoming:
    return Incoming("telegram", "r1", button=payload, kind="button")


def walk_on(intake: Intake, state, *steps: Incoming | str):
    """Feed each step (text, or an Incoming such as a button); return (state, last replies)."""
    replies = []
    for step in steps:
        state, replies = intake.step(state, said(step) if isinstance(step, str) else step)
    return state, replies


def walk(intake: Intake, first: str, *steps: Incoming | str, kind: str = "request"):
    """Start with the first message, then feed each step; return (state, last replies)."""
    state, replies = intake.start(said(first), kind=kind)
    return walk_on(intake, state, *steps) if steps else (state, replies)


def test_a_first_message_with_place_and_category_asks_only_for_the_phone(intake):
    state, replies = intake.start(said("景村里3号楼2单元暖气不热，屋里冻死了"))

    assert [r.text for r in replies] == [ASK_PHONE]
    assert (state.category, state.sla_class, state.place) == ("供暖", "utility", "景村里3号楼2单元")
    assert state.asking == "phone"


def test_a_first_message_without_a_place_asks_for_the_place(intake):
    _, replies = intake.start(said("暖气一直不热，能不能派人来看看"))

    assert [r.text for r in replies] == [ASK_PLACE]


def test_after_the_phone_it_asks_for_a_time_then_shows_the_summary_to_confirm(intake, desk):
    state, asked_time = walk(intake, "景村里3号楼2单元暖气不热", "13812345678")
    state, summary = intake.step(state, pressed("intake:time:晚上"))

    assert asked_time[0].text == ASK_TIME and asked_time[0].buttons == TIME_BUTTONS
    assert summary[0].buttons == CONFIRM_BUTTONS
    for shown in ("类别：供暖", "位置：景村里3号楼2单元", "电话：13812345678", "联系时间：晚上"):
        assert shown in summary[0].text
    assert desk.drafts == []  # nothing is filed before the resident confirms


def test_confirming_files_the_ticket_and_gives_its_number(intake, desk):
    state, _ = walk(intake, "景村里3号楼2单元暖气不热", "13812345678", pressed("intake:time:晚上"))

    state, replies = intake.step(state, pressed("intake:confirm"))

    assert state is None
    [draft] = desk.drafts
    assert (draft.category, draft.place, draft.phone, draft.contact_time) == ("供暖", "景村里3号楼2单元", "13812345678", "晚上")
    assert replies[0].ticket_id == "T00000001" and "T00000001" in replies[0].text


@pytest.mark.parametrize("wrong", ["138123", "12345678901", "电话是幺三八"])
def test_an_invalid_phone_is_refused_with_a_hint(intake, wrong):
    state, replies = walk(intake, "景村里3号楼2单元暖气不热", wrong)

    assert "号码好像不对" in replies[0].text and "13812345678" in replies[0].text
    assert state.asking == "phone" and state.phone == ""


@pytest.mark.parametrize("typed, stored", [
    ("我电话139 1234 5678", "13912345678"),
    ("+86 139-1234-5678", "13912345678"),
    ("家里座机022-28001234", "022-28001234"),
])
def test_mobile_and_landline_numbers_are_accepted_as_people_type_them(intake, typed, stored):
    state, replies = walk(intake, "景村里3号楼2单元暖气不热", typed)

    assert state.phone == stored and replies[0].text == ASK_TIME


def test_change_lets_the_resident_fix_the_phone_and_returns_to_the_summary(intake):
    state, _ = walk(intake, "景村里3号楼2单元暖气不热", "13812345678", pressed("intake:time:晚上"))

    state, which = intake.step(state, pressed("intake:change"))
    state, asked = intake.step(state, pressed("intake:edit:phone"))
    state, summary = intake.step(state, said("打这个吧 13987654321"))

    assert which[0].buttons == CHANGE_BUTTONS and asked[0].text == ASK_PHONE
    assert "电话：13987654321" in summary[0].text and "联系时间：晚上" in summary[0].text
    assert summary[0].buttons == CONFIRM_BUTTONS


def test_change_of_the_place_matches_the_new_building(intake, desk):
    state, _ = walk(intake, "景村里3号楼2单元暖气不热", "13812345678", pressed("intake:time:晚上"),
                    pressed("intake:change"), pressed("intake:edit:place"), "不对，是华江里12号楼")

    intake.step(state, pressed("intake:confirm"))

    assert (desk.drafts[0].place, desk.drafts[0].building_id) == ("华江里12号楼", "华江里-12")


def test_cancel_files_nothing(intake, desk):
    state, _ = walk(intake, "景村里3号楼2单元暖气不热", "13812345678", pressed("intake:time:晚上"))

    state, replies = intake.step(state, pressed("intake:cancel"))

    assert state is None and desk.drafts == [] and "已取消" in replies[0].text


def test_other_words_at_the_summary_say_how_to_confirm_or_change_and_file_nothing(intake, desk):
    state, _ = walk(intake, "景村里3号楼2单元暖气不热", "13812345678", pressed("intake:time:晚上"))

    state, replies = intake.step(state, said("好的好的"))

    assert "确认提交" in replies[0].text and "电话改成" in replies[0].text and replies[0].buttons == CONFIRM_BUTTONS
    assert desk.drafts == [] and state.asking == "confirm"


def test_an_emergency_with_place_and_phone_is_filed_at_once_without_confirmation(intake, desk):
    state, replies = intake.start(said("景村里3号楼502厨房一股煤气味，我电话13812345678"), kind="emergency")

    [draft] = desk.drafts
    assert draft.urgent and draft.sla_class == "emergency" and draft.phone == "13812345678"
    assert replies[0].ticket_id and "紧急工单" in replies[0].text
    assert state.asking is None


def test_an_emergency_without_a_phone_asks_for_it_then_files_without_asking_the_time(intake, desk):
    state, asked = intake.start(said("景村里3号楼502厨房一股煤气味"), kind="emergency")
    state, filed = intake.step(state, said("13812345678"))

    assert asked[0].text == ASK_PHONE
    assert len(desk.drafts) == 1 and desk.drafts[0].contact_time == "" and filed[0].ticket_id


def test_a_location_without_a_known_grid_is_kept_as_the_place(intake):
    state, _ = intake.start(said("路灯不亮，黑乎乎的"))

    state, replies = intake.step(state, said(location=Location(39.1, 117.2, "友谊路与紫金山路交口"), kind="location"))

    assert state.place == "友谊路与紫金山路交口" and (state.lat, state.lon) == (39.1, 117.2)
    assert replies[0].text == ASK_PHONE


def test_photos_sent_during_the_report_go_with_the_ticket(intake, desk):
    state, _ = intake.start(said("景村里5号楼楼道堆了好多杂物"))
    state, _ = intake.step(state, said(photos=("file-1", "file-2"), kind="photo"))
    state, _ = walk_on(intake, state, "13812345678", pressed("intake:time:随时"), pressed("intake:confirm"))

    assert desk.drafts[0].photos == ["file-1", "file-2"]


def test_reporting_the_same_problem_again_says_it_was_added_to_the_open_ticket(intake, desk):
    steps = ("13812345678", pressed("intake:time:晚上"), pressed("intake:confirm"))
    _, first = walk(intake, "景村里3号楼2单元暖气不热", *steps)

    _, again = walk(intake, "景村里3号楼2单元暖气还是不热", *steps)

    assert len(desk.drafts) == 1 and again[0].ticket_id == first[0].ticket_id
    assert "已经反映过" in again[0].text and "不会重复派单" in again[0].text
