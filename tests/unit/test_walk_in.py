"""受理 on a resident's behalf: a worker's note read into the fields the form shows."""

from __future__ import annotations

import pytest

from bot.core.intake import Intake
from bot.core.ports import DESK_CHANNEL
from bot.core.walk_in import guess_source, read_note, ticket_draft, without_phone
from tests.fakes import FakeCategorizer, FakePlaces, MemoryTicketDesk


@pytest.fixture
def intake() -> Intake:
    return Intake(MemoryTicketDesk(), FakePlaces(), FakeCategorizer())


def test_a_phone_note_gives_place_phone_time_category_and_source(intake):
    walk_in = read_note(intake, "景村里3号楼2单元王阿姨来电，暖气不热，电话13912345678，下午在家")

    assert (walk_in.place, walk_in.grid_id, walk_in.phone) == ("景村里3号楼2单元", "G1", "13912345678")
    assert walk_in.category == "供暖" and walk_in.source == "phone" and "下午" in walk_in.contact_time
    assert "13912345678" not in walk_in.description and "暖气不热" in walk_in.description
    assert "王阿姨" in walk_in.description  # who came is part of what the worker reads


@pytest.mark.parametrize("note, source", [("今天走访华江里5号楼，李大爷说楼道灯坏了", "visit"),
                                          ("入户时发现3号楼楼道堆物", "visit"),
                                          ("王大爷打电话反映楼上漏水", "phone"),
                                          ("居民来社区反映楼道里堆满纸箱", "window"),
                                          ("景村里5号楼楼道堆物", "window")])
def test_how_the_report_came_in_is_read_from_the_note(note, source):
    assert guess_source(note) == source


@pytest.mark.parametrize("note, left", [("暖气不热，电话：139 1234 5678，下午在家", "暖气不热，下午在家"),
                                        ("联系电话022-28001234 楼道灯坏了", "楼道灯坏了"),
                                        ("手机号13812345678", "")])
def test_the_phone_and_the_words_announcing_it_leave_the_description(note, left):
    assert without_phone(note) == left


def test_a_walk_in_ticket_has_no_chat_and_its_own_resident_key(intake):
    walk_in = read_note(intake, "景村里3号楼暖气不热")
    first, second = ticket_draft(walk_in, filed_by=7), ticket_draft(walk_in, filed_by=7)

    assert first.channel == DESK_CHANNEL and (first.source, first.filed_by) == ("window", 7)
    assert first.user_id != second.user_id  # two walk-ins are never one resident's repeated report
