"""Several replicas delivering one outbox (SQLite and PostgreSQL): each row leased to one process, none lost."""

from __future__ import annotations

import threading
import time

from bot.core.messages import Reply
from bot.storage.outbox import SqlOutbox


def fill(outbox: SqlOutbox, n: int) -> None:
    for i in range(n):
        outbox.notify("telegram", f"w{i % 7}", Reply(f"新工单 {i}"))


def test_two_replicas_claiming_at_once_share_the_rows_without_overlap(database):
    outbox_a, outbox_b = SqlOutbox(database.sessions), SqlOutbox(database.new_store().sessions)
    fill(outbox_a, 120)
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def replica(name: str, outbox: SqlOutbox) -> None:
        start.wait()
        while True:
            rows = outbox.claim("telegram", limit=7, lease_seconds=60)
            if not rows:
                return
            taken[name] += [r.id for r in rows]
            outbox.mark_sent([r.id for r in rows])

    threads = [threading.Thread(target=replica, args=("a", outbox_a)), threading.Thread(target=replica, args=("b", outbox_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not set(taken["a"]) & set(taken["b"])
    assert len(taken["a"]) + len(taken["b"]) == 120 and outbox_a.pending("telegram") == []


def test_a_row_claimed_by_a_replica_that_died_is_delivered_by_another_after_the_lease(database):
    outbox = SqlOutbox(database.sessions)
    fill(outbox, 3)

    dead = outbox.claim("telegram", limit=2, lease_seconds=0.5)  # claimed, never marked sent
    meanwhile = outbox.claim("telegram", limit=10, lease_seconds=60)
    time.sleep(0.7)
    after = outbox.claim("telegram", limit=10, lease_seconds=60)

    assert [r.id for r in meanwhile] == [max(r.id for r in dead) + 1]
    assert sorted(r.id for r in after) == sorted(r.id for r in dead)
    assert outbox.claim("telegram", limit=10) == []  # all leased now


def test_a_row_whose_send_failed_is_given_back_at_once_for_the_next_round(database):
    outbox = SqlOutbox(database.sessions)
    fill(outbox, 2)
    first, second = outbox.claim("telegram", limit=2)

    outbox.mark_sent([first.id])
    outbox.release([first.id, second.id])  # the second failed: back at once; the first stays sent

    assert [r.id for r in outbox.claim("telegram", limit=5)] == [second.id]
