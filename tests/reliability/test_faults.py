"""Faults, short versions: the service killed mid-intake, the database locked, cut or unreachable, the Chroma
server down, Telegram flooding, failing and slow.

Covered elsewhere and not repeated here:
- ingest killed with SIGKILL mid-run (the old index keeps serving, the rerun completes):
  tests/integration/test_ingest_cli.py::test_ingest_killed_while_embedding_leaves_old_index_serving_and_rerun_completes
- the clock jumping hours forward (a restart after hours down): overdue tickets escalate once, on SQLite and
  PostgreSQL: tests/integration/test_scheduler.py::test_a_process_that_was_down_past_the_deadline_escalates_once_on_its_first_tick
  and ::test_an_escalated_ticket_is_not_escalated_again_after_a_restart_or_a_clock_jump
- a failing LLM endpoint (timeouts, 5xx, 429 with retry_after): tests/integration/test_llm_writer.py
- ingest against a Chroma server that is not there: tests/integration/test_chroma_server.py
bench/reliability.py runs these scenarios with timings and prints what the resident saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.standins import ChromaServer, FlakyBotApi, Hang, TcpProxy
from tests.reliability.support import ROOT, Site, copy_knowledge, count, write_site_config

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"


# -- kill -9 of the service mid-intake ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m bot` on a temporary config, started, SIGKILLed and restarted."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        copy_knowledge(folder)
        self.config = write_site_config(folder, port=self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WECHAT_"))}
        self.env = {**env, "PYTHONPATH": str(ROOT), "BOT_LOG_LEVEL": "WARNING"}

    def start(self, timeout: float = 60) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(self.config)], cwd=self.folder,
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.folder / "server.log", "ab"))
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, (self.folder / "server.log").read_text("utf-8", "replace")[-3000:]
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the service did not come up")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def say(self, user: str, text: str = "", button: str | None = None) -> list[dict]:
        response = httpx.post(self.base + "/api/chat", json={"user_id": user, "text": text, "button": button},
                              timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["replies"]

    def tickets(self, user: str) -> list[tuple]:
        with sqlite3.connect(self.folder / "bot.db") as db:
            return db.execute("SELECT id, phone, status FROM ticket WHERE user_id = ?", (user,)).fetchall()


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    yield server
    server.stop()


def test_a_service_killed_mid_intake_continues_the_dialogue_and_files_exactly_one_ticket(server):
    count("faults: kill -9 scenarios", 2)
    server.start()
    user = "web-kill-0001"
    assert "电话" in server.say(user, HEATING)[-1]["text"]
    assert "什么时间" in server.say(user, "13812345678")[-1]["text"]

    server.kill()  # SIGKILL after the phone step: nothing can be flushed on the way out
    server.start()
    summary = server.say(user, button="intake:time:随时")[-1]
    filed = server.say(user, button="intake:confirm")[-1]
    server.kill()  # and again right after the confirmation
    server.start()
    again = server.say(user, button="intake:confirm")[-1]  # the old button pressed again after the restart
    mine = server.say(user, "/my")[-1]

    assert "请确认" in summary["text"] and "13812345678" in summary["text"] and "景村里3号楼2单元" in summary["text"]
    assert filed["ticket_id"] and "工单号" in filed["text"]
    # the old button pressed again is told the ticket it filed, and files nothing more
    assert "已经提交" in again["text"] and filed["ticket_id"] in again["text"] and again["ticket_id"] is None
    assert filed["ticket_id"] in mine["text"]
    assert [t[:2] for t in server.tickets(user)] == [(filed["ticket_id"], "13812345678")]  # exactly one


# -- the database away ---------------------------------------------------------------------------------------

def hold_exclusive_lock(path: Path, seconds: float, locked: threading.Event) -> threading.Thread:
    def hold() -> None:
        db = sqlite3.connect(path, timeout=1, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=hold, name="sqlite-lock")
    thread.start()
    return thread


def test_a_locked_sqlite_database_delays_the_answer_and_loses_nothing(make_site):
    count("faults: database lock scenarios")
    site = make_site()
    site.staff("w1")
    http = site.http()
    say = lambda **body: http.post("/api/chat", json={"user_id": "web-lock", **body})  # noqa: E731
    assert "电话" in say(text=HEATING).json()["replies"][-1]["text"]
    locked = threading.Event()
    holder = hold_exclusive_lock(site.folder / "bot.db", 3.0, locked)
    locked.wait(5)

    started = time.monotonic()
    during = say(text="13812345678")
    waited = time.monotonic() - started
    holder.join()
    after = say(button="intake:time:随时")
    filed = say(button="intake:confirm")

    assert during.status_code == 200 and "什么时间" in during.json()["replies"][-1]["text"]
    assert waited > 2.0  # it waited for the lock rather than failing
    assert "13812345678" in after.json()["replies"][-1]["text"]  # the phone sent during the lock was kept
    ticket = filed.json()["replies"][-1]["ticket_id"]
    assert ticket and site.service.store.get(ticket).phone == "13812345678"


def test_a_database_locked_past_the_busy_timeout_keeps_the_messages_and_answers_them_when_it_is_back(make_site):
    """The busy timeout is 1 s here (30 s by default) and the lock lasts 4 s: the answers cannot wait."""
    count("faults: database lock scenarios")
    site = make_site(busy_timeout=1)
    site.staff("w1")
    http = site.http()
    say = lambda user, **body: http.post("/api/chat", json={"user_id": user, **body})  # noqa: E731
    assert "电话" in say("web-kept", text=HEATING).json()["replies"][-1]["text"]
    locked = threading.Event()
    holder = hold_exclusive_lock(site.folder / "bot.db", 4.0, locked)
    locked.wait(5)

    phone = say("web-kept", text="13812345678")
    emergency = say("web-gas", text="楼道里好大的煤气味，快来人")
    still_locked = site.service.conversation.replay()
    holder.join()
    handled = site.service.conversation.replay()  # what the service's replay loop does every few seconds
    pending = http.get("/api/messages", params={"user_id": "web-kept"}).json()["replies"]
    after = say("web-kept", button="intake:time:随时")
    filed = say("web-kept", button="intake:confirm")

    assert phone.status_code == 200 and phone.json()["replies"][-1]["intent"] == "kept"
    assert [r["intent"] for r in emergency.json()["replies"]] == ["emergency", "kept"]
    assert "119" in emergency.json()["replies"][0]["text"]  # the numbers do not wait for the database
    assert still_locked == 0 and handled == 2
    assert "什么时间" in pending[-1]["text"]  # the kept phone was taken: the next question reached the page
    assert "13812345678" in after.json()["replies"][-1]["text"]
    ticket = filed.json()["replies"][-1]["ticket_id"]
    assert ticket and site.service.store.get(ticket).phone == "13812345678"
    assert list((site.folder / "data" / "journal").iterdir()) == []


@pytest.mark.postgres
def test_postgresql_connections_cut_mid_intake_are_replaced_and_the_dialogue_goes_on(tmp_path_factory,
                                                                                     postgres_schema):
    from sqlalchemy import text

    count("faults: PostgreSQL backends terminated scenarios")
    admin, schema = postgres_schema
    app_name = f"reliability_{schema}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}&application_name={app_name}"
    site = Site(tmp_path_factory.mktemp("pg"), database_url=url)
    try:
        site.staff("w1")
        http = site.http()
        say = lambda **body: http.post("/api/chat", json={"user_id": "web-pg", **body})  # noqa: E731
        assert "电话" in say(text=HEATING).json()["replies"][-1]["text"]
        with admin.connect() as conn:  # only this test's connections: other tests share the server
            cut = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE application_name = :app AND pid <> pg_backend_pid()"), {"app": app_name}).scalar()

        during = say(text="13812345678")
        after = say(button="intake:time:随时")
        filed = say(button="intake:confirm")

        assert cut >= 1
        assert during.status_code == 200 and "什么时间" in during.json()["replies"][-1]["text"]
        assert "13812345678" in after.json()["replies"][-1]["text"]
        ticket = filed.json()["replies"][-1]["ticket_id"]
        assert ticket and site.service.store.get(ticket).phone == "13812345678"
    finally:
        site.close()


@pytest.mark.postgres
def test_postgresql_unreachable_keeps_the_messages_and_the_service_recovers_by_itself(tmp_path_factory,
                                                                                     postgres_schema):
    """PostgreSQL behind a proxy whose plug is pulled: connections dropped and new ones refused, then back."""
    count("faults: database unreachable scenarios")
    _, schema = postgres_schema
    proxy = TcpProxy(5432).start()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}" \
          f"&connect_timeout=2"
    site = Site(tmp_path_factory.mktemp("pg-down"), database_url=url)
    try:
        site.staff("w1")
        http = site.http()
        say = lambda user, **body: http.post("/api/chat", json={"user_id": user, **body})  # noqa: E731
        assert "电话" in say("web-down", text=HEATING).json()["replies"][-1]["text"]
        proxy.cut()

        started = time.monotonic()
        during = say("web-down", text="13812345678")
        waited = time.monotonic() - started
        question = say("web-other", text="老人家食堂要带什么材料")
        while_down = site.service.conversation.replay()
        proxy.restore()
        handled = site.service.conversation.replay()
        pending = http.get("/api/messages", params={"user_id": "web-other"}).json()["replies"]
        after = say("web-down", button="intake:time:随时")
        filed = say("web-down", button="intake:confirm")

        assert during.status_code == 200 and during.json()["replies"][-1]["intent"] == "kept"
        assert waited < 10  # an unreachable database answers at once; it does not hang the resident
        assert question.json()["replies"][-1]["intent"] == "kept"
        assert while_down == 0 and handled == 2
        assert pending and pending[-1]["intent"] == "question"  # the kept question was answered after all
        assert "13812345678" in after.json()["replies"][-1]["text"]
        ticket = filed.json()["replies"][-1]["ticket_id"]
        assert ticket and site.service.store.get(ticket).phone == "13812345678"
    finally:
        site.close()
        proxy.cut()


# -- the Chroma server away -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_service_started_while_the_chroma_server_is_down_says_so_takes_reports_and_recovers(tmp_path):
    from bot.core import texts
    from bot.server import warm_up

    count("faults: Chroma server down scenarios")
    chroma = ChromaServer(tmp_path / "chroma").start()
    try:
        first = Site(tmp_path / "site", chroma_url=chroma.url)  # ingests into the server
        first.close()
        chroma.stop()

        site = Site(tmp_path / "site", chroma_url=chroma.url, ingest=False)  # a restart while it is down
        try:
            warm_up(site.service)  # must not raise: the service starts
            http = site.http()
            say = lambda user, text: http.post("/api/chat", json={"user_id": user, "text": text}).json()["replies"]  # noqa: E731
            down = say("web-q", "老人家食堂要带什么材料")
            report = say("web-r", HEATING)
            chroma.start()
            back = say("web-q", "老人家食堂要带什么材料")
        finally:
            site.close()
    finally:
        chroma.stop()

    assert down[-1]["text"] == texts.UNAVAILABLE
    assert "电话" in report[-1]["text"]  # reports do not need the knowledge base
    assert back[-1]["intent"] == "question" and back[-1]["citations"]


# -- Telegram flooding, failing and slow ---------------------------------------------------------------------

TOKEN = "123456789:AAE-flaky_standin_token"
SECRET = "flaky-Secret_123"
RESIDENT, NEIGHBOUR, WORKER = 4242, 5151, 777001  # Telegram ids


@pytest.fixture
def quick_timeouts(monkeypatch):
    """python-telegram-bot's requests give up after 1 s (5 s by default), so a hung answer is a quick test."""
    import telegram.ext._applicationbuilder as builder
    from telegram.request import HTTPXRequest

    class QuickRequest(HTTPXRequest):
        def __init__(self, *args, read_timeout: float | None = 1.0, **kwargs):
            super().__init__(*args, read_timeout=read_timeout, **kwargs)

    monkeypatch.setattr(builder, "HTTPXRequest", QuickRequest)


