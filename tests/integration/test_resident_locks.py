"""One message of a resident at a time across replicas (PostgreSQL advisory locks)."""

from __future__ import annotations

import threading
import time

import pytest

from bot.core.locks import KeyedLocks
from bot.storage.resident_locks import ReplicaLocks, resident_locks
from tests.integration.db import open_database


@pytest.mark.postgres
def test_a_residents_second_message_on_another_replica_waits_and_another_resident_does_not(tmp_path):
    with open_database("postgres", tmp_path) as db:
        replica_a, replica_b = ReplicaLocks(db.engine, 4), ReplicaLocks(db.engine, 4)
        held, order = threading.Event(), []

        def first():
            with replica_a.hold(("web", "r1")):
                held.set()
                time.sleep(0.5)
                order.append("a done")

        thread = threading.Thread(target=first)
        thread.start()
        assert held.wait(10)
        started = time.monotonic()
        with replica_b.hold(("web", "r2")):  # someone else: at once
            other_wait = time.monotonic() - started
        with replica_b.hold(("web", "r1")):  # the same resident: after the first message
            order.append("b")
        thread.join(10)
        replica_a.close()
        replica_b.close()

    assert other_wait < 0.3
    assert order == ["a done", "b"]


def test_sqlite_keeps_the_in_process_lock(tmp_path):
    with open_database("sqlite", tmp_path) as db:
        assert isinstance(resident_locks(db.engine), KeyedLocks)
