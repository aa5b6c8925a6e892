"""The WeChat channel driven the way WeChat's servers drive it: signed, encrypted callbacks in, XML out.

The WeChat side (signing, encrypting, decrypting our replies) is built on wechatpy,
an implementation independent of ours, and on Tencent's published samples; the
message API is the stand-in in wechat_standin.py on 127.0.0.1. The core is
tests.fakes.make_conversation() (in-memory fakes).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy.orm import sessionmaker
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bot.channels.wechat import WeChatChannel
from bot.channels.wechat_api import REFRESH_MARGIN, WeChatApi
from bot.channels.wechat_errors import WeChatApiError
from bot.channels.web import create_web_app
from bot.core import texts
from bot.core.conversation import rating_buttons
from bot.core.messages import Incoming, Location, Reply
from bot.core.ports import TicketDraft
from bot.errors import ConfigError
from bot.settings import WeChatSettings, WebSettings
from bot.storage.db import Base, make_engine
from bot.storage.outbox import SqlOutbox
from tests.fakes import make_conversation
from tests.integration.wechat_standin import WeChatApiStandIn

TOKEN = "hexiShegong2025"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APP_ID = "wx49f0ab532d5d035a"
SECRET = "0f9c2a7e5b3d4c1a8e6f0b2d4a6c8e0f"
GH = "gh_7f083739789a"
OPENID = "oQx9s5W0aBcDeFgHiJkLmNoPqRsT"
CORP_ID = "wx5823bf96d3bd56c7"
_msg_ids = itertools.count(24_123_456_789_000_001)


# -- the WeChat side ------------------------------------------------------------------------------

def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def message(kind: str = "text", user: str = OPENID, to: str = GH, created: int | None = None,
            msg_id: int | None = None, **fields: Any) -> str:
    """A callback body as WeChat writes it; events carry no MsgId."""
    parts = {"ToUserName": cdata(to), "FromUserName": cdata(user), "CreateTime": str(created or int(time.time())),
             "MsgType": cdata(kind)}
    parts.update({k: v if isinstance(v, (int, float)) else cdata(v) for k, v in fields.items()})
    if kind != "event":
        parts["MsgId"] = str(msg_id or next(_msg_ids))
    return "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in parts.items()) + "</xml>"


def text(content: str, **kw: Any) -> str:
    return message("text", Content=content, **kw)


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass
class WeChatSide:
    """Sign and encrypt callbacks, read replies: what WeChat's servers do (wechatpy for the AES part)."""

    kind: str = "official"
    aes_key: str | None = None
    receiver: str = APP_ID
    token: str = TOKEN
    clock: Any = time.time

    def fresh(self) -> tuple[str, str]:
        return str(int(self.clock())), str(secrets.randbelow(10**9))

    def verification(self, echostr: str = "7239648265397215392") -> dict[str, str]:
        timestamp, nonce = self.fresh()
        if self.kind == "wecom":
            echostr = self.encrypt(echostr)
            return {"msg_signature": signature(self.token, timestamp, nonce, echostr), "timestamp": timestamp,
                    "nonce": nonce, "echostr": echostr}
        return {"signature": signature(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                "echostr": echostr}

    def encrypt(self, plain: str) -> str:
        key = base64.b64decode(self.aes_key + "=")
        return PrpCrypto(key).encrypt(plain, self.receiver).decode()

    def post(self, body: str, encrypted: bool | None = None, to: str = GH) -> tuple[dict[str, str], bytes]:
        timestamp, nonce = self.fresh()
        params = {"timestamp": timestamp, "nonce": nonce}
        if self.kind == "official":
            params |= {"signature": signature(self.token, timestamp, nonce), "openid": OPENID}
        if encrypted is None:
            encrypted = self.aes_key is not None
        if not encrypted:
            return params, body.encode()
        encrypt = self.encrypt(body)
        if self.kind == "official":
            params["encrypt_type"] = "aes"
        params["msg_signature"] = signature(self.token, timestamp, nonce, encrypt)
        return params, f"<xml><ToUserName>{cdata(to)}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>".encode()

    def read(self, response: httpx.Response) -> dict[str, str]:
        """The fields of a passive reply, decrypted and its signature checked when encrypted."""
        assert response.status_code == 200, response.text
        fields = xmltodict.parse(response.text)["xml"]
        if "Encrypt" in fields:
            crypto = WeChatCrypto(self.token, self.aes_key, self.receiver)
            plain = crypto.decrypt_message(response.text, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
            fields = xmltodict.parse(plain)["xml"]
        return fields


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


class Recording:
    """The real (fake-wired) conversation, recording what reaches it; optionally slow or held at a gate."""

    def __init__(self, inner=None, delay: float = 0.0, gate: threading.Event | None = None):
        self.inner, self.fakes = (inner, {}) if inner is not None else make_conversation()
        self.delay, self.gate = delay, gate
        self.seen: list[Incoming] = []

    def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        time.sleep(self.delay)
        return self.inner.handle(incoming)


@dataclass
class Harness:
    channel: WeChatChannel
    client: httpx.AsyncClient
    side: WeChatSide
    core: Recording
    standin: WeChatApiStandIn
    responses: list[httpx.Response] = field(default_factory=list)

    async def get(self, params: dict[str, str]) -> httpx.Response:
        return await self.client.get("/wechat", params=params)

    async def post(self, body: str, encrypted: bool | None = None, **params: str) -> httpx.Response:
        query, raw = self.side.post(body, encrypted)
        return await self.client.post("/wechat", params=query | params, content=raw,
                                      headers={"Content-Type": "text/xml"})

    async def say(self, content: str, user: str = OPENID) -> str:
        return self.side.read(await self.post(text(content, user=user)))["Content"]


@pytest.fixture
def standin():
    server = WeChatApiStandIn(APP_ID, SECRET).start()
    yield server
    server.stop()
    assert not server.unknown, f"unexpected API calls: {server.unknown}"


@pytest.fixture
def wecom_standin():
    server = WeChatApiStandIn(CORP_ID, SECRET, kind="wecom").start()
    yield server
    server.stop()
    assert not server.unknown, f"unexpected API calls: {server.unknown}"


@contextlib.asynccontextmanager
async def serving(standin: WeChatApiStandIn, core: Recording | None = None, kind: str = "official",
                  aes_key: str | None = None, app_id: str = APP_ID, reply_within: float = 3.0, clock=time.time,
                  outbox=None, token: str = TOKEN, start: bool = True):
    core = core or Recording()
    settings = WeChatSettings(kind=kind, app_id=app_id, api_base=standin.base_url, reply_within_seconds=reply_within,
                              agent_id="1000002" if kind == "wecom" else "")
    channel = WeChatChannel(core, settings, token, aes_key, SECRET, outbox=outbox, clock=clock, outbox_interval=0.05)
    app = create_web_app(core, WebSettings(), extra_routes=[channel.router])
    side = WeChatSide(kind, aes_key, app_id, token, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wechat.test") as client:
        if start:
            await channel.start()
        try:
            yield Harness(channel, client, side, core, standin)
        finally:
            await channel.stop()


# -- URL verification -----------------------------------------------------------------------------

async def test_official_account_url_verification_echoes_echostr_when_signed(standin):
    async with serving(standin) as wx:
        response = await wx.get(wx.side.verification("7239648265397215392"))

    assert response.status_code == 200
    assert response.text == "7239648265397215392"


async def test_wecom_url_verification_answers_the_documented_samples_decrypted_echostr(wecom_standin):
    sample = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
              "nonce": "263014780",
              "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
    async with serving(wecom_standin, kind="wecom", aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                       app_id=CORP_ID, token="QDG6eK", clock=lambda: 1409659600.0) as wx:
        response = await wx.get(sample)
        tampered = await wx.get(sample | {"nonce": "263014781"})

    assert response.status_code == 200
    assert response.text == "1616140317555161061"
    assert tampered.status_code == 403


async def test_wecom_url_verification_of_a_fresh_echostr(wecom_standin):
    async with serving(wecom_standin, kind="wecom", aes_key=AES_KEY, app_id=CORP_ID) as wx:
        response = await wx.get(wx.side.verification("5927348813450217"))

    assert (response.status_code, response.text) == (200, "5927348813450217")


@pytest.mark.parametrize("change", [
    {"signature": "0" * 40},
    {"signature": None},
    {"timestamp": None},
    {"nonce": "changed"},
    {"timestamp": str(int(time.time()) - 3600)},
])
async def test_url_verification_with_a_bad_missing_or_stale_signature_is_refused(standin, change):
    async with serving(standin) as wx:
        params = wx.side.verification()
        if change.get("timestamp") and change["timestamp"] != params["timestamp"]:  # re-sign the old timestamp
            change = change | {"signature": signature(TOKEN, change["timestamp"], params["nonce"])}
        params = {k: v for k, v in (params | change).items() if v is not None}
        response = await wx.get(params)

    assert response.status_code == 403
    assert "7239648265397215392" not in response.text


@pytest.mark.parametrize("settings,token,aes_key,secret,problem", [
    ({"kind": "none"}, TOKEN, None, SECRET, "kind"),
    ({"kind": "official"}, "", None, SECRET, "WECHAT_TOKEN"),
    ({"kind": "official", "app_id": ""}, TOKEN, None, SECRET, "app_id"),
    ({"kind": "official"}, TOKEN, None, "", "WECHAT_APP_SECRET"),
    ({"kind": "official"}, TOKEN, "too-short", SECRET, "43"),
    ({"kind": "wecom", "agent_id": "1000002"}, TOKEN, None, SECRET, "WECHAT_AES_KEY"),
    ({"kind": "wecom"}, TOKEN, AES_KEY, SECRET, "agent_id"),
])
def test_a_missing_or_malformed_setting_is_a_config_error_naming_it(settings, token, aes_key, secret, problem):
    with pytest.raises(ConfigError, match=problem):
        WeChatChannel(Recording(), WeChatSettings(**({"app_id": APP_ID} | settings)), token, aes_key, secret)


# -- messages and replies -------------------------------------------------------------------------

async def test_a_plain_question_is_answered_passively_with_its_source(standin):
    async with serving(standin) as wx:
        reply = wx.side.read(await wx.post(text("老人家食堂办卡要带啥材料")))

    assert reply["MsgType"] == "text"
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, GH)
    assert "身份证" in reply["Content"]
    assert "来源：《河西区老人家食堂助餐服务办理指南" in reply["Content"]
    assert abs(int(reply["CreateTime"]) - time.time()) < 60
    assert standin.calls == []  # answered in time: no message API


async def test_a_safe_mode_message_gets_an_encrypted_reply_that_decrypts_to_the_answer(standin):
    async with serving(standin, aes_key=AES_KEY) as wx:
        query, body = wx.side.post(text("老人家食堂办卡要带啥材料"))
        response = await wx.client.post("/wechat", params=query, content=body)
        reply = wx.side.read(response)
        [seen] = wx.core.seen

    envelope = xmltodict.parse(response.text)["xml"]
    assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert envelope["Nonce"] != query["nonce"]  # a fresh nonce, not an echo of the request's
    assert "身份证" not in response.text
    assert "身份证" in reply["Content"] and "来源" in reply["Content"]
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, GH)
    assert (seen.channel, seen.user_id, seen.kind) == ("wechat", OPENID, "text")


async def test_the_wecom_documented_sample_message_reaches_the_core_and_is_answered_encrypted(wecom_standin):
    sample_body = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdv"
        "o+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiS"
        "pGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3"
        "Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4"
        "XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN"
        "+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
    query = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
             "nonce": "1372623149"}
    async with serving(wecom_standin, kind="wecom", aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                       app_id=CORP_ID, token="QDG6eK", clock=lambda: 1409659820.0) as wx:
        response = await wx.client.post("/wechat", params=query, content=sample_body.encode())
        reply = wx.side.read(response)
        [seen] = wx.core.seen

    assert (seen.user_id, seen.text, seen.kind) == ("mycreate", "hello", "text")
    assert (reply["ToUserName"], reply["FromUserName"]) == ("mycreate", CORP_ID)
    assert reply["Content"] == wx.core.inner.handle(Incoming("wechat", "someone-else", "hello"))[0].text


