"""What flows between channel adapters and the core: Incoming in, Reply out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    label: str = ""


@dataclass(frozen=True)
class Incoming:
    """One thing a user did: typed text, pressed a button, sent a photo or a location."""

    channel: str  # telegram | wechat | web | console
    user_id: str
    text: str = ""
    button: str | None = None  # payload of a pressed button
    photos: tuple[str, ...] = ()  # channel file ids or URLs
    location: Location | None = None
    kind: str = "text"  # text | button | photo | location | sticker | voice | video | file | other
    document: tuple[str, str] | None = None  # (channel file id, file name) of a sent document, kind "file"
    display_name: str = ""


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Citation:
    title: str
    section: str
    date: str
    source: str

    def label(self) -> str:
        where = " · ".join(p for p in (self.title, self.section) if p)
        return f"《{where}》" + (f"（{self.date}）" if self.date else "")


@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    intent: str = ""
    ticket_id: str | None = None

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "buttons": [{"label": b.label, "payload": b.payload} for b in self.buttons],
            "citations": [
                {"title": c.title, "section": c.section, "date": c.date, "source": c.source} for c in self.citations
            ],
            "intent": self.intent,
            "ticket_id": self.ticket_id,
        }


_CHOICE = re.compile(r"(\d{1,2})[。．.、,，!！\s]*")


def button_chosen(buttons: dict[str, Button], said: str) -> Button | None:
    """The button a written reply picks from numbered choices: its number ("1", "1。") or its label; else None."""
    number = _CHOICE.fullmatch(said)
    if number:
        return buttons.get(str(int(number.group(1))))
    return next((b for b in buttons.values() if b.label == said), None)
