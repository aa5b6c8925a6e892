"""A report as residents really give one: interrupted, corrected in words, called off, without a phone.

Each message of a report is read for what it is before it is used as the answer
asked for (core/conversation.py _during_intake); these run on the in-memory fakes.
"""

from __future__ import annotations

import pytest

from bot.core import texts
from bot.core.dialogue import DialogueState
from bot.core.intake import ASK_PHONE, ASK_PLACE, ASK_TIME, NO_PHONE_OK, NOT_A_PLACE, WHY_PHONE
from bot.core.messages import Incoming
from tests.fakes import make_conversation


@pytest.fixture
def chat():
    conversation, fakes = make_conversation()

    def say(text: str):
        return conversation.handle(Incoming("telegram", "r1", text=text))

    def press(payload: str):
        return conversation.handle(Incoming("telegram", "r1", button=payload, kind="button"))

    def state() -> DialogueState:
        return fakes["dialogues"].load("telegram", "r1")

    return say, press, state, fakes


def all_text(replies) -> str:
    return "\n".join(r.text for r in replies)


def test_a_question_while_the_place_is_asked_is_answered_and_the_report_goes_on(chat):
    say, press, state, fakes = chat
    say("楼道灯坏了一个星期了")

    replies = say("顺便问下，老人家食堂办卡要带什么材料？")

    assert replies[0].citations and "身份证" in replies[0].text
    assert "刚才的登记还没提交" in replies[-1].text and ASK_PLACE in replies[-1].text
    assert state().intake.description == "楼道灯坏了一个星期了" and state().intake.place == ""
    say("景村里2号楼")
    say("13700001234")
    press("intake:time:随时")
    [filed] = press("intake:confirm")
    assert filed.ticket_id and fakes["desk"].drafts[0].place == "景村里2号楼"
    assert "食堂" not in fakes["desk"].drafts[0].description


def test_words_that_are_no_place_are_not_stored_as_the_place(chat):
    say, _, state, _ = chat
    say("厨房水管漏水了")

    replies = say("你是机器人吗")

    assert texts.ABOUT in all_text(replies) and "电话" not in all_text(replies)
    assert state().intake.place == "" and state().intake.asking == "place"
    assert say("不知道")[0].text == NOT_A_PLACE


@pytest.mark.parametrize("words", ["不用了，车已经开走了", "算了，不报了", "已经修好了"])
def test_cancelling_in_words_files_nothing_and_the_next_question_is_answered(chat, words):
    say, _, state, fakes = chat
    say("楼下乱停车堵住了单元门，请尽快处理")

    replies = say(words)

    assert replies[0].text == texts.REPORT_CANCELLED and state().intake is None
    answer = say("老人家食堂办卡要带什么材料？")
    assert answer[0].citations and fakes["desk"].drafts == []


def test_a_phone_corrected_in_words_at_the_summary_replaces_the_old_one(chat):
    say, press, _, fakes = chat
    say("景村里2号楼暖气不热")
    say("13700002222")
    press("intake:time:晚上")

    replies = say("电话写错了，是13700003333")

    assert "已更正电话" in replies[0].text and "13700003333" in replies[-1].text
    assert "13700002222" not in replies[-1].text
    press("intake:confirm")
    assert fakes["desk"].drafts[0].phone == "13700003333"




@pytest.mark.parametrize("first,correction,place,description", [
    ("景村里3号楼楼道堆满了杂物，麻烦派人来清理，电话13911112345，晚上联系我", "不对，是5号楼，不是3号楼",
     "景村里5号楼", None),  # the building corrected: the estate kept
    ("景村里3号楼楼道灯不亮，麻烦派人来修，电话13911112345，晚上联系我", "小区说错了，不是景村里，是华江里",
     "华江里3号楼", None),  # the estate corrected: the building kept
    ("景村里3号楼暖气不热，电话13911112345，晚上联系我", "问题说错了，是厨房漏水", "景村里3号楼", "厨房漏水"),
    ("景村里2号楼楼道灯不亮，麻烦派人来修，电话13911112345，晚上联系我", "我说错了，灯是好的，是楼道的窗户关不上",
     "景村里2号楼", "楼道的窗户关不上"),  # no slot named: words that are no place change the problem
])
def test_a_correction_in_words_at_the_summary_changes_what_it_names(chat, first, correction, place, description):
    say, _, state, _ = chat
    say(first)

    say(correction)

    draft = state().intake
    assert draft.place == place and draft.asking == "confirm"
    if description is not None:
        assert draft.description == description



def test_a_resident_without_a_phone_may_report_and_the_ticket_says_so(chat):
    say, press, state, fakes = chat
    say("景村里2号楼门口的井盖松了，麻烦尽快修一下")

    replies = say("没有手机，能不留电话吗")

    assert replies[0].text == NO_PHONE_OK and "好像不对" not in all_text(replies)
    assert any(b.payload == "intake:confirm" for b in replies[-1].buttons)  # no time to call without a phone
    press("intake:confirm")
    [draft] = fakes["desk"].drafts
    assert draft.phone == "" and "未留电话" in draft.description


def test_why_a_phone_is_asked_is_explained_with_a_way_to_skip_it(chat):
    say, press, state, _ = chat
    say("景村里4号楼电梯坏了")

    [why] = say("为什么要留电话")

    assert why.text == WHY_PHONE and [b.payload for b in why.buttons] == ["intake:no_phone"]
    press("intake:no_phone")
    assert state().intake.no_phone and state().intake.asking == "confirm"


def test_an_emergency_in_the_middle_of_a_report_gets_the_numbers_at_once(chat):
    say, _, state, _ = chat
    say("楼道灯不亮了")

    replies = say("楼下冒烟了好像着火了")

    assert "119" in replies[0].text and state().intake.kind == "emergency"


