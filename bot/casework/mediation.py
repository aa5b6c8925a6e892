"""矛盾调处: mediation cases with their parties, sessions, agreement or failure, and the follow-up visit.

    受理 (accepted) ──first session──▶ 调解中 (mediating) ──agreement──▶ 达成协议 (agreed) ──回访──▶ done
                                                        └──failure───▶ 调解不成 (failed), with the guidance given

A case opens from a dispute ticket (its resident becomes the applicant) or from
the console. The follow-up visit is due `followup_days` after the agreement (the
sample mediation guide: 15) and the deadline watch reminds the case's worker
once. Parties are personal data: only the case's grid workers, the community's
supervisors and admins see them (bot/casework/register.can_see_grid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.casework.models import CaseParty, CaseSession, MediationCase
from bot.casework.register import can_see_grid
from bot.core.messages import Reply
from bot.core.ports import Notifier
from bot.errors import BotError
from bot.tickets.models import Staff, Ticket
from bot.tickets.organisation import Organisation
from bot.tickets.sla import utcnow
from bot.tickets.store import Actor

log = logging.getLogger(__name__)
STATUS_LABELS = {"accepted": "受理", "mediating": "调解中", "agreed": "达成协议", "failed": "调解不成"}
GUIDANCE = {"committee": "向街道人民调解委员会申请调解", "court": "依法向人民法院提起诉讼",
            "arbitration": "符合条件的，申请仲裁"}


class CaseError(BotError):
    """A step the case's state does not allow, or a missing field; the message is shown as is."""


class CaseNotFound(CaseError):
    """No such case, or one this person may not see (the same answer: its existence is not revealed)."""


@dataclass
class PartyEntry:
    role: str  # applicant | respondent
    name: str
    place: str = ""
    phone: str = ""


