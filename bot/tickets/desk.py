"""The resident's side of the ticket system (implements core.ports.TicketDesk)."""

from __future__ import annotations

from bot.core.ports import TicketDraft, TicketInfo
from bot.tickets.lifecycle import TicketNotFound, TransitionError
from bot.tickets.store import RESIDENT, TicketStore, to_info


class ResidentDesk:
    def __init__(self, store: TicketStore):
        self.store = store

    def file(self, draft: TicketDraft) -> TicketInfo:
        ticket, linked = self.store.file(draft)
        return to_info(ticket, linked)

    def tickets_of(self, channel: str, user_id: str) -> list[TicketInfo]:
        return [to_info(t) for t in self.store.of_resident(channel, user_id)]

    def rate(self, ticket_id: str, channel: str, user_id: str, stars: int, comment: str = "") -> TicketInfo:
        """A rating of 3-5 closes a resolved ticket; 1-2 (or 没解决) reopens it."""
        ticket = self.store.get(ticket_id)
        if (ticket.channel, ticket.user_id) != (channel, user_id):
            raise TicketNotFound(f"没有找到您的工单 {ticket_id}")
        if ticket.status != "resolved":
            raise TransitionError("这张工单现在不需要评价。")
        if stars >= 3:
            ticket = self.store.transition(ticket_id, "close", RESIDENT, note=comment, expected="resolved",
                                           rating=stars, rating_comment=comment[:500])
        else:
            ticket = self.store.transition(ticket_id, "reopen", RESIDENT, note=comment or "居民表示没有解决",
                                           expected="resolved", rating=stars, rating_comment=comment[:500])
        return to_info(ticket)
