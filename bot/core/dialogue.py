"""Dialogue state: what the bot remembers about one user on one channel between messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DialogueState:
    channel: str
    user_id: str
    topic: str = ""  # the last question answered, for follow-ups like "那需要带什么材料?"
    pending_text: str = ""  # a message awaiting the user's choice (查政策 / 反映问题)
    intake: dict[str, Any] | None = None  # an unfinished report (see core.intake)
    rating_ticket: str | None = None  # a resolved ticket waiting for the resident's rating
    data: dict[str, Any] = field(default_factory=dict)  # small extras (e.g. last ticket id)

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "pending_text": self.pending_text, "intake": self.intake,
                "rating_ticket": self.rating_ticket, "data": self.data}

    @classmethod
    def from_json(cls, channel: str, user_id: str, raw: dict[str, Any] | None) -> "DialogueState":
        raw = raw or {}
        return cls(channel, user_id, raw.get("topic", ""), raw.get("pending_text", ""), raw.get("intake"),
                   raw.get("rating_ticket"), raw.get("data") or {})