def test_a_status_question_in_the_middle_of_a_report_lists_tickets_and_keeps_the_report(chat):
    say, _, state, _ = chat
    say("景村里1号楼下水道堵了")

    replies = say("我之前报的暖气的事有人管了吗")

    assert "好像不对" not in all_text(replies) and ASK_PHONE in replies[-1].text
    assert state().intake.description == "景村里1号楼下水道堵了"


def test_everything_in_one_message_goes_straight_to_the_summary(chat):
    say, _, state, _ = chat

    [summary] = say("景村里1号楼3单元楼道堆满杂物，电话13600001111，晚上联系我")

    assert [b.payload for b in summary.buttons][0] == "intake:confirm"
    assert "景村里1号楼3单元" in summary.text and "13600001111" in summary.text and "晚上联系" in summary.text


def test_a_time_to_call_in_free_words(chat):
    say, _, state, _ = chat
    say("景村里1号楼3单元楼道堆满杂物")
    assert say("13600001111")[0].text == ASK_TIME

    say("下班以后都在家")

    assert state().intake.contact_time == "下班以后都在家" and state().intake.asking == "confirm"


def test_two_problems_in_one_message_are_listed_in_one_ticket(chat):
    say, press, state, fakes = chat
    say("景村里2号楼暖气不热，楼道里还堆了很多纸箱")
    say("13800004444")

    [summary] = press("intake:time:随时")

    assert "问题（2件" in summary.text and "暖气不热" in summary.text and "纸箱" in summary.text
    press("intake:confirm")
    assert len(fakes["desk"].drafts) == 1 and "1. " in fakes["desk"].drafts[0].description


def test_what_a_problem_causes_is_not_listed_as_a_second_problem(chat):
    say, press, state, fakes = chat
    say("景村里2号楼电梯又坏了，老人下不了楼")  # the second clause only resembles a category (养老服务)
    say("13800004444")

    [summary] = press("intake:time:随时")

    assert "问题（" not in summary.text and "类别：电梯" in summary.text
    assert state().intake.problems == []


def test_a_plain_question_is_answered_not_taken_for_a_report(chat):
    say, _, state, _ = chat

    [reply] = say("老人家食堂能办卡吗？带什么材料")

    assert reply.citations and state().intake is None


def test_giving_up_the_phone_is_not_giving_up_the_report(chat):
    say, _, state, _ = chat
    say("景村里2号楼门口的井盖松了，麻烦尽快修一下")

    replies = say("那算了不留了")

    assert replies[0].text == NO_PHONE_OK and state().intake is not None and state().intake.no_phone


def test_an_estate_alone_gets_one_question_for_the_building_and_a_later_detail_is_added(chat):
    say, _, state, fakes = chat
    say("小区门口路灯不亮了，麻烦修一下")
    replies = say("华江里")
    assert "华江里几号楼" in replies[0].text

    say("一三八一二三四五六七八")  # the number first, said digit by digit
    assert state().intake.phone == "13812345678" and state().intake.asking == "contact_time"

    replies = say("具体是3号楼门口")

    assert "已补充位置" in replies[0].text and state().intake.place.startswith("华江里3号楼")


def test_words_without_a_number_at_the_phone_ask_again_instead_of_calling_them_a_wrong_number(chat):
    say, _, state, _ = chat
    say("景村里2号楼门口的井盖松了，麻烦尽快修一下")

    [reply] = say("好的，那帮我申请一下")

    assert reply.text == ASK_PHONE and state().intake.asking == "phone"


def test_asking_about_a_report_just_filed_lists_it_instead_of_starting_another(chat):
    say, press, state, fakes = chat
    say("景村里1号楼3单元楼道堆满杂物，电话13600001111，晚上联系我")
    press("intake:confirm")

    replies = say("我刚才申请的那个有人管了吗")

    assert replies[0].intent == "followup" and state().intake is None and len(fakes["desk"].drafts) == 1


def test_fear_of_being_known_as_the_reporter_is_answered_and_the_report_goes_on(chat):
    say, _, state, _ = chat
    say("景村里2号楼隔壁天天晚上打麻将吵得睡不着，麻烦管一管")

    replies = say("我不想让邻居知道是我反映的")

    assert replies[0].text == texts.CONFIDENTIAL and state().intake is not None
    assert replies[0].intent != "followup"




@pytest.mark.parametrize("words", ["当我没说吧", "先搁着吧，改天再说", "我老公刚拿皮搋子给通开了，没事了"])
def test_everyday_ways_of_calling_it_off(chat, words):
    say, _, state, fakes = chat
    say("景村里1号楼下水道堵了，麻烦派人来通一下")

    assert say(words)[0].text == texts.REPORT_CANCELLED and state().intake is None and not fakes["desk"].drafts


def test_calling_it_off_and_asking_something_else_in_one_message_answers_the_question(chat):
    say, _, state, _ = chat
    say("景村里1号楼下水道堵了，麻烦派人来通一下")

    replies = say("算了先不说这个，我想问问老人家食堂办卡要带什么材料")

    assert replies[0].text == texts.REPORT_CANCELLED and replies[1].citations


def test_a_phone_and_a_time_in_the_first_message_are_not_listed_as_problems(chat):
    say, _, state, _ = chat

    [summary] = say("景村里2号楼暖气不热，我手机号15900112233，下午都能打")

    assert "问题（" not in summary.text and state().intake.problems == []


def test_asking_whether_anyone_will_act_is_reassured_and_the_report_goes_on(chat):
    say, _, state, _ = chat
    say("楼上天天半夜拖椅子吵得睡不着，麻烦管一管")

    replies = say("你们能管吗")

    assert replies[0].text == texts.WILL_ACT and ASK_PLACE in replies[-1].text and state().intake is not None