async def test_a_retry_while_the_first_attempt_is_in_flight_runs_the_core_once(standin):
    gate = threading.Event()
    async with serving(standin, Recording(gate=gate)) as wx:
        body = text("老人家食堂办卡要带啥材料")
        first = asyncio.create_task(wx.post(body))
        await asyncio.sleep(0.2)
        retry = asyncio.create_task(wx.post(body))  # same MsgId, new timestamp, nonce and signature
        await asyncio.sleep(0.2)
        gate.set()
        answers = [wx.side.read(r)["Content"] for r in await asyncio.gather(first, retry)]
        late_retry = wx.side.read(await wx.post(body))["Content"]

    assert len(wx.core.seen) == 1
    assert answers[0] == answers[1] == late_retry
    assert "身份证" in answers[0]


async def test_a_repeated_event_is_recognised_by_sender_and_create_time(standin):
    async with serving(standin) as wx:
        event = message("event", Event="subscribe", created=int(time.time()))
        welcomes = [wx.side.read(await wx.post(event))["Content"] for _ in range(2)]

    assert len(wx.core.seen) == 1
    assert welcomes[0] == welcomes[1] == texts.WELCOME


async def test_a_slow_answer_is_acknowledged_with_success_and_sent_through_the_api(standin):
    async with serving(standin, Recording(delay=6.0), reply_within=0.5) as wx:
        body = text("老人家食堂办卡要带啥材料")
        started = time.monotonic()
        response = await wx.post(body)
        waited = time.monotonic() - started
        retry = await wx.post(body)  # as if the acknowledgement had been lost
        [delivered] = await standin.wait_for_delivery(1, OPENID, timeout=10)
        await asyncio.sleep(0.2)

    assert (response.status_code, response.text) == (200, "success")
    assert waited < 2.0
    assert (retry.status_code, retry.text) == (200, "success")
    assert len(wx.core.seen) == 1
    assert "身份证" in delivered and "来源" in delivered
    [token_call] = standin.token_calls()
    assert token_call.query == {"grant_type": "client_credential", "appid": APP_ID, "secret": SECRET}
    [send] = standin.send_calls()
    assert send.query == {"access_token": "TOKEN-1"}
    assert send.json["touser"] == OPENID and send.json["msgtype"] == "text"
    assert "身份证".encode() in send.body  # UTF-8, not \\u escapes, which WeChat would show as they are


