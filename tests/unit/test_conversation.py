"""The conversation on fakes: greeting, grounded answers, hand-off, unsure, follow-ups, emergencies, ratings."""

from __future__ import annotations

import pytest

from bot.core import texts
from bot.core.conversation import MAX_TEXT
from bot.core.intake import ASK_PHONE, ASK_PLACE
from bot.core.messages import Incoming
from bot.core.ports import TicketDraft
from tests.fakes import make_conversation


@pytest.fixture
def chat():
    """Return (say, press, fakes): say(text, **incoming) and press(payload) send as resident r1."""
    conversation, fakes = make_conversation()

    def say(text: str = "", user: str = "r1", **kw):
        return conversation.handle(Incoming("telegram", user, text=text, **kw))

    def press(payload: str, user: str = "r1"):
        return conversation.handle(Incoming("telegram", user, button=payload, kind="button"))

    return say, press, fakes


def state_of(fakes, user: str = "r1") -> dict:
    return fakes["dialogues"].rows[("telegram", user)]


def test_a_greeting_gets_a_greeting(chat):
    say, _, _ = chat

    replies = say("你好呀")

    assert [(r.text, r.intent) for r in replies] == [(texts.GREETING, "greeting")]


def test_a_question_is_answered_from_the_documents_with_a_citation(chat):
    say, _, fakes = chat

    [reply] = say("老人家食堂办助餐卡要带啥材料？")

    assert reply.intent == "question" and "身份证" in reply.text
    assert reply.citations and reply.citations[0].title == "河西区老人家食堂助餐服务办理指南"
    assert "来源：《河西区老人家食堂助餐服务办理指南" in reply.text


def button(reply, label: str) -> str:
    """The payload of the reply's button with this label (the test fails when there is none)."""
    [payload] = [b.payload for b in reply.buttons if b.label == label]
    return payload


HANDOFF, JUST_ASKING = "转给工作人员", "只是咨询，不用派单"


def test_a_question_the_documents_do_not_cover_says_so_and_offers_a_handoff(chat):
    say, _, _ = chat

    [reply] = say("公租房摇号什么时候出结果？")

    assert reply.text == texts.NOT_COVERED and not reply.citations
    assert [b.label for b in reply.buttons] == [HANDOFF] and button(reply, HANDOFF).startswith("handoff:")


def test_pressing_handoff_starts_a_report_with_the_question_as_its_description(chat):
    say, press, fakes = chat
    [reply] = say("公租房摇号什么时候出结果？")

    replies = press(button(reply, HANDOFF))

    assert replies[0].text == ASK_PLACE
    assert state_of(fakes)["intake"]["description"] == "公租房摇号什么时候出结果？"


def test_an_answer_offers_the_handoff_so_a_report_read_as_a_question_is_one_tap_from_a_ticket(chat):
    say, press, fakes = chat
    [answer] = say("卧室温度只有十五度，这正常吗？")

    replies = press(button(answer, HANDOFF))

    assert answer.intent == "question" and answer.citations and [b.label for b in answer.buttons] == [HANDOFF]
    assert replies[0].text == ASK_PLACE
    assert state_of(fakes)["intake"]["description"] == "卧室温度只有十五度，这正常吗？"


def test_an_older_answers_handoff_files_that_answers_question(chat):
    say, press, fakes = chat
    [first] = say("卧室温度只有十五度，这正常吗？")
    say("公租房摇号什么时候出结果？")
    say("老人助餐卡")
    press("choose:question")

    press(button(first, HANDOFF))

    assert state_of(fakes)["intake"]["description"] == "卧室温度只有十五度，这正常吗？"
    assert fakes["feedback"].rows[-1] == ("telegram", "卧室温度只有十五度，这正常吗？", "request", "corrected")


def test_a_handoff_button_works_once(chat):
    say, press, fakes = chat
    [answer] = say("卧室温度只有十五度，这正常吗？")
    press(button(answer, HANDOFF))
    say("/cancel")

    [reply] = press(button(answer, HANDOFF))

    assert "过期" in reply.text and state_of(fakes)["intake"] is None


def test_a_follow_ups_handoff_files_it_with_the_topic_it_leans_on(chat):
    say, press, fakes = chat
    say("老人家食堂怎么报名？")
    [answer] = say("那需要带什么材料")

    press(button(answer, HANDOFF))

    description = state_of(fakes)["intake"]["description"]
    assert description.endswith("那需要带什么材料") and "老人家食堂" in description


