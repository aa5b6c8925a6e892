"""Dialogue state has a schema: typed fields, explicit JSON, and states saved by the previous version still load."""

from __future__ import annotations

from bot.core.dialogue import DialogueState, Handoff, IntakeDraft
from bot.core.messages import Incoming
from tests.fakes import make_conversation

# A state as version 1 saved it: the report a free-form dict, extras under "data".
OLD_STATE = {
    "topic": "河西区老人家食堂助餐服务办理指南",
    "pending_text": "",
    "intake": {"kind": "request", "description": "楼道堆满杂物", "category": "楼道堆物", "sla_class": "general",
               "place": "景村里3号楼", "building_id": "jingcun-3", "grid_id": "jingcun-01", "community": "jingcun",
               "phone": "13812345678", "contact_time": "", "photos": [], "lat": None, "lon": None,
               "asking": "contact_time", "guessed": "7"},
    "rating_ticket": None,
    "data": {"seq": 7, "last_question": "老人家食堂要带什么", "resolving": "T26120100001",
             "handoffs": {"6": {"text": "老人家食堂要带什么", "answered": True}}},
}


def test_a_state_saved_by_the_previous_version_loads_into_the_schema():
    state = DialogueState.from_json("telegram", "r1", OLD_STATE)

    assert state.intake == IntakeDraft(kind="request", description="楼道堆满杂物", category="楼道堆物",
                                       place="景村里3号楼", building_id="jingcun-3", grid_id="jingcun-01",
                                       community="jingcun", phone="13812345678", asking="contact_time", guessed="7")
    assert (state.seq, state.last_question, state.resolving) == (7, "老人家食堂要带什么", "T26120100001")
    assert state.handoffs == {"6": Handoff("老人家食堂要带什么", True)}


def test_the_schema_round_trips_through_json():
    state = DialogueState.from_json("web", "u", OLD_STATE)
    state.intake.no_phone = True
    state.intake.problems = ["暖气不热", "楼道堆物"]

    again = DialogueState.from_json("web", "u", state.to_json())

    assert again == state and again.to_json()["v"] == 2


def test_a_report_in_progress_from_the_old_format_goes_on_to_a_ticket():
    conversation, fakes = make_conversation()
    fakes["dialogues"].rows[("telegram", "r1")] = OLD_STATE

    summary = conversation.handle(Incoming("telegram", "r1", button="intake:time:晚上", kind="button"))
    filed = conversation.handle(Incoming("telegram", "r1", button="intake:confirm", kind="button"))

    assert "景村里3号楼" in summary[0].text and filed[0].ticket_id
    assert fakes["desk"].drafts[0].phone == "13812345678"


def test_an_old_handoff_button_still_works():
    conversation, fakes = make_conversation()
    fakes["dialogues"].rows[("telegram", "r1")] = {**OLD_STATE, "intake": None}

    replies = conversation.handle(Incoming("telegram", "r1", button="handoff:6", kind="button"))

    assert fakes["dialogues"].load("telegram", "r1").intake.description == "老人家食堂要带什么"
    assert replies