async def test_a_late_wecom_answer_goes_through_the_app_message_api_with_its_agent_id(wecom_standin):
    async with serving(wecom_standin, Recording(delay=1.0), kind="wecom", aes_key=AES_KEY, app_id=CORP_ID,
                       reply_within=0.3) as wx:
        response = await wx.post(text("老人家食堂办卡要带啥材料", user="ZhangXiaoHong", to=CORP_ID))
        [delivered] = await wecom_standin.wait_for_delivery(1, "ZhangXiaoHong")

    assert response.text == "success"
    assert "身份证" in delivered
    assert wecom_standin.token_calls()[0].query == {"corpid": CORP_ID, "corpsecret": SECRET}
    [send] = wecom_standin.send_calls()
    assert send.path == "/cgi-bin/message/send"
    assert send.json["agentid"] == 1000002


async def test_a_long_answer_sends_its_first_part_passively_and_the_rest_through_the_api(standin):
    class Talkative:
        def handle(self, incoming):
            return [Reply("\n".join(f"第{i}条：申请居家养老服务补贴需要提供身份证、户口簿和收入证明。" for i in range(80)))]

    answer = Talkative().handle(None)[0].text
    async with serving(standin, Recording(Talkative())) as wx:
        first = wx.side.read(await wx.post(text("养老补贴")))["Content"]
        await eventually(lambda: standin.delivered() and "第79条" in standin.delivered()[-1])
        rest = standin.delivered()

    assert all(len(part.encode()) <= 2000 for part in [first, *rest])
    assert len(rest) >= 3
    assert "\n".join([first, *rest]) == answer  # cut at line ends, in order, nothing lost or repeated


