"""No secret and no resident's phone or ID number in any log line an operator sees.

The service's logging is set up the way `python -m bot` sets it up
(bot.logs.setup_logging: one stream handler on the root logger, with the
masking filter install_log_masking attaches), and this test reads what that
handler writes. Every logger is turned up to DEBUG, libraries included
(python-telegram-bot, httpx, httpcore), so the check covers the most an
operator could ever switch on. Records as pytest's caplog captures them are not
the operator's view: the masking filter sits on the root's handlers, so a
handler added later (caplog's) may hold unmasked text by design.

The flow: a resident reports over Telegram (the real python-telegram-bot against
the Bot API stand-in, with a token) with a phone and an ID number in the text,
the worker gets the ticket over Telegram and accepts it with its button; a web
resident and a WeChat resident (signed message, the answer sent through the
message API, which fetches an access token with the app secret) write the same;
a staff member logs into the console with a wrong and then the right password,
and with a one-time link from the chat.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from contextlib import contextmanager

import pytest

from tests.e2e.botapi_standin import BotApiStandIn
from tests.integration.test_wechat import WeChatSide, text as wechat_text
from tests.integration.wechat_standin import WeChatApiStandIn
from tests.reliability.support import Site, count

TELEGRAM_TOKEN = "987654321:AAH-logs_Secret-Token_abcdefghijkl"
WEBHOOK_SECRET = "webhook-Secret_for_the_logs_test"
WECHAT_TOKEN = "wxCallbackTokenLogs2025"
WECHAT_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WECHAT_APP_ID = "wx49f0ab532d5d035a"
WECHAT_SECRET = "5e0c9a7b3d1f4e2a8c6b0d9f7e5a3c1b"
PASSWORD = "冬天暖气要热Secret2026"
WRONG_PASSWORD = "Wrong-Password-2026"
PHONE = "13812345678"
ID_NUMBER = "110101199003071234"
RESIDENT, WORKER = 4242, 777001  # Telegram ids
REPORT = f"景村里3号楼2单元暖气不热，我电话{PHONE}，身份证{ID_NUMBER}，晚上在家"
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
LIBRARIES = ("telegram", "httpx", "httpcore", "bot", "uvicorn", "sqlalchemy.engine.Engine", "chromadb", "asyncio")
QUIETED = ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3", "telegram.ext.Updater")  # by setup_logging


@contextmanager
def operator_logging(monkeypatch):
    """Logging as `python -m bot` sets it up, at DEBUG for everything; yield the text its handler writes."""
    from bot.logs import setup_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in LIBRARIES + QUIETED}
    for handler in saved_handlers:
        root.removeHandler(handler)
    monkeypatch.setenv("BOT_LOG_LEVEL", "DEBUG")
    setup_logging()
    [handler] = root.handlers
    stream = io.StringIO()
    handler.setStream(stream)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG)
    for saved in saved_handlers:  # pytest's own capture keeps working beside it
        root.addHandler(saved)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def operator_log(tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """The lines the operator's handler wrote while the flow ran, and the credentials the flow created."""
    with pytest.MonkeyPatch.context() as monkeypatch, operator_logging(monkeypatch) as stream:
        site = Site(tmp_path_factory.mktemp("logs"))
        try:
            created = run_the_flow(site)
        finally:
            site.close()
    lines = stream.getvalue().splitlines()
    count("logs: formatted log lines scanned", len(lines))
    return lines, created


def leaks_of(lines: list[str], secrets: list[str]) -> list[tuple[str, str]]:
    return [(secret[:12], line[:300]) for line in lines for secret in secrets if secret and secret in line]


def test_no_token_secret_password_phone_or_id_number_reaches_the_operators_log(operator_log):
    lines, created = operator_log
    secrets = [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], WEBHOOK_SECRET, WECHAT_TOKEN, WECHAT_AES_KEY,
               WECHAT_SECRET, PASSWORD, WRONG_PASSWORD, PHONE, ID_NUMBER, created["session cookie"]]
    count("logs: secrets and personal values looked for", len(secrets) + 2)

    assert len(lines) > 100 and any("filed" in line for line in lines)  # the flow did log, at DEBUG
    assert any("HTTP Request" in line and "cgi-bin/token" in line for line in lines)  # the secret-bearing URL
    assert any("sendMessage" in line for line in lines) and any("console login of staff" in line for line in lines)
    assert leaks_of(lines, secrets) == []
    assert [line[:300] for line in lines if MOBILE.search(line) or ID.search(line)] == []


def test_a_one_time_console_login_link_never_reaches_the_operators_log(operator_log):
    lines, created = operator_log
    assert leaks_of(lines, [created["login link token"]]) == []


class Late:
    """The conversation, answering after WeChat's passive window: the answer goes out through the message API."""

    def __init__(self, conversation):
        self.conversation = conversation

    def handle(self, incoming):
        time.sleep(0.3)
        return self.conversation.handle(incoming)


