"""The web channel's HTTP API, driven in-process against the core wired to fakes."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from bot.channels.web import create_web_app
from bot.core import texts
from bot.core.messages import Button, Reply
from bot.settings import WebSettings
from bot.storage.db import Base, make_engine
from bot.storage.outbox import SqlOutbox
from tests.fakes import make_conversation

CHINESE = re.compile(r"[\u4e00-\u9fff]")
USER = "web-0123456789abcdef0123456789abcdef"


def make_client(conversation=None, outbox=None, health=None, **settings) -> TestClient:
    if conversation is None:
        conversation, _ = make_conversation()
    app = create_web_app(conversation, WebSettings(**settings), outbox=outbox, health=health)
    return TestClient(app, raise_server_exceptions=False)


def say(client: TestClient, text: str = "", button: str | None = None, user_id: str = USER):
    return client.post("/api/chat", json={"user_id": user_id, "text": text, "button": button})


def assert_chinese_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert CHINESE.search(message), message
    return message


class BrokenConversation:
    """A core that fails the way a lost database connection would."""

    def handle(self, incoming):
        raise RuntimeError(f"database went away while saving {incoming.text!r}")


# -- conversations -----------------------------------------------------------------------

def test_a_question_is_answered_with_its_citations():
    response = say(make_client(), "老人家食堂要带什么材料")

    assert response.status_code == 200
    [reply] = response.json()["replies"]
    assert "身份证" in reply["text"]
    assert reply["intent"] == "question"
    assert reply["citations"][0]["title"] == "河西区老人家食堂助餐服务办理指南"
    assert reply["citations"][0]["date"] == "2025-03-01"


def test_a_report_offers_buttons_and_pressing_them_files_a_ticket():
    conversation, fakes = make_conversation()
    client = make_client(conversation)

    asked = say(client, "景村里3号楼2单元暖气不热").json()["replies"]
    assert "电话" in asked[-1]["text"]
    times = say(client, "13812345678").json()["replies"][-1]["buttons"]
    assert {"label": "随时都可以", "payload": "intake:time:随时"} in times
    confirm = say(client, button="intake:time:随时").json()["replies"][-1]["buttons"]
    assert "intake:confirm" in [b["payload"] for b in confirm]
    filed = client.post("/api/chat", json={"user_id": USER, "button": "intake:confirm"}).json()["replies"][-1]

    assert filed["ticket_id"] == "T00000001"
    assert "工单号" in filed["text"]
    [draft] = fakes["desk"].drafts
    assert (draft.channel, draft.user_id) == ("web", USER)
    assert (draft.category, draft.phone, draft.contact_time) == ("供暖", "13812345678", "随时")


def test_an_empty_button_is_treated_as_typed_text():
    conversation, fakes = make_conversation()
    say(make_client(conversation), "老人家食堂要带什么材料", button="")

    assert fakes["retriever"].queries == ["老人家食堂要带什么材料"]


def test_invisible_control_characters_are_dropped_but_newlines_kept():
    conversation, fakes = make_conversation()
    say(make_client(conversation), "老人家食堂\x00要带什么材料\x1b\n谢谢")

    assert fakes["retriever"].queries == ["老人家食堂要带什么材料\n谢谢"]


# -- health and page ---------------------------------------------------------------------

def test_healthz_says_ok_with_the_details_of_the_health_callable():
    response = make_client(health=lambda: {"index_generation": 7}).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "index_generation": 7}


def test_healthz_answers_503_when_the_health_callable_fails():
    def broken():
        raise OSError("index folder missing")

    response = make_client(health=broken).get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_the_chat_page_is_served_with_its_script_and_stylesheet():
    client = make_client()
    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in page.text and 'lang="zh-CN"' in page.text
    assert 'aria-label="输入消息"' in page.text and 'aria-label="发送"' in page.text
    assert "<script>" not in page.text and "<style" not in page.text  # the CSP forbids inline code
    script = client.get("/static/chat.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script.text)
    assert client.get("/static/chat.css").status_code == 200


# -- refused requests --------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"text": "你好"},
    {"user_id": "", "text": "你好"},
    {"user_id": "   ", "text": "你好"},
    {"user_id": "w" * 129, "text": "你好"},
    {"user_id": "web-1\x00", "text": "你好"},
    {"user_id": "web-1\nadmin", "text": "你好"},
])
def test_a_missing_or_malformed_user_id_is_refused_in_chinese(body):
    message = assert_chinese_error(make_client().post("/api/chat", json=body), 400)

    assert "user_id" in message


def test_a_message_over_the_limit_is_refused_with_413_naming_the_limit():
    conversation, fakes = make_conversation()
    response = say(make_client(conversation, max_message_chars=500), "暖" * 501)

    assert "500" in assert_chinese_error(response, 413)
    assert fakes["retriever"].queries == []


def test_a_message_at_the_limit_is_accepted():
    assert say(make_client(max_message_chars=500), "暖" * 500).status_code == 200


def test_a_huge_body_is_refused_before_it_is_parsed():
    response = make_client(max_message_chars=100).post(
        "/api/chat", content=b'{"user_id": "web-1", "text": "' + b"a" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"})

    assert_chinese_error(response, 413)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", "你好".encode("gbk"),
                                 b'{"user_id": "web-1", "text": 42}', b'{"user_id": ["web-1"]}'])
def test_a_body_that_is_not_a_chat_message_is_a_400_in_chinese_not_pydantics_422(raw):
    response = make_client().post("/api/chat", content=raw, headers={"Content-Type": "application/json"})

    message = assert_chinese_error(response, 400)
    assert "Input should" not in message


def test_polling_without_a_user_id_is_a_400_in_chinese():
    assert_chinese_error(make_client().get("/api/messages"), 400)


def test_an_unknown_path_is_a_404_in_chinese():
    assert_chinese_error(make_client().get("/wp-login.php"), 404)


def test_too_many_messages_in_a_minute_get_429_with_retry_after():
    client = make_client(rate_limit_per_minute=2)
    assert [say(client, "你好").status_code for _ in range(2)] == [200, 200]

    refused = say(client, "你好")

    assert "太快" in assert_chinese_error(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert say(client, "你好", user_id="web-someone-else").status_code == 200


def test_a_failure_in_the_core_is_a_500_with_the_apology_and_a_masked_log(caplog):
    client = make_client(BrokenConversation())

    with caplog.at_level(logging.ERROR):
        response = say(client, "我电话13812345678，暖气不热")

    assert response.status_code == 500
    assert response.json() == {"error": texts.ERROR}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "database went away" in logged
    assert "138****5678" in logged and "13812345678" not in logged


# -- notifications -----------------------------------------------------------------------

@pytest.fixture
def outbox(tmp_path) -> SqlOutbox:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    Base.metadata.create_all(engine)
    yield SqlOutbox(sessionmaker(engine))
    engine.dispose()


def test_a_notification_is_delivered_once_and_only_to_its_user(outbox):
    client = make_client(outbox=outbox)
    outbox.notify("web", "web-x", Reply(texts.RATE_PROMPT, buttons=[Button("5分", "rate:T00000001:5")]))
    outbox.notify("telegram", "web-x", Reply("这条属于别的渠道"))

    assert client.get("/api/messages", params={"user_id": "web-y"}).json() == {"replies": []}
    [delivered] = client.get("/api/messages", params={"user_id": "web-x"}).json()["replies"]
    assert delivered["text"] == texts.RATE_PROMPT
    assert delivered["buttons"] == [{"label": "5分", "payload": "rate:T00000001:5"}]
    assert isinstance(delivered["id"], int)
    assert client.get("/api/messages", params={"user_id": "web-x"}).json() == {"replies": []}
    assert [m.reply.text for m in outbox.pending("telegram")] == ["这条属于别的渠道"]


def test_polling_without_an_outbox_returns_nothing():
    assert make_client().get("/api/messages", params={"user_id": USER}).json() == {"replies": []}


# -- headers -----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, body", [
    ("GET", "/", None),
    ("GET", "/static/chat.js", None),
    ("GET", "/healthz", None),
    ("POST", "/api/chat", {"user_id": USER, "text": "你好"}),
    ("POST", "/api/chat", {"user_id": ""}),
    ("GET", "/nowhere", None),
])
def test_every_response_carries_the_security_headers(method, path, body):
    response = make_client().request(method, path, json=body)

    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_failing_outbox_is_a_500_with_the_apology():
    class BrokenOutbox:
        def pending(self, channel, user_id=None, limit=100):
            raise RuntimeError("disk full")

        def mark_sent(self, ids):
            raise AssertionError("nothing was delivered")

    response = make_client(outbox=BrokenOutbox()).get("/api/messages", params={"user_id": USER})

    assert response.status_code == 500
    assert response.json() == {"error": texts.ERROR}


def test_extra_routes_join_the_app_and_their_crashes_still_answer_json_with_the_headers():
    router = APIRouter()

    @router.get("/wechat")
    def wechat_check():
        return PlainTextResponse("echostr")

    @router.get("/boom")
    def boom():
        raise RuntimeError("unhandled in an extra route")

    conversation, _ = make_conversation()
    client = TestClient(create_web_app(conversation, WebSettings(), extra_routes=[router]),
                        raise_server_exceptions=False)

    assert client.get("/wechat").text == "echostr"
    crashed = client.get("/boom")
    assert crashed.status_code == 500
    assert crashed.json() == {"error": texts.ERROR}
    assert crashed.headers["X-Frame-Options"] == "DENY"


def test_a_saturated_process_sheds_a_message_with_503_and_retry_after_and_handles_it_once_free():
    import asyncio
    import threading

    import httpx

    gate, arrived = threading.Event(), threading.Semaphore(0)
    inner, _ = make_conversation()
    handled: list[str] = []

    class Held:
        def handle(self, incoming):
            arrived.release()
            assert gate.wait(10)
            handled.append(incoming.text)
            return inner.handle(incoming)

    app = create_web_app(Held(), WebSettings(max_in_flight=2))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            post = lambda user, text: client.post("/api/chat", json={"user_id": user, "text": text})  # noqa: E731
            first, second = asyncio.create_task(post("u1", "你好")), asyncio.create_task(post("u2", "你好"))
            for _ in range(2):  # both are being handled
                await asyncio.to_thread(arrived.acquire, True, 10)
            shed = await post("u3", "老人家食堂几点开门")
            gate.set()
            done = [await first, await second]
            again = await post("u3", "老人家食堂几点开门")
            return shed, done, again

    shed, done, again = asyncio.run(scenario())

    assert shed.status_code == 503 and shed.headers["Retry-After"] == "2"
    assert shed.json()["error"] == texts.BUSY
    assert all(r.status_code == 200 for r in done) and again.status_code == 200
    assert handled.count("老人家食堂几点开门") == 1  # the shed message was not handled, its retry was