async def test_a_failing_core_is_answered_with_an_apology_not_an_error_status(standin):
    class Broken:
        def handle(self, incoming):
            raise RuntimeError("database went away")

    async with serving(standin, Recording(Broken())) as wx:
        reply = wx.side.read(await wx.post(text("3号楼暖气不热")))

    assert reply["Content"] == texts.ERROR


# -- refused requests ------------------------------------------------------------------------------

@pytest.mark.parametrize("aes_key", [None, AES_KEY], ids=["plain", "safe-mode"])
async def test_a_message_with_a_bad_signature_is_refused_without_reaching_the_core(standin, aes_key):
    async with serving(standin, aes_key=aes_key) as wx:
        query, body = wx.side.post(text("3号楼暖气不热"))
        name = "msg_signature" if aes_key else "signature"
        response = await wx.client.post("/wechat", params=query | {name: "f" * 40}, content=body)

    assert response.status_code == 403
    assert wx.core.seen == []


@pytest.mark.parametrize("drop", ["signature", "msg_signature", "timestamp", "nonce", "all"])
async def test_an_unsigned_message_is_refused(standin, drop):
    async with serving(standin, aes_key=AES_KEY if drop == "msg_signature" else None) as wx:
        query, body = wx.side.post(text("3号楼暖气不热"))
        query = {} if drop == "all" else {k: v for k, v in query.items() if k != drop}
        response = await wx.client.post("/wechat", params=query, content=body)

    assert response.status_code == 403
    assert wx.core.seen == []


