"""SQLAlchemy models of the visit register and of mediation cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.db import Base


class RegisterPerson(Base):
    """Someone a worker visits: the register of residents who need care (独居, 高龄, 残疾, 低保, 困境儿童 …)."""

    __tablename__ = "register_person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    community_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    building_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    place: Mapped[str] = mapped_column(String(200), default="")  # personal: the exact address
    name: Mapped[str] = mapped_column(String(64), default="")  # personal
    age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    needs: Mapped[list] = mapped_column(JSON, default=list)
    last_visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_visit_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erased: Mapped[bool] = mapped_column(Boolean, default=False)


class Visit(Base):
    """One household visit (入户走访) as the worker noted it, with what was read from the note and done."""

    __tablename__ = "visit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    community_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")  # personal: erased with the retention period
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    person_ids: Mapped[list] = mapped_column(JSON, default=list)
    needs: Mapped[list] = mapped_column(JSON, default=list)
    ticket_ids: Mapped[list] = mapped_column(JSON, default=list)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)


class MediationCase(Base):
    """A dispute being mediated: 受理 → 调解中 → 达成协议 / 调解不成, then a follow-up visit (回访)."""

    __tablename__ = "mediation_case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="accepted", index=True)  # accepted|mediating|agreed|failed
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    opened_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    agreement: Mapped[str] = mapped_column(Text, default="")
    agreed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    guidance: Mapped[str] = mapped_column(String(32), default="")  # 人民调解委员会 | 诉讼 | 仲裁
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    followup_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    followup_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    followup_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    followup_outcome: Mapped[str] = mapped_column(Text, default="")
    erased: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseParty(Base):
    __tablename__ = "case_party"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_case.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # applicant | respondent
    name: Mapped[str] = mapped_column(String(64), default="")  # personal
    place: Mapped[str] = mapped_column(String(200), default="")  # personal
    phone: Mapped[str] = mapped_column(String(32), default="")  # personal


class CaseSession(Base):
    __tablename__ = "case_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_case.id"), index=True)
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location: Mapped[str] = mapped_column(String(200), default="")
    attendees: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
