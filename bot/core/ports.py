"""The small Protocols the core uses to reach the outside world.

Each has a real implementation elsewhere (retrieval, tickets) and an honest
in-memory fake in tests. The core imports nothing else from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Hit:
    """A passage of the knowledge base with what a citation needs."""

    source: str  # the ingested file's path as given to ingest
    title: str
    section: str
    date: str  # "" when the document has none
    text: str
    score: float  # relevance in 0..1; comparable across queries
    chunk_id: str = ""
    also: tuple[str, ...] = field(default_factory=tuple)  # other files that reprint this passage
    audience: str = "public"  # "staff": from a document for workers only


PUBLIC, STAFF = "public", "staff"  # who is asking: a resident, or a worker who may read staff-only documents


class Retriever(Protocol):
    def search(self, query: str, k: int | None = None, audience: str = PUBLIC) -> Sequence[Hit]:
        """Return the passages relevant to the query, best first; empty when nothing is relevant.

        A PUBLIC search never returns a passage of a staff-only document.
        """
        ...


@dataclass(frozen=True)
class PlaceMatch:
    """A place the resident named, matched to a building of the district when possible."""

    text: str  # what the resident wrote, normalised (e.g. 景村里3号楼2单元)
    building_id: str | None
    grid_id: str | None
    community: str = ""


@dataclass(frozen=True)
class CategoryMatch:
    name: str  # e.g. 供暖
    sla_class: str  # emergency | utility | general | complex
    confidence: float
    sharp: bool = False  # decided by a keyword the text names, not by resemblance alone


DESK_CHANNEL = "desk"  # the "channel" of a resident a worker filed for in person or by phone: no chat to notify


@dataclass
class TicketDraft:
    channel: str
    user_id: str
    description: str
    category: str = ""
    sla_class: str = "general"
    place: str = ""
    building_id: str | None = None
    grid_id: str | None = None
    community: str = ""  # known from the estate even when no grid covers the building
    phone: str = ""
    contact_time: str = ""
    photos: list[str] = field(default_factory=list)
    latitude: float | None = None
    longitude: float | None = None
    urgent: bool = False
    kind: str = "request"  # request | dispute | emergency
    source: str = "chat"  # chat | window | phone | visit: a worker files the last three for a resident
    filed_by: int | None = None  # that worker's staff id


@dataclass(frozen=True)
class TicketInfo:
    """What a resident may see of a ticket: no personal data beyond their own."""

    id: str
    status: str  # new | assigned | accepted | resolved | closed | cancelled | merged
    category: str
    summary: str
    place: str
    created_at: str
    status_label: str = ""
    resolution_note: str = ""
    linked: bool = False  # True when the report was linked to an open ticket instead of filed again


@dataclass(frozen=True)
class CommunityDuty:
    """今日我当班 as a resident may know it: the hall's hours and today's duty staff by name."""

    community: str  # its name
    hours: str
    office: str
    phone: str  # the hall's public number, never a worker's own
    on_duty: tuple[str, ...]  # names; empty when nobody is rostered today


class DutyBoard(Protocol):
    def today(self, text: str) -> list[CommunityDuty]:
        """The communities the message names (by name or by an address in them; all when none), for today."""
        ...


class Places(Protocol):
    def resolve(self, text: str) -> PlaceMatch | None: ...
    def resolve_location(self, latitude: float, longitude: float) -> PlaceMatch | None: ...


class Categorizer(Protocol):
    def classify(self, text: str) -> CategoryMatch: ...


class TicketDesk(Protocol):
    """The resident's side of the ticket system."""

    def file(self, draft: TicketDraft) -> TicketInfo:
        """File a ticket, or link to the same resident's open ticket on the same problem from the last day."""
        ...

    def tickets_of(self, channel: str, user_id: str) -> list[TicketInfo]: ...

    def rate(self, ticket_id: str, channel: str, user_id: str, stars: int, comment: str = "") -> TicketInfo: ...


class DialogueStore(Protocol):
    def load(self, channel: str, user_id: str): ...  # -> core.dialogue.DialogueState
    def save(self, state) -> None: ...


class IntentFeedback(Protocol):
    """Where a resident's own choice says what a message was for: labels a reviewer can add to the training examples."""

    def record(self, channel: str, text: str, label: str, how: str) -> None:
        """label: question | request; how: chose (answered the unsure buttons) or corrected (undid the bot's guess)."""
        ...


@dataclass(frozen=True)
class CuratedMatch:
    """The official answer an admin wrote to a question like the resident's."""

    id: int
    answer: str
    source: str  # what it rests on
    written_at: datetime
    similarity: float


class CuratedAnswers(Protocol):
    def match(self, question: str) -> CuratedMatch | None:
        """The curated answer to a question close enough to this one, counting the use; None otherwise."""
        ...


class AnswerLog(Protocol):
    """Every question with what it was answered, and the resident's 👍/👎 on it: what the district learns from."""

    def record(self, channel: str, user_id: str, question: str, sources: list[str]) -> int:
        """Log one question; sources: the documents cited ([] = not covered). Returns the entry's id."""
        ...

    def vote(self, entry_id: int, channel: str, user_id: str, vote: str, reason: str = "") -> bool:
        """vote: up | down; only the asker's vote counts. False when the entry is not theirs (or gone)."""
        ...


class Notifier(Protocol):
    """Deliver a message to someone who is not the sender of the current message (workers, residents)."""

    def notify(self, channel: str, user_id: str, reply) -> None:  # reply: core.messages.Reply
        ...


class MessageJournal(Protocol):
    """Keeps messages that could not be handled (the database was away) until they can be; survives restarts."""

    def keep(self, incoming) -> str:  # incoming: core.messages.Incoming; returns the entry's key
        ...

    def pending(self, channel: str | None = None, user_id: str | None = None) -> list:
        """(key, Incoming) pairs, oldest first, of one user or of everyone."""
        ...

    def has(self, channel: str, user_id: str) -> bool:
        """Whether this sender has anything kept, waiting or being handled."""
        ...

    def claim(self, key: str) -> bool:
        """Take an entry for handling; False when another process took it first."""
        ...

    def done(self, key: str) -> None: ...

    def release(self, key: str) -> None:
        """Give a claimed entry back (handling failed again); it keeps its place in the order."""
        ...

    def recover(self) -> int:
        """Give back entries claimed by processes that are gone; how many."""
        ...


class AnswerWriter(Protocol):
    """Writes the answer text from retrieved passages (e.g. a language model); None means: use the extractive one."""

    def write(self, question: str, hits: Sequence[Hit], extractive: str) -> str | None:
        """Return the answer text grounded in hits (citations are added by the core), or None to fall back."""
        ...

    def rewrite(self, follow_up: str, topic: str, previous_question: str) -> str | None:
        """Turn a follow-up ("那需要带什么材料?") into a standalone question, or None to keep the core's own."""
        ...


CLAIM_MINE, CLAIM_DONE, CLAIM_BUSY = "mine", "done", "busy"


class UpdateClaims(Protocol):
    """Which replica handles an update a channel may be sent more than once (storage/update_claims.py)."""

    def claim(self, key: str) -> str:
        """CLAIM_MINE: handle it now; CLAIM_DONE: handled already; CLAIM_BUSY: being handled elsewhere."""
        ...

    def finish(self, key: str) -> None: ...

    def renew(self, key: str) -> None:
        """Still being handled: the lease counts from now."""
        ...