def test_a_message_read_as_a_report_offers_a_way_back_to_a_plain_answer_and_files_nothing(chat):
    say, press, fakes = chat
    [asked] = say("老人家食堂助餐卡到期了请尽快处理")

    [answer] = press(button(asked, JUST_ASKING))

    assert asked.text == ASK_PLACE
    assert answer.intent == "question" and answer.citations
    assert fakes["retriever"].queries[-1] == "老人家食堂助餐卡到期了请尽快处理"
    assert state_of(fakes)["intake"] is None and fakes["desk"].drafts == []


@pytest.mark.parametrize("start", [("/report 楼道里堆满了杂物",), ("3号楼2单元暖气", "choose:request")])
def test_a_report_the_resident_chose_has_no_way_back_button(chat, start):
    say, press, fakes = chat
    replies = say(start[0])
    if len(start) > 1:
        replies = press(start[1])

    assert replies[-1].text in (ASK_PLACE, ASK_PHONE) and state_of(fakes)["intake"] is not None
    assert all(b.label != JUST_ASKING for r in replies for b in r.buttons)


def test_an_old_answers_handoff_button_keeps_the_report_being_typed(chat):
    say, press, fakes = chat
    [answer] = say("供暖期间室温标准是多少度？")
    say("/report 楼道里堆满了杂物")

    [reply] = press(button(answer, HANDOFF))

    assert "/cancel" in reply.text
    assert state_of(fakes)["intake"]["description"] == "楼道里堆满了杂物"


def test_an_old_way_back_button_keeps_the_report_being_typed(chat):
    say, press, fakes = chat
    [asked] = say("老人家食堂助餐卡到期了请尽快处理")
    press("intake:cancel")
    say("/report 景村里3号楼楼道里堆满了杂物 13812345678")

    [reply] = press(button(asked, JUST_ASKING))

    assert "过期" in reply.text and "/cancel" in reply.text
    assert state_of(fakes)["intake"]["description"] == "景村里3号楼楼道里堆满了杂物 13812345678"
    assert fakes["feedback"].rows == []


def test_the_way_back_button_after_the_report_was_filed_says_it_is_over(chat):
    say, press, fakes = chat
    [asked] = say("老人家食堂助餐卡到期了请尽快处理景村里3号楼 13812345678")
    press("intake:time:随时")
    press("intake:confirm")

    [reply] = press(button(asked, JUST_ASKING))

    assert "已经结束" in reply.text and len(fakes["desk"].drafts) == 1


# -- the resident's own choices are kept as labelled examples (storage/intent_feedback.py) --

@pytest.mark.parametrize("payload, label", [("choose:question", "question"), ("choose:request", "request")])
def test_choosing_at_the_unsure_buttons_keeps_the_message_with_the_chosen_meaning(chat, payload, label):
    say, press, fakes = chat
    say("老人助餐卡")

    press(payload)

    assert fakes["feedback"].rows == [("telegram", "老人助餐卡", label, "chose")]


def test_undoing_a_guessed_report_keeps_the_message_as_a_question(chat):
    say, press, fakes = chat
    [asked] = say("老人家食堂助餐卡到期了请尽快处理")

    press(button(asked, JUST_ASKING))

    assert fakes["feedback"].rows == [("telegram", "老人家食堂助餐卡到期了请尽快处理", "question", "corrected")]


def test_a_guessed_report_whose_description_the_resident_rewrote_is_no_longer_a_guess(chat):
    say, press, fakes = chat
    [asked] = say("老人家食堂助餐卡到期了请尽快处理")
    press("intake:change")
    press("intake:edit:description")
    say("楼道灯坏了")

    [reply] = press(button(asked, JUST_ASKING))

    assert "过期" in reply.text and fakes["feedback"].rows == []


def test_handing_off_an_answered_question_keeps_it_as_a_request_but_not_an_uncovered_one(chat):
    say, press, fakes = chat
    [answered] = say("卧室温度只有十五度，这正常吗？")
    press(button(answered, HANDOFF))
    say("/cancel")
    [uncovered] = say("公租房摇号什么时候出结果？")
    press(button(uncovered, HANDOFF))

    assert fakes["feedback"].rows == [("telegram", "卧室温度只有十五度，这正常吗？", "request", "corrected")]


