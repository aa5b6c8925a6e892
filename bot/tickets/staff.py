"""Staff: one-time invite codes, binding a chat account to a role, and the staff's chat commands."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Callable

from sqlalchemy import select, update

from bot.core import texts
from bot.core.messages import Button, Incoming, Reply
from bot.core.privacy import mask
from bot.errors import BotError
from bot.core.walk_in import WalkIn, ticket_draft
from bot.tickets.lifecycle import SOURCE_LABELS, STATUS_LABELS, PermissionDenied, TicketNotFound, TransitionError
from bot.tickets.audit import AuditLog
from bot.tickets.models import Invite, Staff, Ticket
from bot.tickets.notifications import ticket_card, worker_buttons
from bot.tickets.sla import as_utc, local
from bot.tickets.store import SYSTEM, Actor, TicketStore, can_see_personal_data, can_take, can_view

log = logging.getLogger(__name__)
ROLES = ("worker", "supervisor", "admin")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
STAFF_COMMANDS = ("/bind", "/tickets", "/ticket", "/file")  # refused with a clear reply to anyone who is not staff


def staff_help(role: str) -> str:
    """/help for staff: their own commands first, then what residents can do (staff may use that too)."""
    lines = ["工作人员命令：",
             "/tickets — 我的和本网格（社区）的待办工单，按时限排序",
             "/ticket 工单号 — 工单详情和处理按钮（接单、办结反馈、退回；无人接的本网格工单可以“我来接”）",
             "/file 情况 — 代居民登记工单（窗口、电话、走访），例如：/file 景村里3号楼王阿姨来电，暖气不热，电话139…",
             "/console — 工作台登录链接（在手机浏览器里处理工单、看统计）"]
    if role == "admin":
        lines += ["/reingest — 重新导入知识库", "直接发送文件（.md .txt .docx .pdf .html）— 加入知识库（说明里写“内部”则仅工作人员可见）"]
    lines += ["", texts.HELP]
    return "\n".join(lines)


class InviteError(BotError):
    """An invite code that is wrong, used or expired."""


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


class StaffDirectory:
    def __init__(self, store: TicketStore, audit: AuditLog | None = None):
        self.store = store
        self.audit = audit or AuditLog(store.sessions, store.clock)

    def create_invite(self, role: str, grids: list[str] | None = None, community: str | None = None,
                      name: str = "", ttl_hours: float = 72, created_by: str = "admin") -> str:
        """Create a one-time invite; return the code (shown once, stored only as a hash)."""
        if role not in ROLES:
            raise InviteError(f"未知角色 {role}，可选：{', '.join(ROLES)}")
        org = self.store.org
        for grid in grids or []:
            if grid not in org.grids:
                raise InviteError(f"未知网格 {grid}")
        if role == "worker" and not grids:
            raise InviteError("网格员邀请需要指定网格（--grid）")
        if role == "supervisor":
            if not community or community not in org.communities:
                raise InviteError("社区负责人邀请需要指定已有的社区（--community）")
        code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        with self.store.sessions.begin() as s:
            s.add(Invite(code_hash=_hash(code), role=role, name=name, grids=list(grids or []), community=community,
                         expires_at=self.store.clock() + timedelta(hours=ttl_hours), created_by=created_by))
        self.audit.record(created_by, "invite", name or role, f"{role} {','.join(grids or []) or community or ''}")
        return code

    def open_invites(self) -> list[Invite]:
        """Invites not used yet and not expired (or revoked), newest first."""
        now = self.store.clock()
        with self.store.sessions() as s:
            rows = [i for i in s.scalars(select(Invite).where(Invite.used_at.is_(None)).order_by(Invite.id.desc()))
                    if as_utc(i.expires_at) > now]
            for row in rows:
                s.expunge(row)
            return rows

    def revoke_invite(self, invite_id: int, by: str) -> None:
        """An unused invite stops working now (it expires at once)."""
        now = self.store.clock()
        with self.store.sessions.begin() as s:
            invite = s.get(Invite, invite_id)
            if invite is None or invite.used_at is not None:
                raise InviteError("没有这个未使用的邀请码。")
            invite.expires_at = now
            target = invite.name or invite.role
        self.audit.record(by, "invite_revoke", target)

    def deactivate(self, staff_id: int, by: Actor) -> list[str]:
        """Someone left: refused everywhere from now on, their open tickets routed again; the tickets rerouted."""
        with self.store.sessions.begin() as s:
            staff = s.get(Staff, staff_id)
            if staff is None or not staff.active:
                raise BotError("没有这个在职的工作人员。")
            if staff.id == by.staff_id:
                raise BotError("不能停用自己的账号。")
            staff.active, staff.on_duty, staff.password_hash = False, False, None
            name = staff.name
            open_ids = list(s.scalars(select(Ticket.id).where(Ticket.assignee_id == staff_id,
                                                              Ticket.status.in_(("assigned", "accepted")))))
        for ticket_id in open_ids:
            # back to 待派单 with the reason in its history, then to a colleague on duty (or the supervisor)
            self.store.transition(ticket_id, "hand_back", SYSTEM, note=f"{name} 已停用，重新派单")
            self.store.route(ticket_id)
        self.audit.record(by.label, "staff_deactivate", f"{name}（工号 {staff_id}）",
                          f"重新派单 {len(open_ids)} 张" if open_ids else "")
        log.info("staff %s deactivated by %s; %d open tickets routed again", staff_id, by.label, len(open_ids))
        return open_ids

    def reset_password(self, staff_id: int, by: Actor) -> str:
        """Clear a password (the person logs in with a chat link and sets a new one); the name."""
        with self.store.sessions.begin() as s:
            staff = s.get(Staff, staff_id)
            if staff is None or not staff.active:
                raise BotError("没有这个在职的工作人员。")
            staff.password_hash = None
            name = staff.name
        self.audit.record(by.label, "password_reset", f"{name}（工号 {staff_id}）")
        return name

    def bind(self, code: str, channel: str, user_id: str, display_name: str = "") -> Staff:
        """Turn a valid, unused, unexpired code into a staff account for this chat user."""
        now = self.store.clock()
        with self.store.sessions.begin() as s:
            invite = s.scalars(select(Invite).where(Invite.code_hash == _hash(code))).first()
            if invite is None:
                raise InviteError("邀请码不正确。")
            if invite.used_at is not None:
                raise InviteError("这个邀请码已经用过了。")
            if as_utc(invite.expires_at) <= now:
                raise InviteError("这个邀请码已过期，请联系管理员重新生成。")
            claimed = s.execute(update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
                                .values(used_at=now))
            if claimed.rowcount != 1:
                raise InviteError("这个邀请码已经用过了。")
            staff = s.scalars(select(Staff).where(Staff.channel == channel, Staff.user_id == user_id)).first()
            if staff is None:
                staff = Staff(name=invite.name or display_name or f"{channel}:{user_id}", role=invite.role,
                              channel=channel, user_id=user_id, grids=list(invite.grids or []),
                              community=invite.community, created_at=now)
                s.add(staff)
            else:  # a new role, or someone who left and came back
                staff.role, staff.grids, staff.community = invite.role, list(invite.grids or []), invite.community
                staff.active = staff.on_duty = True
            s.flush()
            invite.used_by = staff.id
            s.expunge(staff)
        log.info("staff %s bound as %s", staff.id, staff.role)
        if staff.role == "worker":
            # tickets filed in these grids before anyone covered them wait as 待派单: they are this worker's now
            routed = self.store.route_waiting(staff.grids or [])
            if routed:
                log.info("%d waiting tickets routed after staff %s joined", len(routed), staff.id)
        return staff

    def find(self, channel: str, user_id: str) -> Staff | None:
        """The active staff member of this chat account (someone deactivated is a resident again)."""
        with self.store.sessions() as s:
            staff = s.scalars(select(Staff).where(Staff.channel == channel, Staff.user_id == user_id,
                                                  Staff.active.is_(True))).first()
            if staff is not None:
                s.expunge(staff)
            return staff


class StaffChat:
    """Staff commands and ticket buttons in the chat (implements core.conversation.StaffCommands)."""

    def __init__(self, directory: StaffDirectory, read_note: Callable[[str], WalkIn] | None = None):
        self.directory = directory
        self.store = directory.store
        self.read_note = read_note  # core.walk_in.read_note bound to the intake: /file

    def is_staff(self, channel: str, user_id: str) -> bool:
        return self.directory.find(channel, user_id) is not None

    def handle(self, incoming: Incoming, state) -> list[Reply] | None:
        """Replies for a staff command, ticket button or pending resolution note; None otherwise."""
        text = (incoming.text or "").strip()
        command = text.split()[0].split("@")[0].lower() if text.startswith("/") else ""
        button = incoming.button or ""
        if command == "/bind":
            return self._bind(incoming, text)
        staff = self.directory.find(incoming.channel, incoming.user_id)
        if staff is None:
            if command in STAFF_COMMANDS or button.startswith("t:"):
                log.warning("staff command refused for non-staff %s/%s", incoming.channel, incoming.user_id)
                return [Reply(texts.STAFF_ONLY, intent="command")]
            return None
        actor = Actor.of(staff)
        if command == "/help":
            return [Reply(staff_help(staff.role), intent="staff")]
        try:
            if command == "/tickets":
                return self._list(actor)
            if command == "/file":
                return self._file_note(state, text.partition(" ")[2].strip())
            if button.startswith("t:file:"):
                return self._file_confirmed(actor, state, button.removeprefix("t:file:"))
            if command == "/ticket":
                parts = text.split()
                return self._show(actor, parts[1]) if len(parts) > 1 else [Reply("用法：/ticket 工单号", intent="staff")]
            if button.startswith("t:"):
                return self._button(actor, state, button)
            pending = state.resolving
            if pending and text and not text.startswith("/"):
                return self._resolve(actor, state, pending, text)
        except (TransitionError, PermissionDenied, TicketNotFound) as exc:
            return [Reply(str(exc), intent="staff")]
        return None

    def _bind(self, incoming: Incoming, text: str) -> list[Reply]:
        parts = text.split()
        if len(parts) < 2:
            return [Reply("用法：/bind 邀请码", intent="staff")]
        try:
            staff = self.directory.bind(parts[1], incoming.channel, incoming.user_id, incoming.display_name)
        except BotError as exc:
            log.warning("failed /bind from %s/%s: %s", incoming.channel, incoming.user_id, exc)
            return [Reply(str(exc), intent="staff")]
        role = {"worker": "网格员", "supervisor": "社区负责人", "admin": "管理员"}[staff.role]
        return [Reply(f"绑定成功，您的身份是{role}。发送 /tickets 查看工单。", intent="staff")]

    def _file_note(self, state, note: str) -> list[Reply]:
        """/file <note>: what was understood, to confirm; a wrong reading is fixed by sending /file again."""
        if self.read_note is None:
            return [Reply("这里不能代居民登记，请在工作台“受理”页面登记。", intent="staff")]
        if not note:
            return [Reply("用法：/file 居民反映的情况，例如：/file 景村里3号楼2单元王阿姨来电，暖气不热，"
                          "电话13912345678，下午在家", intent="staff")]
        walk_in = self.read_note(note)
        if not walk_in.place:
            return [Reply("没有看出地点，请补上小区和楼号后重新发送 /file。", intent="staff")]
        key = state.keep_handoff(note[:1000], answered=False)
        lines = ["代居民登记，请核对：", f"问题：{walk_in.description}", f"类别：{walk_in.category}",
                 f"地点：{walk_in.place}" + ("" if walk_in.grid_id else "（未对应到网格，由社区负责人派单）"),
                 f"电话：{walk_in.phone or '未留'}", f"联系时间：{walk_in.contact_time or '未说'}",
                 f"受理方式：{SOURCE_LABELS[walk_in.source]}", "有误就改好后重新发送 /file。"]
        return [Reply("\n".join(lines), [Button("确认登记", f"t:file:{key}")], intent="staff")]

    def _file_confirmed(self, actor: Actor, state, key: str) -> list[Reply]:
        handoff = state.handoffs.pop(key, None)
        if handoff is None or self.read_note is None:
            return [Reply("这个按钮已经过期了，请重新发送 /file。", intent="staff")]
        walk_in = self.read_note(handoff.text)
        ticket, _ = self.store.file(ticket_draft(walk_in, actor.staff_id))
        self.directory.audit.record(actor.label, "ticket_file", ticket.id,
                                    f"{SOURCE_LABELS[walk_in.source]} {ticket.category}（聊天）")
        return [Reply(f"已登记工单 {ticket.id}（{ticket.category}），已按网格派单。居民收不到在线通知，"
                      "请把工单号告诉居民。", intent="staff", ticket_id=ticket.id)]

    def _list(self, actor: Actor) -> list[Reply]:
        tickets = self.store.visible_to(actor)
        if not tickets:
            return [Reply("目前没有待处理的工单。", intent="staff")]
        lines = ["待处理工单（按时限排序）："]
        for t in tickets[:30]:
            waiting = "（无人接，可发 /ticket 工单号 接单）" if can_take(actor, t) else ""
            lines.append(f"· {t.id} {t.category} {STATUS_LABELS.get(t.status, t.status)} 时限 {local(t.dispatch_due)}"
                         f"{waiting}")
        lines.append("发送 /ticket 工单号 查看详情。")
        return [Reply("\n".join(lines), intent="staff")]

    def _show(self, actor: Actor, ticket_id: str) -> list[Reply]:
        ticket = self.store.get(ticket_id.upper())
        if not can_view(actor, ticket):
            raise TicketNotFound(f"没有找到工单 {ticket_id}")  # do not reveal that it exists
        card = ticket_card(ticket, can_see_personal_data(actor, ticket))
        show = can_see_personal_data(actor, ticket)
        history = "\n".join(f"{local(e.at)} {e.action} {(e.note if show else mask(e.note))[:40]}"
                             for e in self.store.events(ticket.id)[-8:])
        if ticket.assignee_id == actor.staff_id:
            buttons = worker_buttons(ticket)
        elif can_take(actor, ticket):
            buttons = [Button("我来接这张工单", f"t:take:{ticket.id}")]
        else:
            buttons = []
        return [Reply(f"{card}\n状态：{STATUS_LABELS.get(ticket.status)}\n—— 记录 ——\n{history}", buttons, intent="staff",
                      ticket_id=ticket.id)]

    def _button(self, actor: Actor, state, payload: str) -> list[Reply]:
        _, action, ticket_id = (payload.split(":", 2) + ["", ""])[:3]
        ticket = self.store.get(ticket_id)
        if not can_view(actor, ticket):
            raise TicketNotFound(f"没有找到工单 {ticket_id}")
        if action == "take":
            self.store.take(ticket_id, actor)
            return [Reply(f"工单 {ticket_id} 已派给您。联系居民后请点“接单”。", [*worker_buttons(self.store.get(ticket_id))],
                          intent="staff", ticket_id=ticket_id)]
        if action == "accept":
            self.store.transition(ticket_id, "accept", actor, note="已联系居民")
            return [Reply(f"已接单 {ticket_id}。处理完成后请点“办结反馈”。", [*worker_buttons(self.store.get(ticket_id))],
                          intent="staff", ticket_id=ticket_id)]
        if action == "resolve":
            if ticket.status != "accepted":
                raise TransitionError("请先接单，再办结反馈。")
            state.resolving = ticket_id
            return [Reply(f"请用一句话说明工单 {ticket_id} 是怎么处理的（会发给居民）：", intent="staff", ticket_id=ticket_id)]
        if action == "handback":
            self.store.transition(ticket_id, "hand_back", actor, note="网格员退回")
            return [Reply(f"已退回 {ticket_id}，社区负责人会重新派单。", intent="staff", ticket_id=ticket_id)]
        return [Reply("这个按钮已经过期了。", intent="staff")]

    def _resolve(self, actor: Actor, state, ticket_id: str, note: str) -> list[Reply]:
        state.resolving = None
        self.store.transition(ticket_id, "resolve", actor, note=note[:1000])
        return [Reply(f"已办结反馈 {ticket_id}，已请居民确认评价。", intent="staff", ticket_id=ticket_id)]
