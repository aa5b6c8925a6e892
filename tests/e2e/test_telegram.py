"""The Telegram channel end to end: the real python-telegram-bot, polling a Bot API stand-in, and the core on fakes."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from sqlalchemy.orm import sessionmaker

from bot.channels.load import InFlight
from bot.channels.ratelimit import SLOW_DOWN
from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_render import MAX_TEXT, utf16_len
from bot.core import texts
from bot.core.messages import Button, Incoming, Reply
from bot.errors import ConfigError
from bot.settings import TelegramSettings
from bot.storage.db import Base, make_engine
from bot.storage.outbox import OutboxRow, SqlOutbox
from tests.e2e.botapi_standin import BotApiStandIn
from tests.fakes import make_conversation

TOKEN = "123456789:AAE-standin_token-for-tests"
RESIDENT = 4242
NEIGHBOUR = 5151


class StubConversation:
    """Answers every message with what `answer(incoming)` returns, and remembers what it was given."""

    def __init__(self, answer):
        self.answer = answer
        self.seen: list[Incoming] = []

    def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        return self.answer(incoming)


class Recording:
    """Passes messages on to a real conversation and remembers them."""

    def __init__(self, conversation):
        self.conversation = conversation
        self.seen: list[Incoming] = []

    def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        return self.conversation.handle(incoming)


@pytest.fixture
def botapi():
    standin = BotApiStandIn(TOKEN).start()
    yield standin
    standin.stop()
    assert not standin.unknown, f"the bot called methods the stand-in does not implement: {standin.unknown}"


@pytest.fixture
async def run_channel(botapi):
    """Return run(conversation=None, **options) -> a started TelegramChannel; TelegramSettings fields go to settings."""
    started: list[TelegramChannel] = []

    async def run(conversation=None, **options) -> TelegramChannel:
        if conversation is None:
            conversation, _ = make_conversation()
        settings = {k: options.pop(k) for k in list(options) if k in TelegramSettings.model_fields}
        channel = TelegramChannel(conversation, TOKEN, TelegramSettings(base_url=botapi.base_url, **settings),
                                  poll_timeout=1, **options)
        await channel.start()
        started.append(channel)
        return channel

    yield run
    for channel in started:
        await channel.stop()


async def test_start_command_gets_the_welcome(botapi, run_channel):
    await run_channel()
    botapi.push_text(RESIDENT, "/start")
    welcome = await botapi.wait_for_text(RESIDENT, "数字社工")
    assert welcome.params["text"] == texts.WELCOME
    assert "parse_mode" not in welcome.params  # plain text: nothing a resident types can become markup


async def test_typing_is_shown_while_the_core_works_and_before_the_answer(botapi, run_channel):
    await run_channel()
    botapi.push_text(RESIDENT, "/help")
    await botapi.wait_for_text(RESIDENT, "/report")
    order = [c.method for c in botapi.calls if c.method in ("sendChatAction", "sendMessage")]
    assert order[:2] == ["sendChatAction", "sendMessage"]
    assert botapi.calls_of("sendChatAction")[0].params == {"chat_id": str(RESIDENT), "action": "typing"}


async def test_question_gets_an_answer_citing_its_source(botapi, run_channel):
    await run_channel()
    botapi.push_text(RESIDENT, "老人家食堂要带什么材料")
    answer = await botapi.wait_for_text(RESIDENT, "来源")
    assert "身份证" in answer.params["text"]
    assert "《河西区老人家食堂助餐服务办理指南" in answer.params["text"]


async def test_report_is_filed_after_phone_time_button_and_confirm_button(botapi, run_channel):
    conversation, fakes = make_conversation()
    await run_channel(conversation)
    botapi.push_text(RESIDENT, "景村里3号楼2单元暖气不热好几天了")
    await botapi.wait_for_text(RESIDENT, "联系电话")
    botapi.push_text(RESIDENT, "13812345678")
    asked_time = await botapi.wait_for_text(RESIDENT, "什么时间方便联系您")
    first_button = asked_time.params["reply_markup"]["inline_keyboard"][0][0]
    assert first_button == {"text": "随时都可以", "callback_data": "intake:time:随时"}
    botapi.push_callback(RESIDENT, "intake:time:随时")
    await botapi.wait_for_text(RESIDENT, "请确认要提交的内容")
    botapi.push_callback(RESIDENT, "intake:confirm")
    filed = await botapi.wait_for_text(RESIDENT, "工单号")

    assert filed.result["text"].startswith("已提交，工单号 T00000001")
    [draft] = fakes["desk"].drafts
    assert (draft.channel, draft.user_id, draft.category) == ("telegram", str(RESIDENT), "供暖")
    assert draft.phone == "13812345678"
    assert draft.place == "景村里3号楼2单元" and draft.contact_time == "随时"
    assert len(botapi.calls_of("answerCallbackQuery")) == 2
    edited = [c.params["text"] for c in botapi.calls_of("editMessageText")]
    assert edited[-1].endswith("（已选择：确认提交）") and "reply_markup" not in botapi.calls_of("editMessageText")[-1].params


async def test_sticker_gets_the_polite_unsupported_reply(botapi, run_channel):
    await run_channel()
    botapi.push_sticker(RESIDENT)
    await botapi.wait_for_text(RESIDENT, texts.UNSUPPORTED)


async def test_photo_reaches_the_core_as_its_largest_size(botapi, run_channel):
    conversation = Recording(make_conversation()[0])
    await run_channel(conversation)
    botapi.push_photo(RESIDENT)
    await botapi.wait_for_text(RESIDENT, texts.PHOTO_WITHOUT_REPORT)
    [incoming] = conversation.seen
    assert (incoming.kind, incoming.photos, incoming.text) == ("photo", ("photo-1280",), "")
    assert incoming.display_name == "王阿姨"


async def test_long_reply_is_sent_in_parts_within_the_limit_with_buttons_on_the_last(botapi, run_channel):
    paragraph = "关于冬季取暖补贴：🏠符合条件的困难家庭，由社区统一登记，街道审核后按月发放。请您备好身份证和户口簿。\n\n"
    long_text = (paragraph * 200)[:9000].strip()
    buttons = [Button("有用", "useful"), Button("没用", "useless")]
    await run_channel(StubConversation(lambda incoming: [Reply(long_text, buttons=buttons)]))
    botapi.push_text(RESIDENT, "取暖补贴")
    await botapi.wait_for(lambda calls: len(botapi.messages_to(RESIDENT)) >= 3)
    await asyncio.sleep(0.2)  # any further part would have arrived by now
    parts = botapi.messages_to(RESIDENT)

    assert all(utf16_len(p.params["text"]) <= MAX_TEXT for p in parts)
    assert "".join(p.params["text"] for p in parts).replace("\n", "") == long_text.replace("\n", "")
    assert all(p.params["text"].endswith("。") for p in parts[:-1])  # cut between paragraphs, not inside one
    assert [("reply_markup" in p.params) for p in parts] == [False] * (len(parts) - 1) + [True]


async def test_flood_from_one_user_gets_the_limit_then_one_slow_down(botapi, run_channel):
    conversation = Recording(make_conversation()[0])
    await run_channel(conversation, rate_limit_per_minute=5)
    for _ in range(30):
        botapi.push_text(RESIDENT, "你好")
    await botapi.wait_for(lambda calls: len(botapi.messages_to(RESIDENT)) >= 6)
    botapi.push_text(NEIGHBOUR, "你好")  # the limit is per user
    await botapi.wait_for_text(NEIGHBOUR, texts.GREETING)
    await asyncio.sleep(0.3)

    replies = botapi.texts_to(RESIDENT)
    assert replies.count(texts.GREETING) == 5 and replies.count(SLOW_DOWN) == 1 and len(replies) == 6
    assert replies[-1] == SLOW_DOWN
    assert len([i for i in conversation.seen if i.user_id == str(RESIDENT)]) == 5


async def test_exception_in_the_conversation_is_apologised_for_and_logged_masked(botapi, run_channel, caplog):
    def broken(incoming):
        raise RuntimeError("写入工单失败：居民电话13812345678")

    await run_channel(StubConversation(broken))
    botapi.push_text(RESIDENT, "楼道里堆了好多纸箱子")
    await botapi.wait_for_text(RESIDENT, texts.ERROR)
    [record] = [r for r in caplog.records if r.name == "bot.channels.telegram" and r.levelno == logging.ERROR]
    assert "138****5678" in record.getMessage() and "13812345678" not in record.getMessage()


async def test_the_token_never_appears_in_the_logs(botapi, run_channel, caplog):
    caplog.set_level(logging.DEBUG)
    await run_channel()
    botapi.push_text(RESIDENT, "/start")
    await botapi.wait_for_text(RESIDENT, "数字社工")
    assert caplog.records, "expected python-telegram-bot and httpx to log at DEBUG"
    leaks = [r.getMessage() for r in caplog.records if TOKEN in r.getMessage() or TOKEN in (r.exc_text or "")]
    assert leaks == []


async def test_outbox_rows_of_telegram_are_delivered_to_their_chat_and_marked_sent(botapi, run_channel, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    Base.metadata.create_all(engine)
    outbox = SqlOutbox(sessionmaker(engine))
    outbox.notify("telegram", str(NEIGHBOUR), Reply("您反映的3号楼暖气问题，网格员张师傅已经接单了。",
                                                  buttons=[Button("5分", "rate:T00000007:5")]))
    outbox.notify("wechat", "o-wx-openid", Reply("这条属于微信，不该从Telegram发出去。"))

    await run_channel(outbox=outbox, outbox_interval=0.05)
    sent = await botapi.wait_for_text(NEIGHBOUR, "张师傅")
    assert sent.params["reply_markup"]["inline_keyboard"] == [[{"text": "5分", "callback_data": "rate:T00000007:5"}]]
    for _ in range(100):
        if not outbox.pending("telegram"):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # several more rounds: a sent row must not go out twice

    assert outbox.pending("telegram") == []
    assert [m.user_id for m in outbox.pending("wechat")] == ["o-wx-openid"]
    assert len(botapi.calls_of("sendMessage")) == 1


async def test_outbox_row_for_a_user_who_blocked_the_bot_stays_pending_and_the_rest_go_out(botapi, run_channel,
                                                                                           tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    outbox = SqlOutbox(sessions)
    botapi.blocked.add(RESIDENT)
    outbox.notify("telegram", str(RESIDENT), Reply("您的工单已办结，请评价。"))
    outbox.notify("telegram", str(NEIGHBOUR), Reply("网格员李姐明天上午上门测室温。"))

    await run_channel(outbox=outbox, outbox_interval=0.05)
    await botapi.wait_for_text(NEIGHBOUR, "李姐")
    await botapi.wait_for(lambda calls: len([c for c in calls if c.method == "sendMessage"
                                             and c.params["chat_id"] == str(RESIDENT)]) >= 3)

    # the third refused call means the second one was counted: the count is written before the next round
    assert [m.user_id for m in outbox.pending("telegram")] == [str(RESIDENT)]
    with sessions() as session:
        assert session.get(OutboxRow, 1).attempts >= 2


def test_webhook_mode_without_a_valid_secret_is_a_config_error():
    settings = TelegramSettings(mode="webhook", webhook_url="https://bot.example.org/telegram")
    for secret in ("", "has spaces", "x" * 257):
        with pytest.raises(ConfigError):
            TelegramChannel(StubConversation(lambda i: []), TOKEN, settings, webhook_secret=secret)


async def test_webhook_mode_registers_the_webhook_and_accepts_only_the_secret(botapi, run_channel):
    channel = await run_channel(mode="webhook", webhook_url="https://bot.example.org/telegram",
                                webhook_secret="s3cret-Token_1")
    [registered] = botapi.calls_of("setWebhook")
    assert registered.params["url"] == "https://bot.example.org/telegram"
    assert registered.params["secret_token"] == "s3cret-Token_1"
    body = json.dumps(botapi.text_update(RESIDENT, "/start")).encode()

    assert await channel.process_webhook(body, "s3cret-Token_2") == 403
    assert await channel.process_webhook(body, None) == 403
    assert await channel.process_webhook(b"{not json", "s3cret-Token_1") == 400
    assert await channel.process_webhook(body, "s3cret-Token_1") == 200
    await botapi.wait_for_text(RESIDENT, "数字社工")
    assert len(botapi.messages_to(RESIDENT)) == 1 and botapi.calls_of("getUpdates") == []


async def test_polling_mode_has_no_webhook_route(run_channel):
    channel = await run_channel()
    assert await channel.process_webhook(b"{}", "anything") == 404


async def test_a_group_chat_gets_no_answer_and_a_command_there_is_sent_to_private(botapi, run_channel):
    conversation = StubConversation(lambda incoming: [Reply("不该出现在群里")])
    await run_channel(conversation)
    group = {"id": -100123, "type": "group", "title": "景村里3号楼业主群"}
    for text in ("3号楼暖气不热，电话13812345678", "/report"):
        update = botapi.text_update(RESIDENT, text)
        update["message"]["chat"] = group
        botapi.push(update)
    note = await botapi.wait_for_text(-100123, "请私聊我")

    assert note.params["text"] == texts.PRIVATE_ONLY
    assert conversation.seen == []
    assert not [t for t in botapi.texts_to(-100123) if "不该出现" in t]


async def test_a_thumbs_down_with_its_reason_reaches_the_log_and_a_curated_answer_takes_over(botapi, run_channel):
    from tests.fakes import sqlite_answer_stores

    answers, curated = sqlite_answer_stores()
    curated.save("老人家食堂几点开门", "老人家食堂每天10:30开门（2026年12月起）。", "景村社区通知", "staff:1")
    conversation, _ = make_conversation(answers=answers, curated=curated)
    await run_channel(conversation)

    botapi.push_text(RESIDENT, "老人家食堂要带什么材料")
    answered = await botapi.wait_for_text(RESIDENT, "来源")
    keyboard = [b for row in answered.params["reply_markup"]["inline_keyboard"] for b in row]
    down = next(b["callback_data"] for b in keyboard if b["text"] == "👎 没用")
    botapi.push_callback(RESIDENT, down)
    why = await botapi.wait_for_text(RESIDENT, "是哪里不好")
    reason = next(b["callback_data"] for row in why.params["reply_markup"]["inline_keyboard"] for b in row
                  if b["text"] == "内容过时")
    botapi.push_callback(RESIDENT, reason)
    await botapi.wait_for_text(RESIDENT, "已记下")
    botapi.push_text(NEIGHBOUR, "老人家食堂几点开门")
    taken = await botapi.wait_for_text(NEIGHBOUR, "社区工作人员答复")

    [logged_curated, logged] = answers.recent("all")
    assert (logged.vote, logged.reason, logged.channel) == ("down", "内容过时", "telegram")
    assert "10:30" in taken.params["text"] and logged_curated.sources == ["工作人员答复 #1"]


async def test_an_expired_document_is_not_cited_on_telegram(botapi, run_channel, tmp_path):
    from tests.fakes import lifecycle_retriever

    conversation, _ = make_conversation(retriever=lifecycle_retriever(tmp_path))
    await run_channel(conversation)

    botapi.push_text(RESIDENT, "助浴车每周几来，收费多少")
    answer = await botapi.wait_for_text(RESIDENT, "来源")

    assert "2026年社区助浴服务" in answer.params["text"] and "2024年社区助浴服务" not in answer.params["text"]
    assert "20元" not in answer.params["text"]


async def test_a_staff_only_document_is_cited_to_a_worker_and_never_to_a_resident_on_telegram(botapi, run_channel,
                                                                                              tmp_path):
    from tests.fakes import STAFF_QUESTION, KnownStaff, audience_retriever

    conversation, _ = make_conversation(retriever=audience_retriever(tmp_path),
                                        staff=KnownStaff({("telegram", str(NEIGHBOUR))}))
    await run_channel(conversation)

    botapi.push_text(RESIDENT, STAFF_QUESTION)
    resident = await botapi.wait_for_text(RESIDENT, "来源")
    botapi.push_text(NEIGHBOUR, STAFF_QUESTION)
    worker = await botapi.wait_for_text(NEIGHBOUR, "来源")

    assert "走访手册" not in resident.params["text"] and "每月至少走访" not in resident.params["text"]
    assert "网格员走访手册（内部）" in worker.params["text"] and "每月至少走访" in worker.params["text"]
    assert "请勿转发居民" in worker.params["text"]


# -- several replicas behind one webhook URL ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_replicas_in_webhook_mode_answer_an_update_telegram_sends_again_once(botapi, run_channel, tmp_path,
                                                                                    kind):
    """Telegram resends an update it got no 200 for, maybe to another replica: it is handled once; a copy
    arriving while the first is being handled is told to come back (503); a claim whose replica died is taken
    over after the lease, so the update is not lost either."""
    from datetime import datetime, timedelta, timezone

    from tests.integration.db import open_database
    from bot.storage.update_claims import SqlUpdateClaims, UpdateClaim

    secret = "s3cret-Token_1"
    with open_database(kind, tmp_path) as db:
        conversation, _ = make_conversation()
        replicas = [await run_channel(conversation, mode="webhook", webhook_url="https://bot.example.org/telegram",
                                      webhook_secret=secret, claims=SqlUpdateClaims(db.sessions)) for _ in range(2)]
        once = botapi.text_update(RESIDENT, "/start")
        first = await replicas[0].process_webhook(json.dumps(once), secret)
        again = await replicas[1].process_webhook(json.dumps(once), secret)  # the copy, on the other replica

        handling = botapi.text_update(RESIDENT, "/help")
        dead = botapi.text_update(RESIDENT + 1, "/start")
        now = datetime.now(timezone.utc)
        with db.sessions.begin() as s:  # one replica is handling the first; the one that took the second died
            s.add(UpdateClaim(key=f"telegram:{replicas[0].application.bot.id}:{handling['update_id']}",
                              claimed_at=now, done=False))
            s.add(UpdateClaim(key=f"telegram:{replicas[0].application.bot.id}:{dead['update_id']}",
                              claimed_at=now - timedelta(minutes=5), done=False))
        busy = await replicas[1].process_webhook(json.dumps(handling), secret)
        taken_over = await replicas[1].process_webhook(json.dumps(dead), secret)

    assert (first, again, busy, taken_over) == (200, 200, 503, 200)
    assert botapi.texts_to(RESIDENT) == [texts.WELCOME]  # answered once, and /help not twice
    assert botapi.texts_to(RESIDENT + 1) == [texts.WELCOME]


async def test_a_saturated_replica_answers_503_so_telegram_keeps_the_update(botapi, run_channel):
    import threading

    gate = threading.Event()

    class Slow:  # a conversation still working on the first update when the second arrives
        def handle(self, incoming):
            assert gate.wait(10)
            return [Reply("好的")]

    secret = "s3cret-Token_1"
    channel = await run_channel(Slow(), mode="webhook", webhook_url="https://bot.example.org/telegram",
                                webhook_secret=secret, in_flight=InFlight(1))
    held = asyncio.create_task(channel.process_webhook(json.dumps(botapi.text_update(RESIDENT, "你好")), secret))
    await asyncio.sleep(0.3)
    shed = await channel.process_webhook(json.dumps(botapi.text_update(RESIDENT + 1, "你好")), secret)
    gate.set()

    assert shed == 503 and await held == 200
    assert botapi.texts_to(RESIDENT + 1) == [] and botapi.texts_to(RESIDENT) == ["好的"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_long_button_payload_shown_by_one_replica_is_understood_by_another(botapi, run_channel, tmp_path, kind):
    """Payloads over Telegram's 64 bytes travel as a digest: the press may reach another replica (or this one
    after a restart), so the digest is kept in the database."""
    from tests.integration.db import open_database
    from bot.storage.callback_payloads import SqlCallbackPayloads

    long_payload = "ask_instead:" + "社区老年食堂的助餐补贴怎么申请，需要带哪些材料，去哪里办理"
    assert len(long_payload.encode()) > 64
    conversation = StubConversation(lambda i: [Reply("您是想问这个吗？", [Button("问这个", long_payload)])] if i.text
                                    else [Reply(f"按了：{i.button}")])
    secret = "s3cret-Token_1"
    with open_database(kind, tmp_path) as db:
        replicas = [await run_channel(conversation, mode="webhook", webhook_url="https://bot.example.org/telegram",
                                      webhook_secret=secret, payloads=SqlCallbackPayloads(db.sessions))
                    for _ in range(2)]
        await replicas[0].process_webhook(json.dumps(botapi.text_update(RESIDENT, "助餐")), secret)
        [shown] = botapi.messages_to(RESIDENT)
        [[button]] = shown.params["reply_markup"]["inline_keyboard"]
        press = botapi.push_callback(RESIDENT, button["callback_data"])
        assert await replicas[1].process_webhook(json.dumps(press), secret) == 200

    assert len(button["callback_data"].encode()) <= 64
    assert conversation.seen[-1].button == long_payload


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_claim_renewed_while_its_update_is_handled_is_not_taken_over(tmp_path, kind):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from tests.integration.db import open_database
    from bot.core.ports import CLAIM_BUSY, CLAIM_DONE, CLAIM_MINE
    from bot.storage.update_claims import SqlUpdateClaims, UpdateClaim

    with open_database(kind, tmp_path) as db:
        claims = SqlUpdateClaims(db.sessions)

        def age(key):  # as if the claim had been taken a minute ago (past the 30 s lease)
            with db.sessions.begin() as s:
                s.execute(update(UpdateClaim).where(UpdateClaim.key == key)
                          .values(claimed_at=datetime.now(timezone.utc) - timedelta(minutes=1)))

        assert claims.claim("slow") == CLAIM_MINE and claims.claim("dead") == CLAIM_MINE
        age("slow")
        age("dead")
        claims.renew("slow")  # its replica is still working on it
        outcomes = (claims.claim("slow"), claims.claim("dead"))
        claims.finish("slow")

        assert outcomes == (CLAIM_BUSY, CLAIM_MINE) and claims.claim("slow") == CLAIM_DONE
