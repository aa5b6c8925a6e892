"""Dialogue state: what the bot remembers about one user on one channel between messages.

Stored as JSON (storage/dialogue.py). Every field is typed here and (de)serialised
explicitly, so no module reaches into a free-form dict; states saved by earlier
versions (the report as a plain dict, extras under "data") still load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

KEPT_HANDOFFS = 5  # how many recent answers keep a working handoff button


@dataclass
class IntakeDraft:
    """An unfinished report (core.intake): what the worker will need, filled in as the resident talks."""

    kind: str = "request"  # request | dispute | emergency
    description: str = ""
    problems: list[str] = field(default_factory=list)  # two or more distinct problems named in one message
    category: str = ""
    sla_class: str = "general"
    place: str = ""
    building_id: str | None = None
    grid_id: str | None = None
    community: str = ""
    phone: str = ""
    no_phone: bool = False  # the resident declined to leave a number: the worker replies through the channel
    contact_time: str = ""
    photos: list[str] = field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    detail_asked: bool = False  # the building was asked for once after a place that named only the estate
    asking: str | None = None  # description | place | place_detail | phone | contact_time | confirm | change | None
    guessed: str = ""  # token of the 只是咨询 button when the bot, not the resident, chose to start a report
    filed: str = ""  # ticket id once filed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> "IntakeDraft | None":
        if not raw:
            return None
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        data["guessed"] = str(data.get("guessed") or "")
        data["filed"] = str(data.get("filed") or "")
        data["photos"] = list(data.get("photos") or [])
        data["problems"] = list(data.get("problems") or [])
        return cls(**data)

    def has_contact(self) -> bool:
        return bool(self.phone) or self.no_phone


@dataclass
class Handoff:
    """What an answer's 转给工作人员 button files: the resident's words, and whether they were answered."""

    text: str
    answered: bool

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "answered": self.answered}


@dataclass
class DialogueState:
    channel: str
    user_id: str
    topic: str = ""  # title of the document last answered from, for follow-ups like "那需要带什么材料?"
    topic_source: str = ""  # that document's source, so a follow-up is answered from it first
    last_question: str = ""
    pending_text: str = ""  # a message awaiting the user's choice (查政策 / 反映问题)
    intake: IntakeDraft | None = None  # an unfinished report (see core.intake)
    rating_ticket: str | None = None  # a resolved ticket waiting for the resident's rating
    resolving: str | None = None  # staff: the ticket whose resolution note the next message is
    seq: int = 0  # numbers each button that must name its own answer or report
    handoffs: dict[str, Handoff] = field(default_factory=dict)
    # who is talking, decided afresh for every message and never stored: a worker whose account is
    # deactivated is a resident again at their next message
    audience: str = "public"

    def next_key(self) -> str:
        self.seq += 1
        return str(self.seq)

    def keep_handoff(self, text: str, answered: bool) -> str:
        key = self.next_key()
        self.handoffs[key] = Handoff(text, answered)
        self.handoffs = dict(list(self.handoffs.items())[-KEPT_HANDOFFS:])
        return key

    def to_json(self) -> dict[str, Any]:
        return {"v": 2, "topic": self.topic, "topic_source": self.topic_source, "last_question": self.last_question,
                "pending_text": self.pending_text, "intake": self.intake.to_json() if self.intake else None,
                "rating_ticket": self.rating_ticket, "resolving": self.resolving, "seq": self.seq,
                "handoffs": {k: h.to_json() for k, h in self.handoffs.items()}}

    @classmethod
    def from_json(cls, channel: str, user_id: str, raw: dict[str, Any] | None) -> "DialogueState":
        raw = raw or {}
        legacy = raw.get("data") or {}  # version 1 kept these extras in a free-form dict
        handoffs = raw.get("handoffs", legacy.get("handoffs")) or {}
        return cls(
            channel, user_id,
            topic=raw.get("topic", ""),
            topic_source=raw.get("topic_source", ""),
            last_question=raw.get("last_question", legacy.get("last_question", "")),
            pending_text=raw.get("pending_text", ""),
            intake=IntakeDraft.from_json(raw.get("intake")),
            rating_ticket=raw.get("rating_ticket"),
            resolving=raw.get("resolving", legacy.get("resolving")),
            seq=int(raw.get("seq", legacy.get("seq", 0)) or 0),
            handoffs={str(k): Handoff(str(v.get("text", "")), bool(v.get("answered")))
                      for k, v in handoffs.items() if isinstance(v, dict)},
        )
