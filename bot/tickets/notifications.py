"""Tell the right people about each ticket change, through the core's Notifier (the outbox).

Workers get the phone number of the ticket assigned to them, because it is
theirs to call; anything else they receive is masked.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.messages import Button, Reply
from bot.core.ports import Notifier
from bot.core.privacy import mask
from bot.tickets.lifecycle import DESK_CHANNEL
from bot.tickets.models import Staff, Ticket
from bot.tickets.sla import local
from bot.tickets.store import Actor, TicketStore

log = logging.getLogger(__name__)


def worker_buttons(ticket: Ticket) -> list[Button]:
    if ticket.status == "assigned":
        return [Button("接单（已联系居民）", f"t:accept:{ticket.id}"), Button("退回", f"t:handback:{ticket.id}")]
    if ticket.status == "accepted":
        return [Button("办结反馈", f"t:resolve:{ticket.id}"), Button("退回", f"t:handback:{ticket.id}")]
    return []


def ticket_card(ticket: Ticket, show_personal: bool) -> str:
    phone = ticket.phone if show_personal else mask(ticket.phone)
    place = ticket.place if show_personal else _coarse(ticket.place)
    lines = [f"工单 {ticket.id}｜{ticket.category}" + ("｜紧急" if ticket.urgent else ""),
             f"位置：{place}", f"问题：{(ticket.description if show_personal else mask(ticket.description))[:300]}",
             f"联系电话：{phone or '未留'}"]
    if ticket.contact_time:
        lines.append(f"方便联系：{ticket.contact_time}")
    if ticket.photos:
        lines.append(f"照片：{len(ticket.photos)} 张")
    lines.append(f"派单时限：{local(ticket.dispatch_due)}；首次反馈时限：{local(ticket.feedback_due)}")
    return "\n".join(lines)


def _coarse(place: str) -> str:
    """Keep the estate and building, drop the room number."""
    import re

    return re.sub(r"\d{3,4}室", "***室", place)


# Deadline messages: written in the transaction that claims the deadline when the outbox is in the same database
IN_TRANSACTION = ("remind", "escalate")


class TicketNotifications:
    def __init__(self, store: TicketStore, notifier: Notifier, dialogues=None):
        self.store = store
        self.notifier = notifier
        self.dialogues = dialogues
        self._atomic = False

    def attach(self, store: TicketStore | None = None) -> "TicketNotifications":
        """Listen to the store; with an outbox in the store's database (notify_in), deadline messages are
        written in the same transaction as the deadline's claim, so a supervisor is told exactly when the
        escalation is recorded, even if the process dies right after."""
        store = store or self.store
        store.listeners.append(self)
        if hasattr(self.notifier, "notify_in"):
            store.in_transaction.append(self.within)
            self._atomic = True
        return self

    def within(self, session: Session, ticket: Ticket, action: str, actor: Actor) -> None:
        if action in IN_TRANSACTION:
            self._deadline(ticket, action, session)

    def __call__(self, ticket_id: str, action: str, actor: Actor) -> None:
        if action in IN_TRANSACTION and self._atomic:
            return  # written with the event (within)
        ticket = self.store.get(ticket_id)
        if action in IN_TRANSACTION:
            self._deadline(ticket, action)
            return
        if action in ("assign", "take") and ticket.assignee_id:
            self._to_staff(ticket.assignee_id, Reply("新工单：\n" + ticket_card(ticket, True), worker_buttons(ticket),
                                                      intent="ticket", ticket_id=ticket.id))
            self._to_resident(ticket, f"您的工单 {ticket.id} 已派给网格员，会在时限内联系您。")
        elif action == "unrouted":
            self._to_supervisors(ticket, "待派单：没有找到对应网格的值班网格员，请在工作台派单。\n" + ticket_card(ticket, True))
        elif action == "accept":
            self._to_resident(ticket, f"网格员已接单（工单 {ticket.id}），正在处理。")
        elif action == "resolve":
            from bot.core.conversation import rating_buttons

            text = f"您的工单 {ticket.id} 已处理：{ticket.resolution_note}\n请为这次服务打分（5分最满意）；问题没解决请点“没解决”。"
            self._to_resident(ticket, text, rating_buttons(ticket.id))
            if self.dialogues is not None and ticket.channel != DESK_CHANNEL:
                state = self.dialogues.load(ticket.channel, ticket.user_id)
                state.rating_ticket = ticket.id
                self.dialogues.save(state)
        elif action == "reopen" and ticket.assignee_id:
            self._to_staff(ticket.assignee_id, Reply(f"居民对工单 {ticket.id} 不满意，已重新打开：{ticket.rating_comment}\n"
                                                      + ticket_card(ticket, True), worker_buttons(ticket), intent="ticket",
                                                      ticket_id=ticket.id))
        elif action == "hand_back" and actor.kind != "system":  # by the system: routed again at once
            self._to_supervisors(ticket, f"工单 {ticket.id} 被网格员退回，请重新派单。\n" + ticket_card(ticket, True))
        elif action == "dismiss":
            reason = self._last_note(ticket.id, "dismiss")
            self._to_resident(ticket, f"您的工单 {ticket.id} 已由社区关闭：{reason}。如果问题还在，请再告诉我。")
            if ticket.assignee_id:
                self._to_staff(ticket.assignee_id, Reply(f"工单 {ticket.id} 已由社区关闭：{reason}。不用再处理。",
                                                          intent="ticket", ticket_id=ticket.id))

    def _deadline(self, ticket: Ticket, action: str, session: Session | None = None) -> None:
        if action == "escalate":
            self._to_supervisors(ticket, f"⚠️ 工单 {ticket.id} 已超时未处理，请督办。\n" + ticket_card(ticket, True), session)
        elif not ticket.assignee_id:
            self._to_supervisors(ticket, f"提醒：待派单工单 {ticket.id} 将于 {local(ticket.dispatch_due)} 超过联系时限，"
                                         "请尽快在工作台派单。\n" + ticket_card(ticket, True), session)
        else:
            self._to_staff(ticket.assignee_id, Reply(f"提醒：工单 {ticket.id} 即将超时（{local(ticket.dispatch_due)}），请尽快接单联系居民。",
                                                      worker_buttons(ticket), intent="ticket", ticket_id=ticket.id), session)

    def _last_note(self, ticket_id: str, action: str) -> str:
        notes = [e.note for e in self.store.events(ticket_id) if e.action == action]
        return notes[-1] if notes else ""

    def _to_resident(self, ticket: Ticket, text: str, buttons: list[Button] | None = None) -> None:
        if ticket.channel == DESK_CHANNEL:
            return  # filed for someone who came or called: the worker tells them, no chat can
        self.notifier.notify(ticket.channel, ticket.user_id, Reply(text, buttons or [], intent="ticket", ticket_id=ticket.id))

    def _to_staff(self, staff_id: int, reply: Reply, session: Session | None = None) -> None:
        if session is not None:
            staff = session.get(Staff, staff_id)
            if staff is not None:
                self.notifier.notify_in(session, staff.channel, staff.user_id, reply)
            return
        with self.store.sessions() as s:  # read, and give the connection back before writing the outbox
            staff = s.get(Staff, staff_id)
            target = (staff.channel, staff.user_id) if staff is not None else None
        if target is not None:
            self.notifier.notify(*target, reply)

    def _to_supervisors(self, ticket: Ticket, text: str, session: Session | None = None) -> None:
        if session is not None:
            targets = _supervisors(session, ticket)
            for channel, user_id in targets:
                self.notifier.notify_in(session, channel, user_id, Reply(text, intent="ticket", ticket_id=ticket.id))
        else:
            with self.store.sessions() as s:
                targets = _supervisors(s, ticket)
            for channel, user_id in targets:
                self.notifier.notify(channel, user_id, Reply(text, intent="ticket", ticket_id=ticket.id))
        if not targets:
            log.warning("no supervisor or admin to tell about ticket %s", ticket.id)


def _supervisors(session: Session, ticket: Ticket) -> list[tuple[str, str]]:
    """The community's active supervisors; the admins when it has none."""
    people = list(session.scalars(select(Staff).where(Staff.role == "supervisor", Staff.active.is_(True),
                                                      Staff.community == ticket.community_id)))
    if not people:
        people = list(session.scalars(select(Staff).where(Staff.role == "admin", Staff.active.is_(True))))
    return [(p.channel, p.user_id) for p in people]