def test_a_report_the_resident_started_is_not_kept_as_an_example(chat):
    say, press, fakes = chat
    say("/report 楼道里堆满了杂物")
    press("intake:cancel")
    say("老人家食堂助餐卡到期了请尽快处理")
    press("intake:cancel")

    assert fakes["feedback"].rows == []


def test_a_failing_example_store_does_not_cost_the_resident_the_answer():
    from tests.fakes import make_conversation

    class Broken:
        def record(self, *args):
            raise RuntimeError("disk full")

    conversation, _ = make_conversation(feedback=Broken())
    conversation.handle(Incoming("web", "r1", text="老人助餐卡"))

    [answer] = conversation.handle(Incoming("web", "r1", button="choose:question", kind="button"))

    assert answer.intent == "question" and answer.citations


def test_an_unclear_message_asks_with_two_buttons_and_choosing_policy_answers_it(chat):
    say, press, fakes = chat

    [asked] = say("老人助餐卡")
    [answer] = press("choose:question")

    assert asked.intent == "unsure" and [b.payload for b in asked.buttons] == ["choose:question", "choose:request"]
    assert answer.intent == "question" and answer.citations
    assert fakes["retriever"].queries[-1] == "老人助餐卡"


def test_an_unclear_message_becomes_a_report_when_the_resident_chooses_so(chat):
    say, press, fakes = chat
    say("3号楼2单元暖气")

    replies = press("choose:request")

    assert replies[0].text == ASK_PHONE and state_of(fakes)["intake"]["category"] == "供暖"


def test_a_short_follow_up_question_is_searched_together_with_the_previous_topic(chat):
    say, _, fakes = chat
    say("老人家食堂怎么报名？")

    [reply] = say("那需要带什么材料")

    query = fakes["retriever"].queries[-1]
    assert "那需要带什么材料" in query and "老人家食堂" in query  # the topic: the question or its document
    assert reply.intent == "question" and "身份证" in reply.text


def test_a_follow_up_without_a_previous_question_is_searched_alone(chat):
    say, _, fakes = chat

    say("那需要带什么材料")

    assert fakes["retriever"].queries[-1] == "那需要带什么材料"


def test_a_sticker_gets_the_unsupported_reply(chat):
    say, _, fakes = chat

    replies = say(kind="sticker")

    assert [(r.text, r.intent) for r in replies] == [(texts.UNSUPPORTED, "unsupported")]
    assert fakes["retriever"].queries == []


def test_a_twenty_thousand_character_message_is_handled_by_its_beginning_with_a_notice(chat):
    say, _, fakes = chat
    long = "请问老人家食堂助餐卡怎么办理？" + "我家老人今年八十二了，腿脚不好，" * 1250

    replies = say(long[:20000])

    assert replies[0].text == texts.TOO_LONG and replies[0].intent == "notice"
    assert len(replies) >= 2 and all(len(q) <= MAX_TEXT for q in fakes["retriever"].queries)


def test_a_gas_smell_gets_the_emergency_numbers_first_then_an_urgent_report(chat):
    say, _, fakes = chat

    first = say("厨房一股煤气味")
    say("景村里3号楼502")
    filed = say("13812345678")

    assert first[0].intent == "emergency" and "119" in first[0].text and "96655" in first[0].text
    assert first[1].text == ASK_PLACE
    [draft] = fakes["desk"].drafts
    assert draft.urgent and draft.kind == "emergency" and draft.description == "厨房一股煤气味"
    assert filed[0].ticket_id and "紧急工单" in filed[0].text


def test_after_an_emergency_report_is_filed_the_next_message_starts_fresh(chat):
    say, _, fakes = chat
    for text in ("厨房一股煤气味", "景村里3号楼502", "13812345678"):
        say(text)

    replies = say("好的谢谢")

    assert [r.intent for r in replies] == ["thanks"]
    assert state_of(fakes)["intake"] is None


def test_an_emergency_in_the_middle_of_a_report_comes_first(chat):
    say, _, fakes = chat
    say("景村里5号楼楼道堆了好多杂物，麻烦管一管")

    replies = say("不好了楼道里着火了")

    assert replies[0].intent == "emergency" and "119" in replies[0].text
    assert state_of(fakes)["intake"]["kind"] == "emergency"


def file_and_await_rating(fakes, user: str = "r1") -> str:
    info = fakes["desk"].file(TicketDraft("telegram", user, "暖气不热", category="供暖"))
    state = fakes["dialogues"].load("telegram", user)
    state.rating_ticket = info.id
    fakes["dialogues"].save(state)
    return info.id


