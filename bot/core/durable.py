"""Nothing a resident sends is lost when the database is away.

DurableConversation wraps the conversation. When handling a message fails
because storage is unreachable (the composition root says which errors mean
that), the message goes to a journal on local disk and the resident is told it
was kept; an emergency still gets the emergency numbers at once, since that
needs no storage. Kept messages are handled later in arrival order: by the
background replay (the replies then go out through the notifier, like any
message to someone who is not writing right now), or first thing when the same
resident writes again (the replies then come back with the new answer).
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from bot.core import texts
from bot.core.locks import KeyedLocks
from bot.core.messages import Incoming, Reply
from bot.core.ports import MessageJournal, Notifier

log = logging.getLogger(__name__)

DONE, OUTAGE, BUSY = "done", "outage", "busy"


class Handler(Protocol):
    def handle(self, incoming: Incoming) -> list[Reply]: ...

    def offline_replies(self, incoming: Incoming) -> list[Reply]: ...


class DurableConversation:
    def __init__(self, inner: Handler, journal: MessageJournal, notifier: Notifier,
                 is_outage: Callable[[BaseException], bool]):
        self.inner = inner
        self.journal = journal
        self.notifier = notifier
        self.is_outage = is_outage
        self._users = KeyedLocks()  # per-user order between the resident's own requests and the replay

    def handle(self, incoming: Incoming) -> list[Reply]:
        with self._users.hold((incoming.channel, incoming.user_id)):
            earlier: list[Reply] = []
            if self.journal.has(incoming.channel, incoming.user_id):
                if self._replay_user(incoming.channel, incoming.user_id, earlier.extend) != DONE:
                    return earlier + self._keep(incoming)  # storage still away, or an earlier one is busy elsewhere
            try:
                return earlier + self.inner.handle(incoming)
            except Exception as exc:
                if not self.is_outage(exc):
                    raise
                log.warning("storage unavailable (%s); %s/%s message kept in the journal",
                            type(exc).__name__, incoming.channel, incoming.user_id)
                return earlier + self._keep(incoming)

    def replay(self) -> int:
        """Handle every kept message whose resident has not written since; return how many were handled."""
        self.journal.recover()  # what a process that died was handling (this host, or a shared folder's other)
        users = list(dict.fromkeys((i.channel, i.user_id) for _, i in self.journal.pending()))
        handled = [0]
        for channel, user_id in users:
            def deliver(replies: list[Reply], channel=channel, user_id=user_id) -> None:
                for reply in replies:
                    self.notifier.notify(channel, user_id, reply)
                handled[0] += 1

            with self._users.hold((channel, user_id)):
                outcome = self._replay_user(channel, user_id, deliver)
            if outcome == OUTAGE:
                break  # still away; try again next round
        if handled[0]:
            log.info("handled %s kept message(s) after storage came back", handled[0])
        return handled[0]

    def _replay_user(self, channel: str, user_id: str, deliver: Callable[[list[Reply]], None]) -> str:
        """Handle one resident's kept messages in order, each delivered before it leaves the journal.

        Returns DONE, OUTAGE (storage is still away) or BUSY (another process is handling one of
        them: order first, the rest wait for the next round). A message whose replies could not be
        queued is handled again later: at least once, never lost.
        """
        for key, incoming in self.journal.pending(channel, user_id):
            if not self.journal.claim(key):
                return BUSY
            try:
                replies = self.inner.handle(incoming)
            except Exception as exc:
                if self.is_outage(exc):
                    self.journal.release(key)
                    return OUTAGE
                log.exception("a kept message of %s/%s failed when handled again; answered with an apology",
                              channel, user_id)
                replies = [Reply(texts.ERROR, intent="error")]
            try:
                deliver(replies)
            except Exception as exc:
                self.journal.release(key)
                if self.is_outage(exc):
                    return OUTAGE
                raise
            self.journal.done(key)
        return BUSY if self.journal.has(channel, user_id) else DONE  # one still claimed elsewhere

    def _keep(self, incoming: Incoming) -> list[Reply]:
        self.journal.keep(incoming)
        try:
            urgent = self.inner.offline_replies(incoming)
        except Exception:  # the apology must go out whatever else is broken
            log.exception("offline replies failed")
            urgent = []
        return urgent + [Reply(texts.KEPT_FOR_LATER, intent="kept")]
