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
            if self.journal.pending(incoming.channel, incoming.user_id):
                replayed = self._replay_user(incoming.channel, incoming.user_id)
                if replayed is None:  # storage still away: keep this one behind the others
                    return self._keep(incoming)
                earlier = replayed
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
        handled = 0
        users = []
        for _, incoming in self.journal.pending():
            if (incoming.channel, incoming.user_id) not in users:
                users.append((incoming.channel, incoming.user_id))
        for channel, user_id in users:
            with self._users.hold((channel, user_id)):
                before = len(self.journal.pending(channel, user_id))
                replies = self._replay_user(channel, user_id)
                if replies is None:
                    break  # still away; try again next round
                try:
                    for reply in replies:
                        self.notifier.notify(channel, user_id, reply)
                except Exception as exc:
                    if not self.is_outage(exc):
                        raise
                    log.error("replies to %s/%s kept messages could not be queued: %s", channel, user_id,
                              type(exc).__name__)
                    break
                handled += before
        if handled:
            log.info("handled %s kept message(s) after storage came back", handled)
        return handled

    def _replay_user(self, channel: str, user_id: str) -> list[Reply] | None:
        """Handle one resident's kept messages in order; None when storage is still away."""
        replies: list[Reply] = []
        for key, incoming in self.journal.pending(channel, user_id):
            if not self.journal.claim(key):
                continue
            try:
                replies.extend(self.inner.handle(incoming))
            except Exception as exc:
                self.journal.release(key)
                if self.is_outage(exc):
                    return None
                log.exception("a kept message of %s/%s failed when handled again; dropped", channel, user_id)
                replies.append(Reply(texts.ERROR, intent="error"))
                self.journal.done(key)
                continue
            self.journal.done(key)
        return replies

    def _keep(self, incoming: Incoming) -> list[Reply]:
        self.journal.keep(incoming)
        try:
            urgent = self.inner.offline_replies(incoming)
        except Exception:  # the apology must go out whatever else is broken
            log.exception("offline replies failed")
            urgent = []
        return urgent + [Reply(texts.KEPT_FOR_LATER, intent="kept")]