async def test_a_plain_message_to_a_wecom_app_is_refused(wecom_standin):
    async with serving(wecom_standin, kind="wecom", aes_key=AES_KEY, app_id=CORP_ID) as wx:
        query, _ = wx.side.post("", encrypted=False)
        response = await wx.client.post("/wechat", params=query | {"signature": signature(TOKEN, *query.values())},
                                        content=text("3号楼暖气不热", to=CORP_ID).encode())

    assert response.status_code == 403
    assert wx.core.seen == []


async def test_an_encrypted_message_without_a_configured_key_is_refused_not_crashed(standin):
    async with serving(standin) as wx:  # plain mode: no EncodingAESKey
        side = WeChatSide(aes_key=AES_KEY)
        query, body = side.post(text("3号楼暖气不热"))
        response = await wx.client.post("/wechat", params=query, content=body)

    assert response.status_code == 400
    assert wx.core.seen == []


async def test_a_message_signed_five_minutes_ago_or_more_is_refused(standin):
    async with serving(standin) as wx:
        old = str(int(time.time()) - 301)
        query = {"timestamp": old, "nonce": "4242", "signature": signature(TOKEN, old, "4242")}
        response = await wx.client.post("/wechat", params=query, content=text("3号楼暖气不热").encode())

    assert response.status_code == 403
    assert wx.core.seen == []


@pytest.mark.parametrize("body", [
    b"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><Content>",
    "3号楼暖气不热".encode(),
    b"<html><body>hi</body></html>",
    b"",
    "<xml><Content>楼道堆物</Content>".encode("gbk") + b"</xml>",
    text("3号楼暖气不热").replace("</xml>", "<Content><![CDATA[x]]></Content></xml>").encode(),
    b"<xml>" + b"<a>" * 50 + b"</a>" * 50 + b"</xml>",
], ids=["truncated", "not-xml", "wrong-root", "empty", "gbk", "duplicate-field", "too-deep"])
async def test_malformed_xml_is_refused_with_400(standin, body):
    async with serving(standin) as wx:
        query, _ = wx.side.post("", encrypted=False)  # signed: only the body is wrong
        response = await wx.client.post("/wechat", params=query, content=body)

    assert response.status_code == 400
    assert wx.core.seen == []


XXE = ('<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
       "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&xxe;</Content>"
       "<MsgId>24123456789012345</MsgId></xml>")
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]>' + XXE[XXE.index("<xml>"):].replace("&xxe;", "&lol3;"))


@pytest.mark.parametrize("payload,encoding,encrypted", [
    (XXE, "utf-8", False), (XXE, "utf-8", True), (LAUGHS, "utf-8", False), (XXE, "utf-16", False),
    (XXE.replace("<!DOCTYPE", "<!doctype"), "utf-8", False),
], ids=["xxe", "xxe-inside-encryption", "billion-laughs", "xxe-utf16", "lowercase-doctype"])
async def test_an_xxe_payload_is_refused_and_no_file_content_leaks(standin, payload, encoding, encrypted):
    async with serving(standin, aes_key=AES_KEY if encrypted else None) as wx:
        query, body = wx.side.post(payload, encrypted)
        if not encrypted:
            body = payload.encode(encoding)
        response = await wx.client.post("/wechat", params=query, content=body)

    assert response.status_code == 400
    assert "root:" not in response.text and "lollol" not in response.text
    assert wx.core.seen == []


async def test_an_oversized_body_is_refused_with_413(standin):
    async with serving(standin) as wx:
        response = await wx.post(text("漏水" * 40000))

    assert response.status_code == 413
    assert wx.core.seen == []


# -- what reaches the core ----------------------------------------------------------------------------