def test_a_five_typed_as_text_rates_the_ticket_awaiting_a_rating(chat):
    say, _, fakes = chat
    ticket_id = file_and_await_rating(fakes)

    [reply] = say("5")

    assert fakes["desk"].ratings == [(ticket_id, 5, "")]
    assert "谢谢您的评价" in reply.text and reply.ticket_id == ticket_id
    assert state_of(fakes)["rating_ticket"] is None


def test_saying_it_is_not_solved_reopens_the_ticket(chat):
    say, _, fakes = chat
    ticket_id = file_and_await_rating(fakes)

    [reply] = say("还是没解决，暖气片冰凉")

    assert fakes["desk"].ratings == [(ticket_id, 1, "还是没解决，暖气片冰凉")]
    assert "重新打开" in reply.text


def test_a_rating_button_rates_the_ticket(chat):
    _, press, fakes = chat
    ticket_id = file_and_await_rating(fakes)

    press(f"rate:{ticket_id}:4")

    assert fakes["desk"].ratings == [(ticket_id, 4, "")]


def test_a_number_is_not_taken_as_a_rating_when_no_ticket_awaits_one(chat):
    say, _, fakes = chat
    file_and_await_rating(fakes, user="r2")

    say("5")

    assert fakes["desk"].ratings == []


def test_my_tickets_lists_only_the_residents_own(chat):
    say, _, fakes = chat
    fakes["desk"].file(TicketDraft("telegram", "r1", "3号楼暖气不热", category="供暖"))
    fakes["desk"].file(TicketDraft("telegram", "r2", "楼道堆物", category="楼道堆物"))

    [reply] = say("/my")

    assert "3号楼暖气不热" in reply.text and "楼道堆物" not in reply.text


def test_a_short_question_the_last_topic_does_not_speak_of_is_not_answered_from_it(chat):
    say, _, _ = chat
    [first] = say("老人家食堂办助餐卡要带啥材料？")
    assert first.citations

    [reply] = say("今天几号")

    assert reply.text == texts.NOT_COVERED and not reply.citations


def test_a_question_with_no_word_in_the_passages_is_answered_with_a_fact_of_the_kind_asked():
    from bot.core.answer import compose
    from bot.core.ports import Hit

    passage = Hit(source="m.md", title="老人家食堂助餐服务指南", section="", date="", score=0.8,
                  text="一、食堂名单\n景村老人家食堂在景村里3号楼底商。\n二、补贴标准\n| 人群 | 每餐补贴 |\n|---|---|\n"
                       "| 60—79周岁 | 2元 |\n| 80周岁以上 | 4元 |\n三、到哪里办\n到社区党群服务中心办理。")

    answer = compose("老人家食堂怎么收费", [passage])

    assert "2元" in answer.text and "4元" in answer.text and "到社区" not in answer.text


@pytest.mark.parametrize("text", ["我爸突然胸口疼，喘不上气来", "我妈晕过去了叫不醒"])
def test_medical_emergencies_get_the_numbers_at_once(chat, text):
    say, _, _ = chat

    replies = say(text)

    assert "120" in replies[0].text and replies[0].intent == "emergency"


def test_a_question_that_names_a_problem_but_is_not_covered_is_not_taken_for_a_report(chat):
    say, _, fakes = chat

    [reply] = say("孩子放暑假家里没人看，社区有托管班吗")

    assert reply.text == texts.NOT_COVERED and fakes["dialogues"].load("telegram", "r1").intake is None


def test_the_retriever_is_asked_as_staff_only_for_a_staff_account_and_the_internal_source_is_marked():
    from bot.core.ports import Hit
    from tests.fakes import KnownStaff

    handbook = Hit(source="knowledge/staff/handbook.md", title="网格员工作手册", section="走访频次", date="",
                   text="独居老人每月至少走访一次。", score=0.9, audience="staff")
    conversation, fakes = make_conversation([handbook], staff=KnownStaff({("web", "w1")}))

    [resident] = conversation.handle(Incoming("web", "r1", "独居老人多久走访一次"))
    [worker] = conversation.handle(Incoming("web", "w1", "独居老人多久走访一次"))

    assert fakes["retriever"].audiences == ["public", "staff"]
    assert "网格员工作手册" not in resident.text and "每月至少走访" not in resident.text
    assert "每月至少走访一次" in worker.text and texts.INTERNAL_SOURCE in worker.text