class MediationDesk:
    def __init__(self, sessions: sessionmaker[Session], org: Organisation, clock: Callable[[], datetime] = utcnow,
                 followup_days: int = 15, notifier: Notifier | None = None):
        self.sessions = sessions
        self.org = org
        self.clock = clock
        self.followup_days = followup_days
        self.notifier = notifier

    # -- opening -----------------------------------------------------------------------------------
    def open(self, actor: Actor, summary: str, grid_id: str | None, community_id: str | None,
             parties: list[PartyEntry], ticket_id: str | None = None) -> int:
        summary = " ".join(summary.split())
        if not summary:
            raise CaseError("请写明纠纷的情况。")
        if community_id is None and grid_id in self.org.grids:
            community_id = self.org.grids[grid_id].community_id
        if actor.kind != "system" and not can_see_grid(actor, grid_id, community_id):
            raise CaseError("只能受理本网格（社区）的纠纷。")
        if not any(p.role == "applicant" and p.name.strip() for p in parties):
            raise CaseError("请写明申请人。")
        with self.sessions.begin() as s:
            case = MediationCase(community_id=community_id, grid_id=grid_id, ticket_id=ticket_id,
                                 summary=summary[:2000], status="accepted", opened_by=actor.staff_id,
                                 worker_id=actor.staff_id if actor.role == "worker" else None,
                                 opened_at=self.clock())
            s.add(case)
            s.flush()
            for p in parties:
                if p.name.strip():
                    s.add(CaseParty(case_id=case.id, role=p.role, name=p.name.strip()[:64], place=p.place[:200],
                                    phone=p.phone[:32]))
            case_id = case.id
        log.info("mediation case %s opened by staff %s", case_id, actor.staff_id)
        return case_id

    def open_from_ticket(self, actor: Actor, ticket: Ticket, respondent: PartyEntry | None = None) -> int:
        """A dispute ticket becomes a case: its resident the applicant (with the place and phone they gave)."""
        parties = [PartyEntry("applicant", "反映人（工单居民）", ticket.place, ticket.phone)]
        if respondent is not None:
            parties.append(respondent)
        return self.open(actor, ticket.description, ticket.grid_id, ticket.community_id, parties, ticket.id)

    def on_ticket(self, ticket_id: str, action: str, actor: Actor, store=None) -> None:
        """A ticket listener: a dispute a resident reports opens a case at once (the ticket stays for its deadlines)."""
        if action != "filed" or store is None:
            return
        ticket = store.get(ticket_id)
        if ticket.kind != "dispute" or self.case_of_ticket(ticket_id) is not None:
            return
        self.open_from_ticket(Actor("system"), ticket)

    def case_of_ticket(self, ticket_id: str) -> int | None:
        with self.sessions() as s:
            return s.scalars(select(MediationCase.id).where(MediationCase.ticket_id == ticket_id)).first()

    # -- reading -----------------------------------------------------------------------------------
    def get(self, actor: Actor, case_id: int) -> tuple[MediationCase, list[CaseParty], list[CaseSession]]:
        with self.sessions() as s:
            case = s.get(MediationCase, case_id)
            if case is None or not can_see_grid(actor, case.grid_id, case.community_id):
                raise CaseNotFound(f"没有找到调解案件 {case_id}。")
            parties = list(s.scalars(select(CaseParty).where(CaseParty.case_id == case_id).order_by(CaseParty.id)))
            sessions = list(s.scalars(select(CaseSession).where(CaseSession.case_id == case_id)
                                      .order_by(CaseSession.held_at)))
            for row in (case, *parties, *sessions):
                s.expunge(row)
        return case, parties, sessions

    def cases(self, actor: Actor, status: str = "") -> list[MediationCase]:
        with self.sessions() as s:
            query = select(MediationCase)
            if actor.role == "worker":
                query = query.where(MediationCase.grid_id.in_(actor.grids or ("",)))
            elif actor.role == "supervisor":
                query = query.where(MediationCase.community_id == (actor.community or ""))
            elif actor.role != "admin":
                return []
            if status:
                query = query.where(MediationCase.status == status)
            rows = list(s.scalars(query.order_by(MediationCase.opened_at.desc()).limit(500)))
            for row in rows:
                s.expunge(row)
        return rows

    # -- steps -------------------------------------------------------------------------------------
    def add_session(self, actor: Actor, case_id: int, held_at: datetime, location: str, attendees: str,
                    notes: str) -> None:
        case, _, _ = self.get(actor, case_id)
        if case.status in ("agreed", "failed"):
            raise CaseError("案件已经结案，不能再记录调解。")
        if not notes.strip():
            raise CaseError("请写下这次调解的经过。")
        with self.sessions.begin() as s:
            s.add(CaseSession(case_id=case_id, held_at=held_at, location=location[:200], attendees=attendees[:500],
                              notes=notes[:4000], recorded_by=actor.staff_id))
            s.execute(update(MediationCase).where(MediationCase.id == case_id, MediationCase.status == "accepted")
                      .values(status="mediating"))
            if actor.role == "worker":  # a case opened from a resident's report is the first mediating worker's
                s.execute(update(MediationCase).where(MediationCase.id == case_id, MediationCase.worker_id.is_(None))
                          .values(worker_id=actor.staff_id))

    def agree(self, actor: Actor, case_id: int, terms: str) -> datetime:
        """The parties agreed: the terms recorded, the follow-up visit scheduled; its due time."""
        terms = terms.strip()
        if not terms:
            raise CaseError("请写明协议内容。")
        now = self.clock()
        due = now + timedelta(days=self.followup_days)
        self._close(actor, case_id, dict(status="agreed", agreement=terms[:4000], agreed_at=now, closed_at=now,
                                         followup_due=due))
        return due

    def fail(self, actor: Actor, case_id: int, reason: str, guidance: str) -> None:
        if not reason.strip():
            raise CaseError("请写明调解不成的原因。")
        if guidance not in GUIDANCE:
            raise CaseError("请选择告知当事人的途径：人民调解委员会、诉讼或仲裁。")
        self._close(actor, case_id, dict(status="failed", failure_reason=reason.strip()[:2000], guidance=guidance,
                                         closed_at=self.clock()))

    def _close(self, actor: Actor, case_id: int, values: dict) -> None:
        self.get(actor, case_id)  # visible to this person, or CaseNotFound
        with self.sessions.begin() as s:
            done = s.execute(update(MediationCase).where(
                MediationCase.id == case_id, MediationCase.status.in_(("accepted", "mediating"))).values(values))
            if done.rowcount != 1:
                raise CaseError("案件已经结案。")

    def record_followup(self, actor: Actor, case_id: int, outcome: str) -> None:
        if not outcome.strip():
            raise CaseError("请写下回访的情况（协议是否履行、双方关系如何）。")
        case, _, _ = self.get(actor, case_id)
        if case.status != "agreed":
            raise CaseError("达成协议的案件才需要回访。")
        with self.sessions.begin() as s:
            s.execute(update(MediationCase).where(MediationCase.id == case_id)
                      .values(followup_done_at=self.clock(), followup_outcome=outcome.strip()[:2000]))

    # -- the deadline watch and the statistics -----------------------------------------------------
    def remind_followups(self, now: datetime) -> int:
        """Remind the case's worker (or the community's supervisors) of a follow-up visit due, once."""
        with self.sessions() as s:
            due = list(s.scalars(select(MediationCase.id).where(
                MediationCase.status == "agreed", MediationCase.followup_done_at.is_(None),
                MediationCase.followup_reminded_at.is_(None), MediationCase.followup_due <= now)))
        reminded = 0
        for case_id in due:
            with self.sessions.begin() as s:
                claimed = s.execute(update(MediationCase).where(
                    MediationCase.id == case_id, MediationCase.followup_reminded_at.is_(None))
                    .values(followup_reminded_at=now)).rowcount
            if claimed == 1:
                reminded += 1
                self._tell(case_id)
        return reminded

    def _tell(self, case_id: int) -> None:
        if self.notifier is None:
            return
        with self.sessions() as s:
            case = s.get(MediationCase, case_id)
            # the case's worker; else the workers of its grid; else the community's supervisors
            people = [p for p in ([s.get(Staff, case.worker_id)] if case.worker_id else []) if p is not None and p.active]
            people = people or [w for w in s.scalars(select(Staff).where(Staff.role == "worker", Staff.active.is_(True)))
                                if case.grid_id and case.grid_id in (w.grids or [])]
            people = people or list(s.scalars(select(Staff).where(
                Staff.role == "supervisor", Staff.community == case.community_id, Staff.active.is_(True))))
            targets = [(p.channel, p.user_id) for p in people]
        text = f"回访提醒：调解案件 #{case_id} 达成协议已满 {self.followup_days} 天，请回访双方、了解协议履行情况，并在工作台记录。"
        for channel, user_id in targets:
            self.notifier.notify(channel, user_id, Reply(text, intent="staff"))

    def success_rate(self, community_id: str | None = None) -> tuple[int, int]:
        """(agreed, closed): 调解成功率 is agreed / closed (agreed or failed)."""
        with self.sessions() as s:
            query = select(MediationCase.status, func.count()).where(MediationCase.status.in_(("agreed", "failed")))
            if community_id is not None:
                query = query.where(MediationCase.community_id == community_id)
            counts = dict(s.execute(query.group_by(MediationCase.status)).all())
        return counts.get("agreed", 0), counts.get("agreed", 0) + counts.get("failed", 0)

    def erase_before(self, cutoff: datetime) -> int:
        """Parties' names, places and phones of cases closed before the cutoff; the case's facts stay."""
        with self.sessions.begin() as s:
            old = list(s.scalars(select(MediationCase.id).where(MediationCase.erased.is_(False),
                                                                 MediationCase.closed_at <= cutoff)))
            if not old:
                return 0
            s.execute(update(CaseParty).where(CaseParty.case_id.in_(old)).values(name="（已删除）", place="", phone=""))
            s.execute(update(MediationCase).where(MediationCase.id.in_(old)).values(erased=True))
        return len(old)