def run_the_flow(site: Site) -> dict[str, str]:
    """Run every channel once with personal data and secrets in play; return the credentials it created."""
    from bot.channels.telegram import TelegramChannel
    from bot.channels.wechat import WeChatChannel
    from bot.console.auth import set_password
    from bot.settings import WeChatSettings

    botapi = BotApiStandIn(TELEGRAM_TOKEN).start()
    wxapi = WeChatApiStandIn(WECHAT_APP_ID, WECHAT_SECRET).start()
    created: dict[str, str] = {}
    try:
        worker = site.staff(str(WORKER), name="王芳")
        telegram = TelegramChannel(site.service.conversation, TELEGRAM_TOKEN,
                                   site.settings.telegram.model_copy(update={"base_url": botapi.base_url}),
                                   outbox=site.service.outbox, outbox_interval=0.05, poll_timeout=1,
                                   webhook_secret=WEBHOOK_SECRET)
        site.service.kb_chat.fetchers["telegram"] = telegram.fetch_file
        wechat = WeChatChannel(Late(site.service.conversation),
                               WeChatSettings(kind="official", app_id=WECHAT_APP_ID, api_base=wxapi.base_url,
                                              reply_within_seconds=0.05),
                               WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_SECRET, outbox=site.service.outbox,
                               outbox_interval=0.05)
        site.build_app(None, wechat)
        run = site.runner.run
        run(telegram.start())
        run(wechat.start())

        # a resident over Telegram, then the worker accepts with the button the notification carries
        botapi.push_text(RESIDENT, REPORT)  # place, phone and time (晚上在家) in one message: the summary at once
        run(botapi.wait_for_text(RESIDENT, "请确认要提交的内容", timeout=10))
        botapi.push_callback(RESIDENT, "intake:confirm")
        filed = run(botapi.wait_for_text(RESIDENT, "工单号", timeout=10)).params["text"]
        ticket = re.search(r"T\d{11}", filed).group(0)
        run(botapi.wait_for_text(WORKER, PHONE, timeout=10))  # the worker's card shows the phone: theirs to call
        botapi.push_callback(WORKER, f"t:accept:{ticket}")
        run(botapi.wait_for_text(WORKER, "已接单", timeout=10))

        # a web resident, including a double-tapped rating button (a logged failure with its traceback)
        http = site.http()
        http.post("/api/chat", json={"user_id": "web-r1", "text": REPORT})
        http.post("/api/chat", json={"user_id": "web-r1", "text": f"我的电话是{PHONE}"})
        http.post("/api/chat", json={"user_id": "web-r1", "button": f"rate:{ticket}:5"})

        # a WeChat resident: the answer goes out through the message API, which needs the app secret
        side = WeChatSide("official", None, token=WECHAT_TOKEN)
        query, body = side.post(wechat_text(REPORT, user="oResidentOpenId0123456789ab"), encrypted=False)
        assert http.post("/wechat", params=query, content=body).status_code == 200
        run(wxapi.wait_for_delivery(1, timeout=10))

        # the console: a wrong password, the right one, and a one-time link asked for in the chat
        set_password(site.service, worker.staff_id, PASSWORD)
        console = site.http()
        csrf_page = console.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', csrf_page.text).group(1)
        assert console.post("/console/login", data={"csrf": csrf, "name": "王芳", "password": WRONG_PASSWORD}).status_code == 401
        assert console.post("/console/login", data={"csrf": csrf, "name": "王芳", "password": PASSWORD}).status_code == 303
        created["session cookie"] = console.client.cookies.get("dsw_console")
        botapi.push_text(WORKER, "/console")
        link = run(botapi.wait_for_text(WORKER, "/console/login/", timeout=10)).params["text"]
        created["login link token"] = re.search(r"/console/login/([A-Za-z0-9_-]+)", link).group(1)

        run(asyncio.sleep(0.3))  # the outbox loops deliver what is left
        run(wechat.stop())
        run(telegram.stop())
    finally:
        botapi.stop()
        wxapi.stop()
    assert not botapi.unknown and not wxapi.unknown
    return created


def test_the_flow_leaks_nothing_into_replies_to_other_people(make_site):
    """The same check on what people are sent: only the resident themself and the assigned worker see the phone."""
    site = make_site()
    site.staff("w1")
    site.staff("w9", grids=("huajiang-01",))
    site.staff("boss", role="supervisor", community="huajiang")
    ticket = site.report("r1", REPORT)
    count("logs: other people's messages checked for the phone", 1)
    with site.service.sessions() as s:
        from sqlalchemy import select

        from bot.storage.outbox import OutboxRow

        rows = [(r.user_id, r.payload["text"]) for r in s.scalars(select(OutboxRow))]
    assert any(user == "w1" and PHONE in text for user, text in rows)  # the assigned worker may call
    assert [user for user, text in rows if (PHONE in text or ID_NUMBER in text) and user != "w1"] == []
    assert site.service.store.get(ticket).phone == PHONE