def test_a_staff_lookup_that_fails_searches_as_a_resident():
    from tests.fakes import KnownStaff

    class Broken(KnownStaff):
        def is_staff(self, channel, user_id):
            raise RuntimeError("database away")

    conversation, fakes = make_conversation(staff=Broken(set()))
    conversation.handle(Incoming("web", "w1", "老人家食堂要带什么材料"))

    assert fakes["retriever"].audiences and set(fakes["retriever"].audiences) == {"public"}


class Roster:
    """DutyBoard over fixed communities: names only the one the text names, all otherwise."""

    def __init__(self, count: int = 2):
        from bot.core.ports import CommunityDuty

        self.days = [CommunityDuty("景村社区", "工作日 8:30—17:30", "景村里3号楼底商", "022-2800-2100", ("王芳",))]
        self.days += [CommunityDuty(f"第{i}社区", "", "", "", ()) for i in range(2, count + 1)]
        self.asked: list[str] = []

    def today(self, text):
        self.asked.append(text)
        named = [d for d in self.days if d.community in text or d.community.removesuffix("社区") in text]
        return named or self.days


def test_who_is_on_duty_is_answered_with_hours_and_names_and_no_personal_phone():
    roster = Roster()
    conversation, _ = make_conversation(duty=roster)

    [reply] = conversation.handle(Incoming("web", "r1", "景村社区今天谁值班？"))
    [nobody] = conversation.handle(Incoming("web", "r2", "第2社区今天谁值班"))

    assert "景村社区今日当班：王芳" in reply.text and "8:30—17:30" in reply.text and "022-2800-2100" in reply.text
    assert "第2社区" not in reply.text
    assert "今天没有排班记录" in nobody.text


def test_with_many_communities_and_none_named_the_resident_is_asked_where_they_live():
    conversation, _ = make_conversation(duty=Roster(count=8))

    [reply] = conversation.handle(Incoming("web", "r1", "今天谁值班"))

    assert "您住的小区" in reply.text and "王芳" not in reply.text


def test_with_no_roster_anywhere_each_community_gets_one_line():
    from bot.core.ports import CommunityDuty

    class Empty(Roster):
        def __init__(self):
            super().__init__()
            self.days = [CommunityDuty("景村社区", "工作日 8:30—17:30", "", "022-2800-2100", ()),
                         CommunityDuty("华江里社区", "", "", "", ())]

    conversation, _ = make_conversation(duty=Empty())
    [reply] = conversation.handle(Incoming("web", "r1", "今天谁值班"))

    assert reply.text.count("\n") == 3 and "· 景村社区：工作日 8:30—17:30，电话 022-2800-2100" in reply.text
    assert "· 华江里社区：服务时间请电话询问" in reply.text


def test_who_is_on_duty_asked_in_the_middle_of_a_report_is_answered_and_the_report_kept():
    conversation, fakes = make_conversation(duty=Roster())

    conversation.handle(Incoming("web", "r1", "景村里3号楼2单元暖气不热"))
    duty, again = conversation.handle(Incoming("web", "r1", "今天谁值班"))
    after = conversation.handle(Incoming("web", "r1", "13812345678"))

    assert "景村社区今日当班：王芳" in duty.text and ASK_PHONE in again.text
    assert "时间" in after[-1].text  # the report went on to its next question


def test_a_confirm_pressed_again_after_filing_is_told_the_ticket_it_filed():
    conversation, fakes = make_conversation()
    conversation.handle(Incoming("web", "r1", "景村里3号楼2单元暖气不热"))
    conversation.handle(Incoming("web", "r1", "13812345678"))
    conversation.handle(Incoming("web", "r1", "", button="intake:time:晚上", kind="button"))
    [filed] = conversation.handle(Incoming("web", "r1", "", button="intake:confirm", kind="button"))

    [again] = conversation.handle(Incoming("web", "r1", "", button="intake:confirm", kind="button"))
    [other] = conversation.handle(Incoming("web", "r2", "", button="intake:confirm", kind="button"))

    assert filed.ticket_id and filed.ticket_id in again.text and "已经提交" in again.text
    assert again.ticket_id is None  # it files nothing
    assert len(fakes["desk"].drafts) == 1
    assert other.ticket_id is None and "已经结束" in other.text
