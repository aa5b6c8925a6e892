"""Rendering Replies for Telegram: splitting long text, keyboards, callback data; and translating updates."""

from __future__ import annotations

import datetime as dtm

from telegram import Update

from bot.channels.telegram import file_url
from bot.channels.telegram_render import (MAX_CALLBACK_BYTES, CallbackData, keyboard_rows, render, split_text,
                                          utf16_len)
from bot.channels.telegram_translate import incoming_from_update
from bot.core.messages import Button, Location, Reply

NOTICE = "关于冬季取暖补贴：符合条件的困难家庭，由社区统一登记，街道审核后按月发放。请您备好身份证和户口簿。"


def test_short_text_is_one_part():
    assert split_text("老人家食堂在景村里社区服务站一楼。") == ["老人家食堂在景村里社区服务站一楼。"]


def test_whitespace_only_text_has_no_parts():
    assert split_text(" \n\n ") == []


def test_long_text_is_split_between_paragraphs_within_the_limit():
    text = "\n\n".join(f"第{i}条：{NOTICE}" for i in range(200))
    parts = split_text(text)
    assert len(parts) > 1
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert all(p.startswith("第") and p.endswith("户口簿。") for p in parts)
    assert "\n\n".join(parts) == text


def test_one_long_paragraph_is_split_after_a_sentence():
    text = NOTICE * 3
    parts = split_text(text, limit=120)
    assert all(len(p) <= 120 for p in parts)
    assert all(p.endswith("。") for p in parts[:-1])
    assert "".join(parts) == text


def test_a_decimal_point_is_not_a_sentence_end():
    parts = split_text("甲" * 30 + "补贴3.5元" + "乙" * 30, limit=40)
    assert not parts[0].endswith(".")
    assert "".join(parts) == "甲" * 30 + "补贴3.5元" + "乙" * 30


def test_length_is_counted_in_utf16_units_as_telegram_does():
    parts = split_text("😀" * 3000)
    assert [len(p) for p in parts] == [2048, 952]
    assert utf16_len(parts[0]) == 4096


def test_a_hard_cut_never_separates_a_character_from_its_marks_or_joiners():
    family = "👨\u200d👩\u200d👧"  # one visible character: three emoji joined by ZWJ
    parts = split_text(family * 10, limit=20)
    assert all(p and p.replace(family, "") == "" for p in parts)
    accented = "e\u0301" * 30  # é as e + combining acute accent
    parts = split_text(accented, limit=7)
    assert all(not p.startswith("\u0301") for p in parts)
    assert "".join(parts) == accented


def test_short_labels_go_three_to_a_row():
    buttons = [Button("确认提交", "intake:confirm"), Button("修改", "intake:change"), Button("取消", "intake:cancel")]
    assert keyboard_rows(buttons) == [buttons]


def test_rows_are_balanced():
    rating = [Button(f"{i}分", f"rate:T1:{i}") for i in (5, 4, 3, 2, 1)] + [Button("没解决", "rate:T1:no")]
    assert [len(row) for row in keyboard_rows(rating)] == [3, 3]
    four = [Button("问题描述", "a"), Button("位置", "b"), Button("电话", "c"), Button("联系时间", "d")]
    assert [len(row) for row in keyboard_rows(four)] == [2, 2]


def test_long_labels_go_two_to_a_row():
    buttons = [Button("查政策：老人家食堂", "a"), Button("反映问题：暖气不热", "b"), Button("转给工作人员", "c")]
    assert [len(row) for row in keyboard_rows(buttons)] == [2, 1]


def test_keyboard_goes_on_the_last_part_only():
    reply = Reply("\n\n".join([NOTICE] * 120), buttons=[Button("有用", "useful")])
    messages = render(reply, CallbackData())
    assert len(messages) > 1
    assert [markup is not None for _, markup in messages] == [False] * (len(messages) - 1) + [True]
    assert messages[-1][1].inline_keyboard[0][0].callback_data == "useful"


def test_buttons_without_text_still_get_a_message():
    [(text, markup)] = render(Reply("", buttons=[Button("好", "ok")]), CallbackData())
    assert text and markup is not None
    assert render(Reply(""), CallbackData()) == []


def test_short_payloads_are_sent_as_they_are():
    callbacks = CallbackData()
    assert callbacks.encode("intake:time:工作日白天") == "intake:time:工作日白天"


def test_long_payloads_are_shortened_and_mapped_back():
    callbacks = CallbackData()
    payload = "choose:question:" + "老人家食堂怎么报名需要什么材料" * 3
    data = callbacks.encode(payload)
    assert len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES
    assert callbacks.decode(data) == payload
    assert callbacks.decode("rate:T00000001:5") == "rate:T00000001:5"


def test_a_forgotten_digest_reaches_the_core_unchanged():
    old = CallbackData(capacity=1)
    first = old.encode("x" * 100)
    old.encode("y" * 100)
    assert old.decode(first) == first
    assert CallbackData().decode(first) == first


def test_file_url_follows_the_local_bot_api_server_layout():
    assert file_url("http://127.0.0.1:8081/bot{token}") == "http://127.0.0.1:8081/file/bot{token}"
    assert file_url("https://api.telegram.org/bot{token}/test") == "https://api.telegram.org/file/bot{token}/test"


# -- translating updates into Incoming ---------------------------------------------------------

def make_update(**content) -> Update:
    message = {"message_id": 7, "date": int(dtm.datetime(2026, 11, 29, 10, 0).timestamp()),
               "chat": {"id": 42, "type": "private"},
               "from": {"id": 42, "is_bot": False, "first_name": "秀兰", "last_name": "王"}, **content}
    return Update.de_json({"update_id": 1, "message": message}, None)


def test_text_becomes_a_text_message_from_the_user():
    incoming = incoming_from_update(make_update(text="3号楼暖气不热"))
    assert (incoming.channel, incoming.user_id, incoming.kind, incoming.text) == ("telegram", "42", "text", "3号楼暖气不热")
    assert incoming.display_name == "秀兰 王"


def test_a_venue_becomes_a_labelled_location():
    location = {"latitude": 39.12, "longitude": 117.2}
    incoming = incoming_from_update(make_update(
        location=location, venue={"location": location, "title": "景村里社区服务站", "address": "景村里12号"}))
    assert incoming.kind == "location"
    assert incoming.location == Location(39.12, 117.2, "景村里社区服务站 景村里12号")


def test_media_the_core_cannot_read_keep_their_kind():
    voice = {"file_id": "v", "file_unique_id": "v", "duration": 3}
    note = {"file_id": "n", "file_unique_id": "n", "length": 240, "duration": 5}
    animation = {"file_id": "a", "file_unique_id": "a", "width": 1, "height": 1, "duration": 1}
    assert incoming_from_update(make_update(voice=voice)).kind == "voice"
    assert incoming_from_update(make_update(video_note=note)).kind == "video"
    gif = make_update(animation=animation, document={"file_id": "a", "file_unique_id": "a"})  # Telegram sends both
    assert incoming_from_update(gif).kind == "other"


def test_a_document_is_a_file_with_its_caption():
    incoming = incoming_from_update(make_update(document={"file_id": "d", "file_unique_id": "d", "file_name": "通知.pdf"},
                                                caption="社区通知"))
    assert (incoming.kind, incoming.text) == ("file", "社区通知")


def test_a_shared_contact_is_its_phone_number():
    incoming = incoming_from_update(make_update(contact={"phone_number": "13812345678", "first_name": "秀兰"}))
    assert (incoming.kind, incoming.text) == ("text", "13812345678")