@pytest.fixture
async def flaky(make_site, quick_timeouts):
    """A site whose worker is a Telegram user, a flaky Bot API, and the channel in webhook mode delivering the outbox."""
    from bot.channels.telegram import TelegramChannel

    api = FlakyBotApi(TOKEN).start()
    site = make_site(extra='[telegram]\nmode = "webhook"\nwebhook_url = "https://bot.example.org/telegram"\n')
    site.staff(str(WORKER), name="王芳")
    channel = TelegramChannel(site.service.conversation, TOKEN,
                              site.settings.telegram.model_copy(update={"base_url": api.base_url}),
                              outbox=site.service.outbox, outbox_interval=0.2, webhook_secret=SECRET)
    await channel.start()
    channel.site, channel.api = site, api
    yield channel
    await channel.stop()
    api.stop()


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def notify_worker(channel) -> str:
    """File a ticket (the worker's card goes to the outbox); return its id."""
    return await asyncio.to_thread(channel.site.file, str(NEIGHBOUR))


async def wait_delivered(api: FlakyBotApi, chat: int, needle: str, timeout: float = 8.0) -> float:
    started = time.monotonic()
    while not api.delivered(chat, needle):
        assert time.monotonic() - started < timeout, api.attempts_to(chat)
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_an_outbox_notification_survives_5xx_and_a_lost_timeout_and_arrives_once(flaky):
    count("faults: Telegram outbox fault scenarios")
    flaky.api.fail_next(502, Hang(1.5, deliver=False), 500)
    ticket = await notify_worker(flaky)

    await wait_delivered(flaky.api, WORKER, ticket)
    await settle(0.6)  # later rounds must not send it again

    assert len(flaky.api.delivered(WORKER, ticket)) == 1
    assert [status for _, status in flaky.api.attempts_to(WORKER)] == [502, 504, 500, 200]
    assert flaky.site.service.outbox.pending("telegram") == []


