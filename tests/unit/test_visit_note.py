"""智能采集: what a visit note is read into (bench/visits.py measures it on 119 notes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.visit_note import read_visit
from bot.tickets.organisation import PlaceResolver, load_organisation
from tests.fakes import FakeCategorizer

DISTRICT = Path(__file__).resolve().parents[2] / "district.toml"


@pytest.fixture(scope="module")
def read():
    places = PlaceResolver(load_organisation(DISTRICT))
    return lambda note: read_visit(note, places, FakeCategorizer())


def people(reading) -> dict:
    return {p.name: (p.age, sorted(p.tags)) for p in reading.people}


def test_a_plain_note_gives_place_person_need_and_problem(read):
    reading = read("今天走访景村里3号楼2单元501，王大爷82岁独居，腿脚不便，想申请送餐，家里楼道灯坏了")

    assert (reading.building_id, reading.grid_id) == ("景村里-3", "jingcun-01")
    assert people(reading) == {"王大爷": (82, ["独居", "高龄"])}
    assert reading.needs == ["送餐上门"] and reading.problems == [("家里楼道灯坏了", "供电")]


def test_shorthand_with_a_dashed_address_and_a_bare_age(read):
    reading = read("华江里10-2-203 吕爷 91 失能 吕奶 88 照顾 需助浴")

    assert reading.building_id == "华江里-10" and reading.place == "华江里10号楼2单元203室"
    assert people(reading) == {"吕爷": (91, ["失能", "高龄"]), "吕奶": (88, ["高龄"])}
    assert "助浴" in reading.needs


def test_each_person_gets_their_own_age_and_tags_and_all_get_a_shared_one(read):
    reading = read("安江里5号楼 老两口 大爷79 大娘77 都是低保 孙子10岁 父母在外地打工")

    assert people(reading) == {"大爷": (79, ["低保"]), "大娘": (77, ["低保"]), "孙子": (10, ["留守儿童"])}


def test_someone_gone_or_away_is_not_registered_and_applying_for_a_benefit_is_not_having_it(read):
    reading = read("华江里2号楼 黄女士 41岁 丈夫去年病故 女儿8岁 想申请低保")

    assert people(reading) == {"黄女士": (41, []), "女儿": (8, [])}
    assert reading.needs == ["低保申请"]


def test_a_note_without_an_address_still_gives_people_and_no_building(read):
    reading = read("社区活动室门口遇到一位坐轮椅的老人 九十一了 独居 想装扶手")

    assert reading.building_id is None
    assert people(reading) == {"老人": (91, ["残疾", "独居", "高龄"])}
    assert reading.needs == ["无障碍改造"] and reading.problems == []


def test_a_personal_ailment_is_not_a_problem_to_file(read):
    reading = read("景村里5号楼 刘奶奶 腿脚不好 眼睛看不清 暖气不热")

    assert [c for _, c in reading.problems] == ["供暖"]


def test_words_written_with_the_wrong_characters_but_the_right_sound_are_read(read):
    reading = read("安江里11-2-602 常大爷 88 独据 底保户 想办残急人补贴")

    assert people(reading) == {"常大爷": (88, ["低保", "独居", "高龄"])}
    assert reading.needs == ["残疾人补贴"]


def test_full_names_are_found_where_reports_introduce_them(read):
    reading = read("入户走访：户主赵桂兰，女，81岁，独居。其子于磊在外地。欧阳明58 失业")

    assert people(reading) == {"赵桂兰": (81, ["独居", "高龄"]), "欧阳明": (58, [])}
