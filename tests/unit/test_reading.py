"""The readers that decide what a message is before the intake uses it: question, cancel, correction, refusal, time."""

from __future__ import annotations

import pytest

from bot.core.reading import (asks_why_phone, clauses, contact_time, declines_phone, is_cancel, landline_only,
                              looks_like_place, looks_like_question, read_correction)


@pytest.mark.parametrize("text", ["老人家食堂晚上开门吗", "暖气不热自己在家能先查点啥", "租房补贴每年要重新审核吗",
                                  "我妈75了能去老人家食堂吃饭不", "邻里纠纷调解不成还能怎么办", "調解協議簽了以後怎麼辦",
                                  "托养补贴一个月多少？"])
def test_questions_are_read_by_their_form(text):
    assert looks_like_question(text)


@pytest.mark.parametrize("text", ["楼道的声控灯不亮了好几天", "能不能派人来修一下暖气", "怎么还没人来修",
                                  "我要投诉物业，电梯坏了一周了没人修", "景村里2号楼", "到底有没有人管"])
def test_reports_and_requests_put_as_questions_are_not_questions(text):
    assert not looks_like_question(text)


@pytest.mark.parametrize("text", ["算了", "不用了，车已经开走了", "已经修好了", "不用麻烦了", "先不提交了",
                                  "算了，不报了", "哦，已经有人修好了", "取消吧"])
def test_cancelling_in_words(text):
    assert is_cancel(text)


@pytest.mark.parametrize("text", ["好的", "暖气还是不热", "残疾人取暖补贴什么时候发", "景村里3号楼", "不用留电话吧"])
def test_other_words_do_not_cancel(text):
    assert not is_cancel(text)


@pytest.mark.parametrize("text,slot,value,given", [
    ("电话写错了，是13700003333", "phone", "13700003333", True),
    ("号码错了 13912345678", "phone", None, True),
    ("不对，是5号楼，不是3号楼", None, "5号楼", True),
    ("地址说错了", "place", None, False),
    ("问题说错了，是厨房漏水", "description", "厨房漏水", True),
    ("不对不对，应该是景村东里5号楼", None, "景村东里5号楼", True),
])
def test_corrections_name_their_slot_and_carry_the_new_value(text, slot, value, given):
    correction = read_correction(text)

    assert correction is not None and correction.slot == slot and correction.given == given
    if value is not None:
        assert correction.value == value


def test_words_without_a_correction_are_not_one():
    assert read_correction("厨房水管漏水了") is None


def test_declining_and_questioning_the_phone():
    assert declines_phone("没有手机，能不留电话吗") and declines_phone("我想匿名反映")
    assert not declines_phone("只有座机") and landline_only("我只有座机")
    assert asks_why_phone("为什么要留电话") and asks_why_phone("电话号码会不会泄露")
    assert not asks_why_phone("电话13812345678")


@pytest.mark.parametrize("text,asked,expected", [
    ("下班以后", True, "下班以后"), ("周末都在家", True, "周末都在家"), ("上午十点前", True, "上午十点前"),
    ("晚上联系我", False, "晚上联系"), ("景村里1号楼，电话13600001111，工作日晚上七点以后", False, "工作日晚上七点以后"),
    ("楼上天天半夜蹦迪太吵了", False, ""), ("晚上七点以后吵得很", False, ""), ("不知道", True, ""),
])
def test_a_time_to_call_in_free_words(text, asked, expected):
    assert contact_time(text, asked=asked) == expected


def test_places_look_like_places_and_questions_do_not():
    assert looks_like_place("华江里小区北门") and looks_like_place("5号楼2单元") and looks_like_place("友谊路口")
    assert not looks_like_place("你是机器人吗") and not looks_like_place("不知道")


def test_two_problems_split_into_clauses():
    assert clauses("景村里2号楼暖气不热，楼道里还堆了很多纸箱") == ["景村里2号楼暖气不热", "楼道里还堆了很多纸箱"]


@pytest.mark.parametrize("text,expected", [("楼道放电动车行不行", True), ("要不要带户口本", True), ("暖气不热找谁", True),
                                           ("不行不行太吵了", False), ("有没有人管", False), ("谁家的狗天天叫", False)])
def test_a_not_a_questions_and_who(text, expected):
    assert looks_like_question(text) is expected


@pytest.mark.parametrize("text,expected", [("楼上漏水到我家了怎么办", True), ("家里停电了怎么办", True),
                                           ("我妈一个人在家，能不能有人上门送饭", True), ("可以上门办理吗", False),
                                           ("邻里纠纷调解不成还能怎么办", False)])
def test_requests_put_as_questions(text, expected):
    from bot.core.reading import asks_for_action

    assert asks_for_action(text) is expected


@pytest.mark.parametrize("text,expected", [("能不能帮她安排送饭", True), ("网格员能不能帮老人代办补贴申请", False),
                                           ("卫生间顶上往下滴水了，楼上渗下来的，这可怎么办", True)])
def test_a_request_for_someone_versus_a_question_about_a_service(text, expected):
    from bot.core.reading import asks_for_action

    assert asks_for_action(text) is expected


@pytest.mark.parametrize("text", ["今天谁值班", "景村社区今天谁当班？", "当班社工是谁", "社区几点有人",
                                  "今天社区有人值班吗", "现在社区有人吗", "值班的是哪位"])
def test_asking_who_is_on_duty(text):
    from bot.core.reading import asks_who_is_on_duty

    assert asks_who_is_on_duty(text)


@pytest.mark.parametrize("text", ["物业值班电话多少", "值班室的人不管事，楼道堆满了东西没人清理也没人管", "老人家食堂几点开门",
                                  "今日我当班是什么服务", "医院晚上谁值班", "景村社区服务站周六上午有人值班吗",
                                  "周末社区有人吗", "明天谁值班"])
def test_other_messages_are_not_duty_questions(text):
    from bot.core.reading import asks_who_is_on_duty

    assert not asks_who_is_on_duty(text)
