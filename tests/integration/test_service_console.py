"""`python -m bot chat --json`: the whole service in a subprocess, as a resident on the console would use it."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.db import make_engine
from bot.tickets.models import Ticket
from tests.integration.db import write_config


def chat(run_python, config, *lines: str, user: str = "u1") -> list[dict]:
    """Send the lines to one console process; return its JSON replies (each names the message it answers)."""
    done = run_python("-m", "bot", "chat", "--config", str(config), "--json", "--user", user,
                      input="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert replies, done.stderr
    return replies


def answers_to(replies: list[dict], message: str) -> list[dict]:
    return [r for r in replies if r["message"] == message]


def stored_tickets(tmp_path) -> list[Ticket]:
    engine = make_engine(f"sqlite:///{(tmp_path / 'service' / 'bot.db').as_posix()}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(Ticket)))
    finally:
        engine.dispose()


@pytest.fixture
def config(tmp_path, service_index):
    """Each test its own database beside the config; one shared index: the first process ingests, others reuse it."""
    return write_config(tmp_path / "service", "sqlite:///bot.db", index_dir=service_index)


def test_a_resident_asks_a_question_then_reports_a_problem_through_to_a_ticket(tmp_path, config, run_python):
    replies = chat(run_python, config,
                   "老人家食堂怎么办助餐卡？", "景村里3号楼2单元暖气不热，屋里冷得穿棉袄", "13812345678",
                   "!intake:time:晚上", "!intake:confirm")

    assert all("intent" in r for r in replies)
    answer = answers_to(replies, "老人家食堂怎么办助餐卡？")
    assert answer[0]["intent"] == "question" and answer[0]["citations"], answer
    assert answers_to(replies, "景村里3号楼2单元暖气不热，屋里冷得穿棉袄")[0]["text"].startswith("请留一个联系电话")
    summary = answers_to(replies, "!intake:time:晚上")[0]
    assert "类别：供暖" in summary["text"] and "intake:confirm" in [b["payload"] for b in summary["buttons"]]
    last = replies[-1]
    assert last["message"] == "!intake:confirm" and re.fullmatch(r"T\d{11}", last["ticket_id"] or "")
    [ticket] = stored_tickets(tmp_path)
    assert (ticket.id, ticket.category, ticket.grid_id, ticket.phone) == (
        last["ticket_id"], "供暖", "jingcun-01", "13812345678")


def test_a_second_process_continues_a_report_left_half_way(tmp_path, config, run_python):
    report = "楼道里堆满了纸箱子，消防通道都堵了，麻烦你们管一管"
    first = chat(run_python, config, report, "景村里5号楼2单元")
    assert first[-1]["text"].startswith("请留一个联系电话"), first

    second = chat(run_python, config, "13912345678", "!intake:time:随时", "!intake:confirm")

    assert second[0]["text"].startswith("什么时间方便联系您"), second
    ticket_id = second[-1]["ticket_id"]
    [ticket] = stored_tickets(tmp_path)
    assert ticket.id == ticket_id and ticket.description == report
    assert (ticket.place, ticket.grid_id, ticket.phone, ticket.contact_time) == (
        "景村里5号楼2单元", "jingcun-01", "13912345678", "随时")


def test_another_user_on_the_console_does_not_continue_someone_elses_report(tmp_path, config, run_python):
    chat(run_python, config, "楼道里堆满了纸箱子，消防通道都堵了，麻烦你们管一管", "景村里5号楼2单元", user="u1")

    other = chat(run_python, config, "!intake:confirm", user="u2")

    assert other[0]["ticket_id"] is None and "已经结束" in other[0]["text"]
    assert stored_tickets(tmp_path) == []
