"""Backup while residents write, restore into a fresh folder, and find everything again (SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import func, select, text

from tests.reliability.support import Site

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"


def snapshot(service) -> dict:
    """Tickets with their events, and the dialogue states, as rows a restore must bring back."""
    from bot.storage.dialogue import DialogueRow
    from bot.tickets.models import Ticket, TicketEvent

    with service.sessions() as s:
        tickets = {t.id: (t.phone, t.status, t.description) for t in s.scalars(select(Ticket))}
        events = dict(s.execute(select(TicketEvent.ticket_id, func.count()).group_by(TicketEvent.ticket_id)).all())
        states = {(r.channel, r.user_id) for r in s.scalars(select(DialogueRow))}
    return {"tickets": tickets, "events": events, "states": states}


def round_trip(tmp_path, run_python, source_url: str, target_url: str):
    site = Site(tmp_path / "source", database_url=source_url)
    try:
        site.staff("w1")
        for n in range(4):
            site.report(f"r{n}", phone=f"1381234567{n}")
        site.say("half", "景村里5号楼楼道堆满纸箱子")  # a report half given: a dialogue state
        before = snapshot(site.service)
        stop = threading.Event()

        def residents_keep_writing():
            n = 0
            while not stop.is_set():
                site.say(f"busy-{n}", "老人家食堂要带什么材料")
                n += 1

        writer = threading.Thread(target=residents_keep_writing)
        writer.start()
        try:
            done = run_python("-m", "bot", "admin", "backup", "--out", str(tmp_path / "b.tar.gz"),
                              "--config", str(site.config), timeout=300)
        finally:
            stop.set()
            writer.join()
    finally:
        site.close()
    assert done.returncode == 0, done.stderr
    assert "已备份" in done.stdout

    from tests.reliability.support import write_site_config

    target = write_site_config(tmp_path / "restored", database_url=target_url)
    restored = run_python("-m", "bot", "admin", "restore", str(tmp_path / "b.tar.gz"), "--config", str(target),
                          timeout=300)
    again = run_python("-m", "bot", "admin", "restore", str(tmp_path / "b.tar.gz"), "--config", str(target))
    assert restored.returncode == 0, restored.stderr
    assert again.returncode == 2 and "不是空的" in again.stderr  # never over existing data
    fresh = Site(tmp_path / "restored", database_url=target_url)  # starts there: migrates, rebuilds the index
    try:
        after = snapshot(fresh.service)
        assert fresh.service.knowledge.retriever.search("老人家食堂要带什么材料")
        return before, after, fresh
    finally:
        fresh.close()


def assert_everything_back(before: dict, after: dict) -> None:
    assert set(before["tickets"]) <= set(after["tickets"]) and len(before["tickets"]) == 4
    assert all(after["tickets"][t] == row for t, row in before["tickets"].items())
    assert all(after["events"][t] >= count for t, count in before["events"].items())
    assert before["states"] <= after["states"] and ("telegram", "half") in after["states"]


def test_a_sqlite_backup_taken_while_residents_write_restores_everything(tmp_path, run_python):
    before, after, fresh = round_trip(tmp_path, run_python, "sqlite:///bot.db", "sqlite:///bot.db")

    assert_everything_back(before, after)
    assert fresh.service.dialogues.load("telegram", "half").intake is not None


@pytest.mark.postgres
def test_a_postgresql_backup_taken_while_residents_write_restores_into_a_new_database(tmp_path, run_python,
                                                                                    postgres_schema):
    from tests.integration.db import _require_postgres

    _, schema = postgres_schema
    source = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    database = f"restore_{secrets.token_hex(4)}"
    admin = _require_postgres().execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    try:
        target = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}?options=-csearch_path%3D{schema}"
        before, after, _ = round_trip(tmp_path, run_python, source, target)
        assert_everything_back(before, after)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.engine.dispose()
