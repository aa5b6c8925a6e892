"""Upgrades: a database made by the first release, full of tickets, upgrades to the newest schema with nothing lost."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from bot.storage.db import make_engine
from bot.storage.migrate import alembic_config, status
from tests.integration.db import POSTGRES_SERVER, _require_postgres, write_config

FIRST = "93dfe010a55d"  # the first migration: staff, invites, tickets, events, dialogue state, outbox
AT = datetime(2026, 11, 2, 1, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_database(request, tmp_path):
    """(url, engine) of a database at the first migration with a release's worth of rows in it."""
    from alembic import command

    admin = schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    else:
        admin, schema = _require_postgres(), f"up_{secrets.token_hex(5)}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, FIRST)
    with engine.begin() as c:
        c.execute(text("INSERT INTO staff (id, name, role, channel, user_id, grids, community, on_duty, created_at) "
                       "VALUES (1, '王芳', 'worker', 'telegram', 'w1', :grids, NULL, :yes, :at)"),
                  {"grids": json.dumps(["jingcun-01"]), "yes": True, "at": AT})
        for n in range(3):
            c.execute(text(
                "INSERT INTO ticket (id, channel, user_id, kind, category, sla_class, urgent, description, place, "
                "building_id, grid_id, community_id, phone, contact_time, photos, status, assignee_id, created_at, "
                "dispatch_due, feedback_due, resolution_note, rating_comment, reopen_count, personal_erased, version) "
                "VALUES (:id, 'telegram', :user, 'request', '供暖', 'utility', :no, '暖气不热', '景村里3号楼', "
                "'jingcun-3', 'jingcun-01', 'jingcun', '13812345678', '晚上', '[]', 'assigned', 1, :at, :at, :at, "
                "'', '', 0, :no, 1)"), {"id": f"T26110200{n:03d}", "user": f"r{n}", "no": False, "at": AT})
            c.execute(text("INSERT INTO ticket_event (ticket_id, at, actor, action, to_status, note) "
                           "VALUES (:id, :at, 'resident', 'filed', 'new', '供暖')"), {"id": f"T26110200{n:03d}", "at": AT})
        c.execute(text("INSERT INTO dialogue_state (channel, user_id, state, updated_at) VALUES "
                       "('telegram', 'r9', :state, :at)"),
                  {"state": json.dumps({"intake": {"description": "楼道堆物", "place": "景村里5号楼"}}), "at": AT})
    yield url, engine
    engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def counts(engine) -> dict[str, int]:
    with engine.connect() as c:
        return {table: c.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
                for table in ("staff", "ticket", "ticket_event", "dialogue_state")}


def test_a_first_release_database_upgrades_to_the_newest_schema_with_nothing_lost(old_database, tmp_path, run_python):
    url, engine = old_database
    config = write_config(tmp_path / "cfg", url)
    before = counts(engine)

    check = run_python("-m", "bot", "admin", "migrate", "--check", "--config", str(config))
    upgraded = run_python("-m", "bot", "admin", "migrate", "--config", str(config))
    again = run_python("-m", "bot", "admin", "migrate", "--check", "--config", str(config))

    assert check.returncode == 1 and "需要升级" in check.stdout and FIRST in check.stdout
    assert upgraded.returncode == 0, upgraded.stderr
    assert again.returncode == 0 and "已是最新" in again.stdout
    current, head = status(engine)
    assert current == head != FIRST
    assert counts(engine) == before == {"staff": 1, "ticket": 3, "ticket_event": 3, "dialogue_state": 1}
    from bot.app import build_service
    from bot.settings import load_settings

    service = build_service(load_settings(config))
    try:
        ticket = service.store.get("T26110200001")
        worker = service.staff.find("telegram", "w1")  # an old staff row is active after the upgrade
        state = service.dialogues.load("telegram", "r9")
        assert (ticket.phone, ticket.status, ticket.assignee_id) == ("13812345678", "assigned", worker.id)
        assert [e.action for e in service.store.events(ticket.id)] == ["filed"]
        assert state.intake is not None and state.intake.place == "景村里5号楼"
    finally:
        service.engine.dispose()
