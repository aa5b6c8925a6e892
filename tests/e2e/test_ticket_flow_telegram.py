"""A ticket's whole life over Telegram: the real python-telegram-bot, the real service, a Bot API stand-in.

A resident reports, the grid worker accepts and resolves, the resident rates;
another ticket passes its deadline on a fake clock and is escalated to the
community supervisor exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app import build_service
from bot.channels.telegram import TelegramChannel
from bot.settings import TelegramSettings, load_settings
from tests.e2e.botapi_standin import BotApiStandIn

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAE-standin_token-for-tests"
RESIDENT, WORKER, SUPERVISOR, NEIGHBOUR = 4242, 7001, 7002, 5151


class FakeClock:
    def __init__(self):
        self.now = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def service(tmp_path, clock):
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "heating.md").write_text(
        "---\ntitle: 供暖报修指南\ndate: 2025-10-15\n---\n# 供暖报修指南\n供暖期卧室温度不低于18度。\n", "utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[knowledge]\ndocs_dir = "knowledge"\nindex_dir = "index"\nmin_relevance = 0.0\nmin_topic = 0.0\n'
        '[embedding]\nbackend = "hashing"\n'
        '[database]\nurl = "sqlite:///bot.db"\n'
        f'[tickets]\norganisation_file = "{ROOT / "district.toml"}"\ncategories_file = "{ROOT / "categories.toml"}"\n',
        "utf-8")
    service = build_service(load_settings(config), clock=clock)
    service.knowledge.ensure_ingested()
    return service


@pytest.fixture
async def telegram(service):
    botapi = BotApiStandIn(TOKEN).start()
    channel = TelegramChannel(service.conversation, TOKEN, TelegramSettings(base_url=botapi.base_url),
                              outbox=service.outbox, outbox_interval=0.2, poll_timeout=1)
    await channel.start()
    yield botapi
    await channel.stop()
    botapi.stop()
    assert not botapi.unknown, f"unknown Bot API methods called: {botapi.unknown}"


async def _bind(botapi, service, user_id: int, role: str, **scope) -> None:
    code = service.staff.create_invite(role, name=f"{role}-{user_id}", **scope)
    botapi.push_text(user_id, f"/bind {code}")
    await botapi.wait_for_text(user_id, "绑定成功")


async def _report(botapi, text: str, user_id: int = RESIDENT) -> str:
    botapi.push_text(user_id, text)
    await botapi.wait_for_text(user_id, "联系电话")
    botapi.push_text(user_id, "13812345678")
    await botapi.wait_for_text(user_id, "什么时间方便联系您")
    botapi.push_callback(user_id, "intake:time:随时")
    await botapi.wait_for_text(user_id, "请确认要提交的内容")
    botapi.push_callback(user_id, "intake:confirm")
    filed = await botapi.wait_for_text(user_id, "工单号")
    return filed.params["text"].split("工单号 ")[1].split("。")[0]


async def test_resident_reports_worker_accepts_and_resolves_resident_rates(service, telegram):
    botapi = telegram
    await _bind(botapi, service, WORKER, "worker", grids=["jingcun-01"])
    ticket_id = await _report(botapi, "景村里3号楼2单元暖气不热好几天了")

    card = await botapi.wait_for_text(WORKER, f"新工单：\n工单 {ticket_id}")
    assert "13812345678" in card.params["text"]  # the assigned worker sees the phone: it is theirs to call
    buttons = [b["callback_data"] for row in card.params["reply_markup"]["inline_keyboard"] for b in row]
    assert f"t:accept:{ticket_id}" in buttons

    botapi.push_callback(WORKER, f"t:accept:{ticket_id}")
    await botapi.wait_for_text(WORKER, f"已接单 {ticket_id}")
    await botapi.wait_for_text(RESIDENT, "网格员已接单")

    botapi.push_callback(WORKER, f"t:resolve:{ticket_id}")
    await botapi.wait_for_text(WORKER, "是怎么处理的")
    botapi.push_text(WORKER, "上门放了气，暖气片已经热了")
    await botapi.wait_for_text(WORKER, f"已办结反馈 {ticket_id}")
    asked = await botapi.wait_for_text(RESIDENT, "上门放了气")
    rate_buttons = [b["callback_data"] for row in asked.params["reply_markup"]["inline_keyboard"] for b in row]
    assert f"rate:{ticket_id}:5" in rate_buttons

    botapi.push_callback(RESIDENT, f"rate:{ticket_id}:5")
    await botapi.wait_for_text(RESIDENT, "谢谢您的评价（5分）")
    ticket = service.store.get(ticket_id)
    assert ticket.status == "closed" and ticket.rating == 5
    actions = [e.action for e in service.store.events(ticket_id)]
    assert actions == ["filed", "assign", "accept", "resolve", "close"]


async def test_unsatisfied_rating_reopens_the_ticket_for_the_worker(service, telegram):
    botapi = telegram
    await _bind(botapi, service, WORKER, "worker", grids=["jingcun-01"])
    ticket_id = await _report(botapi, "景村里5号楼楼道里堆满了纸箱子")
    await botapi.wait_for_text(WORKER, ticket_id)
    botapi.push_callback(WORKER, f"t:accept:{ticket_id}")
    await botapi.wait_for_text(WORKER, f"已接单 {ticket_id}")
    botapi.push_callback(WORKER, f"t:resolve:{ticket_id}")
    await botapi.wait_for_text(WORKER, "是怎么处理的")
    botapi.push_text(WORKER, "已经清理")
    await botapi.wait_for_text(RESIDENT, "已经清理")

    botapi.push_callback(RESIDENT, f"rate:{ticket_id}:no")
    await botapi.wait_for_text(RESIDENT, "已重新打开")
    await botapi.wait_for_text(WORKER, "不满意")
    assert service.store.get(ticket_id).status == "assigned"


async def test_overdue_ticket_escalates_to_the_supervisor_once(service, telegram, clock):
    botapi = telegram
    await _bind(botapi, service, WORKER, "worker", grids=["jingcun-01"])
    await _bind(botapi, service, SUPERVISOR, "supervisor", community="jingcun")
    ticket_id = await _report(botapi, "景村里2号楼停水了一整天", user_id=NEIGHBOUR)
    await botapi.wait_for_text(WORKER, ticket_id)

    clock.advance(minutes=100)  # 20 minutes before the 2-hour dispatch deadline of water
    assert service.watch.tick().reminded == 1
    await botapi.wait_for_text(WORKER, f"提醒：工单 {ticket_id} 即将超时")

    clock.advance(hours=3)
    first = service.watch.tick()
    again = service.watch.tick()
    escalation = await botapi.wait_for_text(SUPERVISOR, f"工单 {ticket_id} 已超时")

    assert (first.escalated, again.escalated) == (1, 0)
    assert "13812345678" in escalation.params["text"]  # the community's supervisor may see it
    assert len([t for t in botapi.texts_to(SUPERVISOR) if "已超时" in t]) == 1


async def test_a_resident_cannot_use_staff_commands_or_buttons(service, telegram):
    botapi = telegram
    await _bind(botapi, service, WORKER, "worker", grids=["jingcun-01"])
    ticket_id = await _report(botapi, "景村里3号楼2单元暖气不热")
    botapi.push_text(NEIGHBOUR, "/tickets")
    await botapi.wait_for_text(NEIGHBOUR, "只对工作人员开放")
    # a forged button press: the neighbour never saw this button, a crafted client sends its data anyway
    message = botapi.messages_to(NEIGHBOUR)[-1].result
    botapi.push({"callback_query": {"id": "forged-1", "from": {"id": NEIGHBOUR, "is_bot": False, "first_name": "邻居"},
                                    "chat_instance": "ci", "data": f"t:accept:{ticket_id}", "message": message}})
    await botapi.wait_for(lambda calls: len([c for c in calls if c.method == "sendMessage"
                                             and str(c.params.get("chat_id")) == str(NEIGHBOUR)
                                             and "只对工作人员开放" in c.params["text"]]) == 2)
    assert service.store.get(ticket_id).status == "assigned"
    assert all("13812345678" not in t for t in botapi.texts_to(NEIGHBOUR))


async def test_a_report_interrupted_by_a_question_and_corrected_in_words_still_reaches_the_worker(service, telegram):
    botapi = telegram
    await _bind(botapi, service, WORKER, "worker", grids=["jingcun-01"])
    botapi.push_text(RESIDENT, "景村里3号楼2单元暖气不热好几天了")
    await botapi.wait_for_text(RESIDENT, "联系电话")

    botapi.push_text(RESIDENT, "对了，供暖期卧室温度应该多少度？")
    answer = await botapi.wait_for_text(RESIDENT, "18度")
    assert "供暖报修指南" in answer.params["text"]  # answered from the documents, with the source
    await botapi.wait_for_text(RESIDENT, "刚才的登记还没提交")

    botapi.push_text(RESIDENT, "13812345678")
    await botapi.wait_for_text(RESIDENT, "什么时间方便联系您")
    botapi.push_text(RESIDENT, "下班以后都在家")
    await botapi.wait_for_text(RESIDENT, "下班以后都在家")
    botapi.push_text(RESIDENT, "电话写错了，是13900001111")
    corrected = await botapi.wait_for_text(RESIDENT, "13900001111")
    assert "13812345678" not in corrected.params["text"]
    botapi.push_callback(RESIDENT, "intake:confirm")
    filed = await botapi.wait_for_text(RESIDENT, "工单号")
    ticket_id = filed.params["text"].split("工单号 ")[1].split("。")[0]

    card = await botapi.wait_for_text(WORKER, f"工单 {ticket_id}")
    assert "13900001111" in card.params["text"] and "下班以后" in card.params["text"]
    ticket = service.store.get(ticket_id)
    assert ticket.phone == "13900001111" and "温度" not in ticket.description