async def test_an_outbox_notification_whose_answer_is_slow_arrives_once(flaky):
    """The library gives up after 1 s here; sends wait send_read_timeout_seconds (30) for the answer instead."""
    count("faults: Telegram outbox fault scenarios")
    flaky.api.fail_next(Hang(1.5, deliver=True))
    ticket = await notify_worker(flaky)

    await wait_delivered(flaky.api, WORKER, ticket)
    await settle(1.0)

    assert len(flaky.api.delivered(WORKER, ticket)) == 1
    assert [status for _, status in flaky.api.attempts_to(WORKER)] == [200]
    assert flaky.site.service.outbox.pending("telegram") == []


async def test_an_outbox_notification_whose_answer_never_comes_is_sent_again_at_most_once_more(flaky):
    """Telegram has no idempotency key: when the answer never comes, the notification may have arrived or not.
    A worker must not miss a ticket, so the outbox sends it again (the send_read_timeout_seconds comment says so)."""
    count("faults: Telegram outbox fault scenarios")
    flaky.settings = flaky.settings.model_copy(update={"send_read_timeout_seconds": 1.0})
    flaky.api.fail_next(Hang(1.5, deliver=True))
    ticket = await notify_worker(flaky)

    await wait_delivered(flaky.api, WORKER, ticket)
    await settle(2.0)

    copies = len(flaky.api.delivered(WORKER, ticket))
    count("faults: duplicate notifications after an answer that never came", copies - 1)
    assert 1 <= copies <= 2 and flaky.site.service.outbox.pending("telegram") == []


