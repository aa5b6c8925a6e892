"""A re-ingest's progress on a board in the database (SQLite and PostgreSQL): every replica's console shows it."""

from __future__ import annotations

import threading
import time

import pytest

from bot.console.kb_admin import KbAdmin, KbBusy
from bot.retrieval.ingest import IngestReport
from bot.storage.jobs import INTERRUPTED, STALE_BEAT, SqlJobs


class SlowKnowledge:
    """An ingest that reports progress and then waits until the test lets it finish."""

    def __init__(self):
        self.halfway = threading.Event()
        self.finish = threading.Event()

    def ingest(self, progress=False, on_progress=None):
        on_progress("embed", 40, 100)
        self.halfway.set()
        assert self.finish.wait(30)
        on_progress("embed", 100, 100)
        return IngestReport()


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_reingest_started_on_one_replica_shows_its_progress_and_outcome_on_another(database, monkeypatch):
    monkeypatch.setattr("bot.console.kb_admin.BEAT_SECONDS", 0.1)
    knowledge = SlowKnowledge()
    one = KbAdmin(knowledge, board=SqlJobs(database.sessions))
    other = KbAdmin(knowledge, board=SqlJobs(database.new_store().sessions))  # another replica, its own engine

    job = one.start_reingest()
    assert knowledge.halfway.wait(10)
    wait_for(lambda: (other.job(job.id) or job).done == 40)
    seen = other.job(job.id)
    with pytest.raises(KbBusy):
        other.start_reingest()  # the other replica's admin is told one is running
    knowledge.finish.set()
    wait_for(lambda: other.job(job.id).state == "done")

    assert (seen.state, seen.stage, seen.total) == ("running", "embed", 100)
    assert other.running() is None and other.job(job.id).finished is not None
    assert other.job("no-such-job") is None


def test_a_job_whose_replica_died_shows_as_interrupted_and_blocks_nothing(database):
    now = [1_800_000_000.0]
    board = SqlJobs(database.sessions, clock=lambda: now[0])
    board.save({"id": "j1", "state": "running", "stage": "embed", "done": 3, "total": 9, "started": now[0],
                "finished": None, "summary": "", "failed": [], "error": ""})
    assert board.running()["id"] == "j1"

    now[0] += STALE_BEAT + 1  # no beat since: its replica was killed mid-ingest

    assert board.running() is None
    assert (board.get("j1")["state"], board.get("j1")["error"]) == ("failed", INTERRUPTED)
