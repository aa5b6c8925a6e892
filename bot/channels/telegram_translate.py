"""Translate Telegram updates into the core's Incoming; no decisions, only what the user did."""

from __future__ import annotations

from typing import Callable

from telegram import Message, Update

from bot.core.messages import Incoming, Location

CHANNEL = "telegram"


def incoming_from_update(update: Update, decode_button: Callable[[str], str] = lambda data: data) -> Incoming | None:
    """The Incoming for a message or a button press from a person; None for anything else."""
    user = update.effective_user
    if user is None or user.is_bot:
        return None
    who = dict(channel=CHANNEL, user_id=str(user.id), display_name=user.full_name)
    query = update.callback_query
    if query is not None:
        if query.data is None:  # a game button; we never send those
            return None
        return Incoming(**who, button=decode_button(query.data), kind="button")
    if update.message is None:
        return None
    return Incoming(**who, **_content(update.message))


def _content(message: Message) -> dict:
    """The kind of a message and what the core needs of it."""
    caption = message.caption or ""
    if message.text is not None:
        return dict(text=message.text, kind="text")  # commands too: "/report 3号楼漏水"
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return dict(text=caption, photos=(largest.file_id,), kind="photo")
    if message.location is not None:
        venue = message.venue
        label = " ".join(p for p in (venue.title, venue.address) if p) if venue else ""
        return dict(location=Location(message.location.latitude, message.location.longitude, label), kind="location")
    if message.contact is not None:
        return dict(text=message.contact.phone_number, kind="text")  # a shared contact card is a typed number
    if message.sticker is not None:
        return dict(kind="sticker")
    if message.voice is not None:
        return dict(kind="voice")
    if message.video is not None or message.video_note is not None:
        return dict(kind="video")
    if message.animation is not None or message.audio is not None:  # an animation also carries a document
        return dict(kind="other")
    if message.document is not None:
        return dict(text=caption, kind="file",
                    document=(message.document.file_id, message.document.file_name or ""))
    return dict(kind="other")  # polls, dice, games, stories …
