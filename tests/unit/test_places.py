"""Where a resident means: free text or a location matched to a building and grid of the sample district."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.tickets.organisation import PlaceResolver, load_organisation, parse_ranges

DISTRICT = Path(__file__).resolve().parents[2] / "district.toml"


@pytest.fixture(scope="module")
def places() -> PlaceResolver:
    return PlaceResolver(load_organisation(DISTRICT))


@pytest.mark.parametrize("text, grid, building", [
    ("景村里3号楼2单元暖气不热", "jingcun-01", "景村里-3"),
    ("华江里十二号楼502家里停水了", "huajiang-02", "华江里-12"),
    ("景村东里5栋门口垃圾没人收", "jingcun-03", "景村东里-5"),
    ("我住景村里11#楼，楼道灯坏了", "jingcun-02", "景村里-11"),
    ("安江里 7 号楼电梯又坏了", "anjiang-01", "安江里-7"),
])
def test_an_estate_and_building_in_free_text_find_their_grid(places, text, grid, building):
    match = places.resolve(text)

    assert match is not None and (match.grid_id, match.building_id) == (grid, building)


def test_unit_and_room_are_kept_in_the_normalised_place(places):
    assert places.resolve("景村里3号楼2单元502室暖气不热").text == "景村里3号楼2单元502室"


def test_the_longer_estate_name_wins_over_one_it_starts_with(tmp_path):
    district = tmp_path / "district.toml"
    district.write_text(
        '[[community]]\nid = "hj"\nname = "华江里社区"\nestates = ["华江里", "华江里东区"]\n'
        '[[grid]]\nid = "hj-old"\nname = "老区"\ncommunity = "hj"\nestate = "华江里"\nbuildings = "1-10"\n'
        '[[grid]]\nid = "hj-east"\nname = "东区"\ncommunity = "hj"\nestate = "华江里东区"\nbuildings = "1-10"\n',
        "utf-8")

    match = PlaceResolver(load_organisation(district)).resolve("华江里东区3号楼下水道堵了")

    assert (match.grid_id, match.building_id) == ("hj-east", "华江里东区-3")


def test_a_place_with_no_estate_or_building_is_not_matched(places):
    assert places.resolve("我家门口") is None


def test_a_known_estate_with_a_building_outside_every_grid_keeps_its_community(places):
    match = places.resolve("景村里30号楼")

    assert match.grid_id is None and match.building_id is None and match.community == "jingcun"


def test_a_location_near_a_grid_centre_finds_that_grid(places):
    match = places.resolve_location(39.0924, 117.2155)  # some 40 m from jingcun-01's centre

    assert match.grid_id == "jingcun-01" and "景村里" in match.text


def test_a_location_far_from_every_grid_is_not_matched(places):
    assert places.resolve_location(39.9042, 116.4074) is None  # Tian'anmen, 100 km away


def test_building_ranges_allow_commas_spaces_and_chinese_commas():
    assert parse_ranges("1-3, 5，9-10") == {1, 2, 3, 5, 9, 10}


def test_a_grid_naming_an_unknown_community_is_a_config_error(tmp_path):
    bad = tmp_path / "district.toml"
    bad.write_text('[[grid]]\nid = "g1"\nname = "一网格"\ncommunity = "nowhere"\nestate = "某小区"\n', "utf-8")

    with pytest.raises(ConfigError, match="nowhere"):
        load_organisation(bad)
