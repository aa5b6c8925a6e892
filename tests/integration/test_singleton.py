"""Telegram polling on one replica only (PostgreSQL advisory lock held for the process's life)."""

from __future__ import annotations

import pytest

from bot.storage.singleton import AlreadyHeld, hold
from tests.integration.db import open_database


@pytest.mark.postgres
def test_a_second_replica_is_refused_while_the_first_polls_and_may_start_once_it_is_gone(tmp_path):
    with open_database("postgres", tmp_path) as db:
        first = hold(db.engine, "telegram-polling")
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        other_replica = create_engine(db.url, poolclass=NullPool)  # another process: its own connections
        try:
            with pytest.raises(AlreadyHeld):
                hold(other_replica, "telegram-polling")
            first.close()  # the first replica stops (or is killed: the lock goes with its connection)
            second = hold(other_replica, "telegram-polling")
            assert second is not None
            second.close()
        finally:
            other_replica.dispose()


def test_sqlite_runs_one_process_and_holds_nothing(tmp_path):
    with open_database("sqlite", tmp_path) as db:
        assert hold(db.engine, "telegram-polling") is None