async def test_a_reply_whose_answer_is_slow_arrives_once(flaky):
    count("faults: Telegram direct reply fault scenarios")
    flaky.api.fail_next(Hang(1.5, deliver=True))
    assert await flaky.process_webhook(update_from(flaky.api, "/start"), SECRET) == 200

    await wait_delivered(flaky.api, RESIDENT, "数字社工")
    await settle(1.0)

    assert len(flaky.api.delivered(RESIDENT, "数字社工")) == 1


async def test_an_outbox_notification_waits_out_a_429_and_arrives_once(flaky):
    count("faults: Telegram outbox fault scenarios")
    flaky.api.flood(1.5)
    ticket = await notify_worker(flaky)

    waited = await wait_delivered(flaky.api, WORKER, ticket)
    await settle(0.6)

    assert len(flaky.api.delivered(WORKER, ticket)) == 1 and waited >= 1.0
    assert flaky.site.service.outbox.pending("telegram") == []


async def test_the_outbox_does_not_call_again_before_retry_after_has_passed(flaky):
    flaky.api.flood(1.5)
    ticket = await notify_worker(flaky)
    await wait_delivered(flaky.api, WORKER, ticket)

    refused = [status for _, status in flaky.api.attempts_to(WORKER) if status == 429]
    assert len(refused) == 1


def update_from(api: FlakyBotApi, text: str) -> bytes:
    return json.dumps(api.text_update(RESIDENT, text)).encode()


@pytest.mark.parametrize("fault", ["429", "502"])
async def test_a_reply_that_meets_a_429_or_a_5xx_is_sent_again_once(flaky, fault):
    if fault == "429":
        flaky.api.flood(1.0)
    else:
        flaky.api.fail_next(502)
    assert await flaky.process_webhook(update_from(flaky.api, "/start"), SECRET) == 200

    await settle(2.5)

    assert len(flaky.api.delivered(RESIDENT, "数字社工")) == 1


async def test_a_reply_that_meets_a_429_or_a_5xx_costs_no_crash_and_no_duplicate(flaky):
    """Whatever Telegram answers, never two answers, and the bot keeps answering afterwards."""
    count("faults: Telegram direct reply fault scenarios", 2)
    flaky.api.flood(1.0)
    await flaky.process_webhook(update_from(flaky.api, "/start"), SECRET)
    await settle(1.5)
    flaky.api.fail_next(502)
    await flaky.process_webhook(update_from(flaky.api, "/help"), SECRET)  # answered 200 once its reply is sent
    await settle(0.5)
    await flaky.process_webhook(update_from(flaky.api, "/help"), SECRET)
    await wait_delivered(flaky.api, RESIDENT, "/report")
    await settle(1.0)  # a duplicate of either answer would have arrived by now

    assert len(flaky.api.delivered(RESIDENT, "数字社工")) <= 1
    assert len(flaky.api.delivered(RESIDENT, "常用命令")) == 2  # two /help, each answered once
