"""Answerability: the named things a question asks about, and whether a passage names them."""

from __future__ import annotations

import pytest

from bot.retrieval.answerable import AnswerabilityParams, items, named, topic_score
from bot.retrieval.tokenize import words


@pytest.mark.parametrize("question,expected", [
    ("医保卡丢了怎么补办", ["医保卡"]),
    ("商品房维修基金怎么申请使用", ["维修基金"]),
    ("百岁老人有什么长寿补贴", ["长寿补贴"]),
    ("家电以旧换新的补贴怎么领", ["以旧换新补贴"]),
    ("社区能开无犯罪记录证明吗", ["记录证明"]),
    ("办理老年人助餐卡需要携带哪些材料", ["助餐卡"]),
    ("有什么补贴", []),
    ("离婚需要带什么证件", []),
])
def test_items_are_the_named_things_asked_about(question, expected):
    assert items(words(question)) == expected


@pytest.mark.parametrize("item,text,expected", [
    ("助餐卡", "办理助餐卡需要带身份证", True),
    ("意外险", "河西区2025年老年人意外伤害保险服务说明", True),  # in order, within a short span
    ("残疾证", "持有残疾人证", True),
    ("医保卡", "按季度发放到本人社保卡", False),
    ("维修基金", "维修工作由物业负责，基金另行管理", False),  # too far apart
])
def test_a_passage_names_an_item_loosely_but_not_by_chance(item, text, expected):
    assert named(item, text) is expected


def test_the_topic_score_adds_a_share_of_the_literal_match():
    params = AnswerabilityParams(min_topic=0.75, match_weight=0.15)

    assert topic_score(0.70, 0.5, params) == pytest.approx(0.775)
    assert topic_score(0.70, 3.0, params) == pytest.approx(0.85)  # the match counts up to 1


def test_an_item_named_only_in_passing_does_not_make_the_passage_an_answer():
    from bot.retrieval.answerable import named_in_context

    materials = "（一）申请人身份证和户口簿原件及复印件；（二）残疾人证原件及复印件。"
    assert not named_in_context("身份证", "身份证过期了怎么换", "残疾人冬季取暖补贴 第四章 申领材料", materials)
    assert named_in_context("身份证", "办补贴要带身份证原件吗", "残疾人冬季取暖补贴 第四章 申领材料", materials)
    assert named_in_context("助餐卡", "助餐卡丢了怎么办", "老人家食堂 助餐卡", "挂失后补办。")  # its own section


@pytest.mark.parametrize("question", ["天津如何补贴遭受疫情影响的小微企业？", "对失业人员有何补助？",
                                      "危险化学品企业复工要注意什么", "一次性补贴什么时候发"])
def test_question_words_and_adjectives_make_no_items(question):
    assert items(words(question)) == []