async def test_images_locations_menu_clicks_and_subscriptions_reach_the_core_as_the_right_incoming(standin):
    async with serving(standin) as wx:
        await wx.post(message("image", PicUrl="http://mmbiz.qpic.cn/mmbiz_jpg/abc/0", MediaId="media-1"))
        await wx.post(message("location", Location_X=39.123456, Location_Y=117.201234, Scale=15,
                              Label="天津市河西区景村里3号楼"))
        await wx.post(message("event", Event="CLICK", EventKey="choose:request", created=int(time.time()) + 1))
        await wx.post(message("event", Event="subscribe", EventKey="qrscene_hexi", created=int(time.time()) + 2))
        await wx.post(message("voice", MediaId="voice-1", Format="amr"))
        await wx.post(message("shortvideo", MediaId="video-1", ThumbMediaId="thumb-1"))
        photo, location, click, subscribe, voice, video = wx.core.seen

    assert photo == Incoming("wechat", OPENID, photos=("http://mmbiz.qpic.cn/mmbiz_jpg/abc/0",), kind="photo")
    assert location == Incoming("wechat", OPENID, location=Location(39.123456, 117.201234, "天津市河西区景村里3号楼"),
                                kind="location")
    assert click == Incoming("wechat", OPENID, button="choose:request", kind="button")
    assert subscribe == Incoming("wechat", OPENID, text="/start", kind="text")
    assert (voice.kind, video.kind) == ("voice", "video")


async def test_a_voice_message_with_wechats_recognition_is_read_as_text(standin):
    async with serving(standin) as wx:
        reply = wx.side.read(await wx.post(message("voice", MediaId="v", Format="amr",
                                                   Recognition="老人家食堂办卡要带啥材料")))

    assert wx.core.seen[0].kind == "text"
    assert "身份证" in reply["Content"]


@pytest.mark.parametrize("event", [
    {"Event": "unsubscribe"}, {"Event": "LOCATION", "Latitude": 39.1, "Longitude": 117.2},
    {"Event": "VIEW", "EventKey": "https://example.org"}, {"Event": "enter_agent"},
])
async def test_events_that_are_no_act_of_the_resident_are_acknowledged_without_the_core(standin, event):
    async with serving(standin) as wx:
        response = await wx.post(message("event", **event))

    assert (response.status_code, response.text) == (200, "success")
    assert wx.core.seen == []


async def test_a_report_made_with_numbered_replies_files_a_ticket(standin):
    async with serving(standin) as wx:
        asks_phone = await wx.say("景村里3号楼2单元暖气不热，好几天了")
        asks_time = await wx.say("13812345678")
        summary = await wx.say("1")
        filed = await wx.say("１")  # a full-width digit from a Chinese keyboard

    desk = wx.core.fakes["desk"]
    assert "电话" in asks_phone
    assert "【1】随时都可以" in asks_time and "回复数字" in asks_time
    assert "联系时间：随时" in summary and "【1】确认提交" in summary
    [ticket] = desk.tickets.values()
    assert ticket.id in filed
    [draft] = desk.drafts
    assert (draft.channel, draft.user_id, draft.category, draft.contact_time) == ("wechat", OPENID, "供暖", "随时")


async def test_a_number_without_buttons_on_screen_is_plain_text(standin):
    async with serving(standin) as wx:
        await wx.say("你好")  # the greeting carries no buttons
        await wx.say("1")

    assert wx.core.seen[-1] == Incoming("wechat", OPENID, text="1", kind="text")


# -- the message API ------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def api_client(standin: WeChatApiStandIn, clock):
    async with httpx.AsyncClient(timeout=5) as http:
        yield WeChatApi("official", standin.base_url, APP_ID, SECRET, http, clock=clock)


async def test_the_access_token_is_cached_and_replaced_before_it_expires(standin):
    now = [1_750_000_000.0]
    async with api_client(standin, lambda: now[0]) as api:
        await api.send_text(OPENID, "您好")
        now[0] += 7200 - REFRESH_MARGIN - 1
        await api.send_text(OPENID, "您反映的问题已处理")
        assert len(standin.token_calls()) == 1
        now[0] += 2
        await api.send_text(OPENID, "请评价")

    assert len(standin.token_calls()) == 2
    assert [c.query["access_token"] for c in standin.send_calls()] == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]
    assert standin.delivered() == ["您好", "您反映的问题已处理", "请评价"]


async def test_a_refused_access_token_is_refreshed_once_and_the_message_sent_again(standin):
    async with api_client(standin, time.time) as api:
        await api.send_text(OPENID, "您好")
        standin.revoke_tokens()  # another client fetched a token, which retires ours
        await api.send_text(OPENID, "工单已受理")

    assert len(standin.token_calls()) == 2
    assert [c.answer["errcode"] for c in standin.send_calls()] == [0, 40001, 0]
    assert standin.delivered() == ["您好", "工单已受理"]


