"""Chunks carry the heading path they sit under and stay small enough for the embedding model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.retrieval.chunking import split_document

MEAL_GUIDE = """\
# 老人家食堂助餐服务指南

## 一、谁能来吃

年满60周岁、在本区居住的老年人都可以到老人家食堂就餐，不限户籍。

### （一）送餐上门

80周岁以上老人、低保和特困老人可以申请送餐上门，每次收配送费3元。

## 二、怎么办助餐卡

带本人身份证原件到社区服务站办理“老年人助餐卡”，当场就能办好。
"""

PROPERTY_RULES = """\
第一章 总则
第一条 为了规范物业管理活动，维护业主和物业服务人的合法权益，制定本办法。
第三章 法律责任
第十二条 物业服务人擅自停水、停电、停气的，由区住房城乡建设部门责令改正，处一万元以上五万元以下罚款。
"""


def sections_of(chunks) -> dict[str, str]:
    return {c.section: c.text for c in chunks}


def chunk_holding(chunks, phrase: str):
    found = [c for c in chunks if phrase in c.text]
    assert found, f"no chunk holds {phrase!r}"
    return found[0]


def test_markdown_headings_give_nested_section_paths():
    chunks = split_document(MEAL_GUIDE, chunk_chars=120, overlap=0, title="老人家食堂助餐服务指南")

    assert chunk_holding(chunks, "不限户籍").section == "一、谁能来吃"
    assert chunk_holding(chunks, "配送费3元").section == "一、谁能来吃 > （一）送餐上门"
    assert chunk_holding(chunks, "助餐卡").section == "二、怎么办助餐卡"


def test_document_title_heading_is_not_repeated_in_sections():
    chunks = split_document(MEAL_GUIDE, chunk_chars=120, overlap=0, title="老人家食堂助餐服务指南")

    assert all("老人家食堂助餐服务指南" not in c.section for c in chunks)


def test_a_heading_that_is_not_the_title_stays_in_the_section():
    chunks = split_document(MEAL_GUIDE, chunk_chars=120, overlap=0, title="别的文件")

    assert chunk_holding(chunks, "不限户籍").section == "老人家食堂助餐服务指南 > 一、谁能来吃"


def test_articles_of_a_regulation_sit_under_their_chapter():
    chunks = split_document(PROPERTY_RULES, chunk_chars=420, overlap=60)

    penalty = chunk_holding(chunks, "处一万元以上五万元以下罚款")
    assert penalty.section == "第三章 法律责任 > 第十二条"
    assert penalty.text.startswith("第十二条 物业服务人擅自停水")
    assert chunk_holding(chunks, "制定本办法").section == "第一章 总则 > 第一条"


def test_neighbouring_short_articles_share_a_chunk_labelled_with_their_range():
    text = ("第二章 业主的义务\n"
            "第五条 业主应当按时交纳物业费。\n"
            "第六条 业主不得在楼道、消防通道堆放杂物。\n"
            "第七条 业主装修房屋的，应当事先告知物业服务人。\n")

    chunks = split_document(text, chunk_chars=420, overlap=0)

    assert len(chunks) == 1
    assert chunks[0].section == "第二章 业主的义务 > 第五条至第七条"
    assert "按时交纳物业费" in chunks[0].text and "事先告知物业服务人" in chunks[0].text


def test_short_numbered_lines_are_headings():
    text = ("一、申请条件\n"
            "户籍在本区、持有残疾人证的重度残疾人，家庭人均收入低于最低工资标准。\n"
            "（一）需要的材料\n"
            "身份证、户口本、残疾人证原件和复印件各一份。\n")

    chunks = split_document(text, chunk_chars=60, overlap=0)

    assert chunk_holding(chunks, "最低工资标准").section == "一、申请条件"
    assert chunk_holding(chunks, "复印件各一份").section == "一、申请条件 > （一）需要的材料"


def test_long_lines_starting_with_a_number_are_list_items_not_headings():
    text = ("二、办理流程\n"
            "一、居民本人或者委托家属带齐材料到社区服务站提出申请，社区工作人员当场审核材料是否齐全并出具回执单据\n"
            "（一）材料齐全的，社区在5个工作日内入户调查，调查结果在社区公示栏公示7天。\n")

    chunks = split_document(text, chunk_chars=420, overlap=0)

    assert {c.section for c in chunks} == {"二、办理流程"}
    assert "委托家属带齐材料" in chunks[0].text and "公示7天" in chunks[0].text


def test_a_preamble_before_the_first_heading_does_not_erase_the_headings_after_it():
    text = ("> 本文件为示例内容，地址、电话均为示例值。\n\n"
            "# 老人家食堂助餐服务指南\n\n"
            "## 一、谁能来吃\n\n年满60周岁的老人都能来吃，不限户籍。\n\n"
            "## 二、补贴标准\n\n80周岁以上每餐补贴4元。\n")

    chunks = split_document(text, chunk_chars=420, overlap=60, title="老人家食堂助餐服务指南")

    assert "一、谁能来吃" in chunk_holding(chunks, "不限户籍").section
    assert "二、补贴标准" in chunk_holding(chunks, "每餐补贴4元").section
    assert chunk_holding(chunks, "示例值").section == ""


def test_a_long_section_is_cut_at_sentence_ends_with_overlap():
    sentences = [f"第{i}条意见：居民反映{i}号楼电梯经常停运，老人上下楼很不方便，希望尽快修好。" for i in range(1, 16)]
    text = "## 三、居民意见\n" + "".join(sentences)

    chunks = split_document(text, chunk_chars=120, overlap=40)

    assert len(chunks) > 3
    assert all(c.section == "三、居民意见" for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert all(len(c.text) <= 120 for c in chunks)
    for sentence in sentences:
        assert any(sentence in c.text for c in chunks)
    # each chunk after the first repeats the previous chunk's last sentence
    for before, after in zip(chunks, chunks[1:]):
        last_sentence = before.text.rsplit("。", 2)[-2] + "。"
        assert after.text.startswith(last_sentence)


def test_a_sentence_longer_than_a_chunk_is_cut_hard():
    text = "## 附件\n" + "华江里小区3号楼2门" * 60

    chunks = split_document(text, chunk_chars=100, overlap=20)

    assert len(chunks) >= 5
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == "华江里小区3号楼2门" * 60


def test_ordinals_number_the_chunks_in_document_order():
    chunks = split_document(MEAL_GUIDE, chunk_chars=80, overlap=0, title="老人家食堂助餐服务指南")

    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_empty_text_gives_no_chunks():
    assert split_document("\n\n   \n", chunk_chars=420, overlap=60) == []


_CJK = st.text(alphabet="社区居民网格员暖气补贴老人食堂楼道漏水办理申请材料电话", min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=30),
    filler=_CJK,
    chunk_chars=st.integers(min_value=80, max_value=300),
    overlap=st.integers(min_value=0, max_value=120),
)
def test_no_chunk_of_a_long_section_exceeds_chunk_chars(lengths, filler, chunk_chars, overlap):
    sentences = [f"第{i}句" + (filler * 300)[:n] + "。" for i, n in enumerate(lengths)]
    text = "## 一、办理须知\n" + "".join(sentences)

    chunks = split_document(text, chunk_chars=chunk_chars, overlap=overlap)

    assert all(len(c.text) <= chunk_chars for c in chunks), [len(c.text) for c in chunks]
    for sentence in sentences:
        if len(sentence) <= chunk_chars:  # only sentences longer than a chunk may be cut
            assert any(sentence in c.text for c in chunks)


@settings(max_examples=80, deadline=None)
@given(
    bodies=st.lists(st.integers(min_value=1, max_value=120), min_size=2, max_size=12),
    heading=st.integers(min_value=2, max_value=20),
    chunk_chars=st.integers(min_value=80, max_value=200),
)
def test_short_sibling_sections_merged_into_one_chunk_stay_within_chunk_chars(bodies, heading, chunk_chars):
    numerals = "一二三四五六七八九十"
    text = "".join(
        f"{numerals[i % 10]}、{'补贴对象申请条件办理流程'[: heading % 12] or '说明'}{i}\n"
        + ("本区户籍的重度残疾人每户每年补贴六百元整" * 10)[:n] + "。\n"
        for i, n in enumerate(bodies)
    )

    chunks = split_document(text, chunk_chars=chunk_chars, overlap=0)

    assert all(len(c.text) <= chunk_chars for c in chunks), [(len(c.text), c.section) for c in chunks]
