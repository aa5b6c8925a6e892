"""Messages sent while storage is away are kept on disk, acknowledged, and handled in order once it is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.core import texts
from bot.core.durable import DurableConversation
from bot.core.messages import Incoming, Location
from bot.storage.journal import FileJournal, _host
from tests.fakes import MemoryNotifier, make_conversation

HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"


class Outage(Exception):
    """Stands for the driver's "database is locked" / "connection refused"."""


class SwitchableDialogues:
    """The fake dialogue store, which can be taken away and given back."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False

    def load(self, channel, user_id):
        if self.down:
            raise Outage("database is locked")
        return self.inner.load(channel, user_id)

    def save(self, state):
        if self.down:
            raise Outage("database is locked")
        self.inner.save(state)


@pytest.fixture
def durable(tmp_path):
    conversation, fakes = make_conversation()
    store = SwitchableDialogues(fakes["dialogues"])
    conversation.dialogues = store
    notifier = MemoryNotifier()
    chat = DurableConversation(conversation, FileJournal(tmp_path / "journal"), notifier,
                               lambda exc: isinstance(exc, Outage))
    return chat, store, notifier, fakes


def say(chat, text="", user="r1", **kw):
    return chat.handle(Incoming("web", user, text=text, **kw))


def test_a_message_during_an_outage_is_acknowledged_and_kept_on_disk(durable, tmp_path):
    chat, store, _, _ = durable
    store.down = True

    replies = say(chat, HEATING)

    assert [(r.text, r.intent) for r in replies] == [(texts.KEPT_FOR_LATER, "kept")]
    kept = FileJournal(tmp_path / "journal").pending()  # a fresh reader: it is on disk, not in memory
    assert [(i.user_id, i.text) for _, i in kept] == [("r1", HEATING)]


def test_an_emergency_during_an_outage_still_gets_the_numbers_at_once(durable):
    chat, store, _, _ = durable
    store.down = True

    replies = say(chat, "楼道里好大的煤气味，快来人")

    assert replies[0].intent == "emergency" and "119" in replies[0].text
    assert replies[-1].intent == "kept"


def test_kept_messages_are_replayed_in_order_and_the_replies_go_out_through_the_notifier(durable):
    chat, store, notifier, fakes = durable
    store.down = True
    say(chat, HEATING)
    say(chat, "13812345678")
    say(chat, "你好", user="r2")

    assert chat.replay() == 0  # still away: nothing handled, nothing dropped
    assert len(chat.journal.pending()) == 3
    store.down = False
    handled = chat.replay()

    assert handled == 3 and chat.journal.pending() == []
    to_r1 = [reply.text for channel, user, reply in notifier.sent if (channel, user) == ("web", "r1")]
    assert any("电话" in t for t in to_r1[:1])  # the report asked for a phone first …
    assert fakes["dialogues"].rows[("web", "r1")]["intake"]["phone"] == "13812345678"  # … and got it, in order
    assert [reply.intent for channel, user, reply in notifier.sent if user == "r2"] == ["greeting"]


def test_the_same_resident_writing_again_gets_the_kept_messages_answered_first(durable):
    chat, store, notifier, fakes = durable
    store.down = True
    say(chat, HEATING)
    store.down = False

    replies = say(chat, "13812345678")

    assert "电话" in replies[0].text  # the kept report, answered now
    assert fakes["dialogues"].rows[("web", "r1")]["intake"]["phone"] == "13812345678"
    assert notifier.sent == [] and chat.journal.pending() == []


def test_while_a_resident_has_kept_messages_a_new_one_waits_behind_them(durable):
    chat, store, _, _ = durable
    store.down = True
    say(chat, HEATING)
    calls = []
    original = store.load
    store.load = lambda *a: calls.append(a) or original(*a)

    replies = say(chat, "13812345678")

    assert replies[-1].intent == "kept"
    assert [i.text for _, i in chat.journal.pending()] == [HEATING, "13812345678"]


def test_an_error_that_is_not_an_outage_is_not_swallowed(durable):
    chat, _, _, fakes = durable

    def broken(*_a):
        raise ZeroDivisionError("a bug")

    fakes["dialogues"].load = broken
    with pytest.raises(ZeroDivisionError):
        say(chat, "你好")
    assert chat.journal.pending() == []


def test_everything_an_incoming_carries_survives_the_journal(tmp_path):
    journal = FileJournal(tmp_path)
    sent = Incoming("telegram", "42", text="这里😀\x00", button=None, photos=("p1", "p2"),
                    location=Location(39.9, 116.4, "景村里"), kind="photo", document=("f1", "a.pdf"),
                    display_name="王")
    key = journal.keep(sent)

    [(found_key, found)] = FileJournal(tmp_path).pending()

    assert found_key == key and found == sent


def test_a_claim_left_by_a_dead_process_is_given_back_and_a_broken_entry_is_set_aside(tmp_path):
    journal = FileJournal(tmp_path)
    key = journal.keep(Incoming("web", "u1", text="一"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.rename(tmp_path / f"{key}.json", tmp_path / f"{key}.claimed-{_host()}-{dead.stdout.strip()}")
    (tmp_path / "00000000000000000001-broken.json").write_text("{not json", "utf-8")
    (tmp_path / "00000000000000000002-listed.json").write_text("[1, 2]", "utf-8")

    again = FileJournal(tmp_path)  # a restart

    assert [i.text for _, i in again.pending()] == ["一"]
    assert (tmp_path / "00000000000000000001-broken.unreadable").exists()
    assert (tmp_path / "00000000000000000002-listed.unreadable").exists()


def test_a_claimed_entry_is_not_handled_twice(tmp_path):
    journal = FileJournal(tmp_path)
    key = journal.keep(Incoming("web", "u1", text="一"))

    assert journal.claim(key) is True
    assert journal.claim(key) is False and journal.pending() == []
    journal.release(key)
    assert [k for k, _ in journal.pending()] == [key]
    journal.claim(key)
    journal.done(key)
    assert journal.pending() == [] and os.listdir(tmp_path) == []


def test_entries_are_plain_json_an_operator_can_read(tmp_path):
    journal = FileJournal(tmp_path)
    key = journal.keep(Incoming("web", "u1", text="暖气不热"))

    assert json.loads((tmp_path / f"{key}.json").read_text("utf-8"))["text"] == "暖气不热"


class FlakyNotifier(MemoryNotifier):
    def __init__(self):
        super().__init__()
        self.down = False

    def notify(self, channel, user_id, reply):
        if self.down:
            raise Outage("database is locked")
        super().notify(channel, user_id, reply)


def test_replies_are_not_lost_when_storage_goes_away_again_in_the_middle_of_a_replay(tmp_path):
    conversation, fakes = make_conversation()
    store = SwitchableDialogues(fakes["dialogues"])
    conversation.dialogues = store
    notifier = FlakyNotifier()
    chat = DurableConversation(conversation, FileJournal(tmp_path), notifier, lambda exc: isinstance(exc, Outage))
    store.down = True
    say(chat, "你好")
    say(chat, "谢谢")
    store.down = False
    notifier.down = True  # handled, but the replies cannot be queued

    assert chat.replay() == 0
    assert [i.text for _, i in chat.journal.pending()] == ["你好", "谢谢"]  # kept: handled again next round
    notifier.down = False
    assert chat.replay() == 2
    assert [reply.intent for _, _, reply in notifier.sent] == ["greeting", "thanks"]


def test_a_message_claimed_by_another_process_keeps_the_residents_later_messages_behind_it(durable):
    chat, store, _, _ = durable
    store.down = True
    say(chat, HEATING)
    store.down = False
    [(key, _)] = chat.journal.pending()
    os.rename(chat.journal.folder / f"{key}.json", chat.journal.folder / f"{key}.claimed-{_host()}-1")  # pid 1: alive

    replies = say(chat, "13812345678")

    assert replies[-1].intent == "kept"  # not handled before the earlier one
    assert [i.text for _, i in chat.journal.pending()] == ["13812345678"]


def test_another_residents_kept_messages_cost_a_healthy_message_no_reading(durable, monkeypatch):
    chat, store, _, _ = durable
    store.down = True
    for n in range(20):
        say(chat, "你好", user=f"other-{n}")
    store.down = False
    read = []
    monkeypatch.setattr(FileJournal, "pending", lambda self, *a: read.append(a) or [])

    replies = say(chat, "你好", user="r1")

    assert replies[-1].intent == "greeting" and read == []


def test_only_errors_that_mean_the_database_is_away_count_as_an_outage():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from bot.storage.db import is_outage

    def wrapped(message: str) -> OperationalError:
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert is_outage(wrapped("database is locked"))
    assert is_outage(wrapped('connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                             "Connection refused"))
    assert not is_outage(wrapped("no such table: dialogue"))  # a bug: retrying later would fail the same way
    assert not is_outage(ValueError("bad"))
    try:
        try:
            raise wrapped("database is locked")
        except OperationalError:
            raise KeyError("a bug raised while handling it")  # noqa: B904 - the point of the test
    except KeyError as bug:
        assert not is_outage(bug)


def test_entries_are_readable_by_their_owner_only(tmp_path):
    journal = FileJournal(tmp_path)
    key = journal.keep(Incoming("web", "u1", text="我的电话13812345678"))

    assert (tmp_path / f"{key}.json").stat().st_mode & 0o077 == 0


def test_a_replica_sharing_the_journal_replays_what_a_dead_replica_was_handling_without_a_restart(tmp_path):
    """Replicas keep their outage messages in one shared folder; each replay round first gives back the claims
    of replicas that are gone (this host: the pid is dead; another host: the claim is older than STALE_CLAIM),
    so any replica answers them, not only the dead one when (if) it comes back."""
    import time as clock

    from bot.storage.journal import STALE_CLAIM

    conversation, fakes = make_conversation()
    notifier = MemoryNotifier()
    survivor = DurableConversation(conversation, FileJournal(tmp_path), notifier, lambda exc: isinstance(exc, Outage))
    writer = FileJournal(tmp_path)
    here = writer.keep(Incoming("web", "r1", text="你好"))
    there = writer.keep(Incoming("web", "r2", text="谢谢"))
    busy = writer.keep(Incoming("web", "r3", text="你好"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.rename(tmp_path / f"{here}.json", tmp_path / f"{here}.claimed-{_host()}-{dead.stdout.strip()}")
    old_claim = tmp_path / f"{there}.claimed-replica-b.example-4242"
    os.rename(tmp_path / f"{there}.json", old_claim)
    aged = clock.time() - STALE_CLAIM - 5
    os.utime(old_claim, (aged, aged))
    os.rename(tmp_path / f"{busy}.json", tmp_path / f"{busy}.claimed-replica-c.example-4243")  # claimed just now

    assert survivor.replay() == 2

    assert sorted(user for _, user, _ in notifier.sent) == ["r1", "r2"]
    assert survivor.journal.has("web", "r3")  # another host's fresh claim: maybe still being handled there


def test_the_periodic_recovery_leaves_this_processs_own_claims_alone(tmp_path):
    journal = FileJournal(tmp_path)
    key = journal.keep(Incoming("web", "u1", text="一"))
    assert journal.claim(key)  # another thread of this process is handling it

    assert journal.recover() == 0 and journal.pending() == []


def test_an_old_message_claimed_just_now_by_another_host_is_not_taken_from_it(tmp_path, monkeypatch):
    """After an outage longer than STALE_CLAIM the kept messages are old; a claim's age counts from the claim."""
    import time as clock

    from bot.storage import journal as journal_module
    from bot.storage.journal import STALE_CLAIM

    key = FileJournal(tmp_path).keep(Incoming("web", "u1", text="一"))
    aged = clock.time() - STALE_CLAIM - 60
    os.utime(tmp_path / f"{key}.json", (aged, aged))
    monkeypatch.setattr(journal_module, "_host", lambda: "replica-a.example")
    other_host = FileJournal(tmp_path)
    monkeypatch.undo()
    assert other_host.claim(key)

    assert FileJournal(tmp_path).recover() == 0  # this host's replica leaves the fresh claim alone
    assert FileJournal(tmp_path).has("web", "u1") and FileJournal(tmp_path).pending() == []