async def test_the_token_is_refreshed_only_once_when_the_api_keeps_refusing_it(standin):
    standin.fail_next_sends(40001, 40001, 40001)
    async with api_client(standin, time.time) as api:
        with pytest.raises(WeChatApiError) as refused:
            await api.send_text(OPENID, "您好")

    assert refused.value.errcode == 40001
    assert (len(standin.token_calls()), len(standin.send_calls())) == (2, 2)


async def test_secrets_and_tokens_never_reach_the_logs(standin, caplog):
    caplog.set_level(logging.DEBUG)
    async with serving(standin, Recording(delay=0.6), reply_within=0.2) as wx:
        await wx.post(text("老人家食堂办卡要带啥材料"))
        await standin.wait_for_delivery(1)
        await wx.client.get("/wechat", params={"signature": "x", "timestamp": "1", "nonce": "2", "echostr": "e"})

    assert "/cgi-bin/token" in caplog.text  # httpx did log the requests …
    for secret in (SECRET, "TOKEN-1", TOKEN):
        assert secret not in caplog.text  # … with the secrets replaced


# -- the outbox -----------------------------------------------------------------------------------------

@pytest.fixture
def outbox(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    Base.metadata.create_all(engine)
    yield SqlOutbox(sessionmaker(engine))
    engine.dispose()


async def test_an_outbox_notification_is_delivered_through_the_api_and_its_numbers_rate_the_ticket(standin, outbox):
    core = Recording()
    desk = core.fakes["desk"]
    ticket = desk.file(TicketDraft("wechat", OPENID, "景村里3号楼暖气不热", category="供暖"))
    outbox.notify("wechat", OPENID, Reply(f"工单 {ticket.id} 已处理：换了暖气阀门。{texts.RATE_PROMPT}",
                                          buttons=rating_buttons(ticket.id)))
    outbox.notify("telegram", "42", Reply("这条属于 Telegram"))
    async with serving(standin, core, outbox=outbox) as wx:
        [notice] = await standin.wait_for_delivery(1, OPENID, timeout=5)
        await eventually(lambda: not outbox.pending("wechat"))  # marked sent right after the API accepted it
        thanks = await wx.say("5")

    assert "【5】5分" in notice and "【1】1分" in notice and "【6】没解决" in notice
    assert outbox.pending("wechat") == []
    assert [m.user_id for m in outbox.pending("telegram")] == ["42"]
    assert desk.ratings == [(ticket.id, 5, "")]
    assert "5分" in thanks


async def test_an_unreachable_resident_does_not_hold_up_the_other_notifications(standin, outbox):
    outbox.notify("wechat", "o-left-48h-ago", Reply("您的工单已处理"))
    outbox.notify("wechat", OPENID, Reply("您的工单已受理"))
    standin.fail_next_sends(45015)  # outside the 48-hour window in which an account may write first
    async with serving(standin, outbox=outbox, start=False) as wx:  # one round, without the loop
        sent = await wx.channel.deliver_outbox()

    assert sent == 1
    assert standin.delivered() == ["您的工单已受理"]
    assert [m.user_id for m in outbox.pending("wechat")] == ["o-left-48h-ago"]


async def test_a_thumbs_down_by_number_with_its_reason_reaches_the_log_and_a_curated_answer_takes_over(standin):
    from tests.fakes import sqlite_answer_stores

    answers, curated = sqlite_answer_stores()
    curated.save("老人家食堂几点开门", "老人家食堂每天10:30开门（2026年12月起）。", "景村社区通知", "staff:1")
    inner, _ = make_conversation(answers=answers, curated=curated)
    async with serving(standin, Recording(inner)) as wx:
        answered = await wx.say("老人家食堂要带什么材料")
        down = next(n for n, label in re.findall(r"【(\d+)】([^\n【]+)", answered) if label.strip() == "👎 没用")
        why = await wx.say(down)
        outdated = next(n for n, label in re.findall(r"【(\d+)】([^\n【]+)", why) if label.strip() == "内容过时")
        thanks = await wx.say(outdated)
        taken = await wx.say("老人家食堂几点开门")

    [logged_curated, logged] = answers.recent("all")
    assert "是哪里不好" in why and "已记下" in thanks
    assert (logged.vote, logged.reason, logged.channel) == ("down", "内容过时", "wechat")
    assert "10:30" in taken and "社区工作人员答复" in taken and logged_curated.sources == ["工作人员答复 #1"]


async def test_an_expired_document_is_not_cited_on_wechat(standin, tmp_path):
    from tests.fakes import lifecycle_retriever

    inner, _ = make_conversation(retriever=lifecycle_retriever(tmp_path))
    async with serving(standin, Recording(inner)) as wx:
        answer = await wx.say("助浴车每周几来，收费多少")

    assert "2026年社区助浴服务" in answer and "2024年社区助浴服务" not in answer and "20元" not in answer


async def test_a_staff_only_document_is_cited_to_a_worker_and_never_to_a_resident_on_wechat(standin, tmp_path):
    from tests.fakes import STAFF_QUESTION, KnownStaff, audience_retriever

    inner, _ = make_conversation(retriever=audience_retriever(tmp_path),
                                 staff=KnownStaff({("wechat", "o-worker-openid")}))
    async with serving(standin, Recording(inner)) as wx:
        resident = await wx.say(STAFF_QUESTION)
        worker = await wx.say(STAFF_QUESTION, user="o-worker-openid")

    assert "走访手册" not in resident and "每月至少走访" not in resident
    assert "网格员走访手册（内部）" in worker and "每月至少走访" in worker and "请勿转发居民" in worker


# -- several replicas behind one callback URL ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_replicas_answer_a_retried_message_once_and_read_a_choice_the_other_one_showed(standin, tmp_path,
                                                                                                  kind):
    from tests.integration.db import open_database
    from bot.storage.update_claims import SqlUpdateClaims
    from bot.storage.wechat_shared import SqlButtonMemory

    with open_database(kind, tmp_path) as db:
        core = Recording()
        settings = WeChatSettings(kind="official", app_id=APP_ID, api_base=standin.base_url, reply_within_seconds=3.0)
        replicas = [WeChatChannel(core, settings, TOKEN, None, SECRET, claims=SqlUpdateClaims(db.sessions),
                                  buttons=SqlButtonMemory(db.sessions)) for _ in range(2)]
        side = WeChatSide("official", None, APP_ID, TOKEN, time.time)
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(core, WebSettings(),
                                                                                      extra_routes=[r.router])),
                                     base_url="http://wechat.test") for r in replicas]

        async def post(client, body):
            query, raw = side.post(body, None)
            return await client.post("/wechat", params=query, content=raw, headers={"Content-Type": "text/xml"})

        try:
            body = text("老人家食堂要带什么材料", msg_id=880001)
            first = await post(clients[0], body)
            retry = await post(clients[1], body)  # WeChat's retry lands on the other replica
            asked = await post(clients[0], text("我家暖气不热", msg_id=880002))
            chose = await post(clients[1], text("1", msg_id=880003))  # the first numbered choice, on the other one
        finally:
            for client in clients:
                await client.aclose()
            for replica in replicas:
                await replica.stop()

    seen = [i.text or i.button for i in core.seen]
    assert seen.count("老人家食堂要带什么材料") == 1
    assert side.read(first)["Content"] and retry.text == "success"
    assert "【1】只是咨询，不用派单" in side.read(asked)["Content"]
    assert (core.seen[-1].button or "").startswith("ask_instead:")  # the button the other replica showed, not "1"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_replicas_share_one_access_token_and_one_refresh(standin, tmp_path, kind):
    """Each token WeChat hands out retires the one before: replicas fetching their own would retire each other's."""
    from tests.integration.db import open_database
    from bot.storage.wechat_shared import SqlTokenStore

    with open_database(kind, tmp_path) as db:
        async with httpx.AsyncClient(timeout=5) as http:
            replicas = [WeChatApi("official", standin.base_url, APP_ID, SECRET, http, shared=SqlTokenStore(db.sessions))
                        for _ in range(3)]
            await asyncio.gather(*(r.send_text(OPENID, f"您好{i}") for i, r in enumerate(replicas)))
            first_tokens = len(standin.token_calls())
            standin.revoke_tokens()  # WeChat no longer takes TOKEN-1 (say it was reset in the admin panel)
            await asyncio.gather(*(r.send_text(OPENID, f"工单已受理{i}") for i, r in enumerate(replicas)))
            await replicas[0].send_text(OPENID, "请评价")

    assert first_tokens == 1  # three replicas at once: one fetch, under the lease
    assert len(standin.token_calls()) == 2  # the refused token replaced once for all three
    assert sorted(standin.delivered()) == sorted([f"您好{i}" for i in range(3)] + [f"工单已受理{i}" for i in range(3)]
                                                 + ["请评价"])
    assert {c.query["access_token"] for c in standin.send_calls() if c.answer["errcode"] == 0} == {"TOKEN-1", "TOKEN-2"}
