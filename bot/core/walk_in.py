"""受理 on a resident's behalf: a worker's free-text note of a walk-in, phone or visit report, read into fields.

"景村里3号楼2单元王阿姨来电，暖气不热，电话139…，下午在家" is read by the same
extraction the chat intake uses (place → building and grid, phone, contact
time, category); the worker checks what was understood, corrects it and files.
The resident has no chat with the bot, so the ticket's channel is DESK_CHANNEL
and nothing is sent to them: the worker tells them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from bot.core.dialogue import IntakeDraft
from bot.core.ports import DESK_CHANNEL, TicketDraft
from bot.core.privacy import find_phone

SOURCES = ("window", "phone", "visit")  # 窗口, 电话, 走访; "chat" is the resident's own message
_SOURCE_WORDS = [("phone", re.compile(r"来电|打电话|打来电话|致电|电话(反映|说|里说|求助|投诉)|热线转")),
                 ("visit", re.compile(r"走访|入户|上门(时|的时候|看望)|巡查时")),
                 ("window", re.compile(r"来访|来社区|到社区|窗口|大厅|来办事"))]
# the number and the words that announce it: the number goes to the phone field, not the description
_PHONE_PHRASE = re.compile(r"[，,；;\s]*(联系)?(电话|手机号?|手机号码|号码)?[:：是为]?\s*"
                           r"((\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}[- ]?\d{3,4}[- ]?\d{4})(?!\d)")


@dataclass
class WalkIn:
    """What a note says, as the 受理 form shows it for the worker to check."""

    note: str
    description: str
    category: str
    sla_class: str
    place: str
    building_id: str | None
    grid_id: str | None
    community: str
    phone: str
    contact_time: str
    source: str


def guess_source(note: str) -> str:
    """How the report came in, from the note's words ("来电" → phone); the window by default."""
    return next((source for source, words in _SOURCE_WORDS if words.search(note)), "window")


def without_phone(note: str) -> str:
    """The note without the phone number (it has its own field, shown only to those who need it)."""
    return _PHONE_PHRASE.sub("", note).strip(" ，,；;")


def read_note(intake, note: str) -> WalkIn:
    """intake: core.intake.Intake, whose extraction reads the note as it reads a resident's first message."""
    note = " ".join(note.split())[:1000]
    draft = IntakeDraft()
    intake.absorb(draft, note)
    description = without_phone(note) or note
    category = intake.categorizer.classify(description)
    return WalkIn(note, description, category.name, category.sla_class, draft.place, draft.building_id,
                  draft.grid_id, draft.community, draft.phone or find_phone(note) or "", draft.contact_time,
                  guess_source(note))


def ticket_draft(walk_in: WalkIn, filed_by: int) -> TicketDraft:
    """The ticket of a walk-in: its own resident key (walk-ins are never linked as one resident's repeats)."""
    return TicketDraft(channel=DESK_CHANNEL, user_id=f"{walk_in.source}-{uuid.uuid4().hex[:12]}",
                       description=walk_in.description[:2000], category=walk_in.category or "其他",
                       sla_class=walk_in.sla_class, place=walk_in.place, building_id=walk_in.building_id,
                       grid_id=walk_in.grid_id, community=walk_in.community, phone=walk_in.phone,
                       contact_time=walk_in.contact_time, source=walk_in.source, filed_by=filed_by)
