"""Render the core's Replies as Telegram messages: split long text, lay out inline keyboards.

Telegram counts a message's length in UTF-16 code units (4,096 at most), so an
emoji outside the BMP counts twice; the splitter measures the same way and cuts
at a paragraph, line, sentence or clause boundary, never inside a character or
its combining marks. Buttons go on the last part.

callback_data may hold 64 bytes. A longer payload is replaced by a short
digest ("~" + 22 characters) remembered in a bounded per-process table; a
digest that is no longer known (restart, another process, evicted) is passed to
the core unchanged, which answers it like any expired button.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
import unicodedata
from collections import OrderedDict
from typing import Protocol, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.messages import Button, Reply

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # telegram.constants.MessageLimit.MAX_TEXT_LENGTH, in UTF-16 code units
MAX_CALLBACK_BYTES = 64  # telegram.constants.InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
_DIGEST_PREFIX = "~"

# Boundaries in order of preference; a cut goes right after the match. A boundary is used only
# when it keeps a part at least this full, so one early blank line does not make a tiny part.
_MIN_FILL = 0.5
_BOUNDARIES = [
    re.compile(r"\n[ \t\u3000]*\n"),  # paragraph
    re.compile(r"\n"),  # line
    re.compile(r"[。！？!?…；;]+[”’」』）)】》\"']*|\.(?=\s)"),  # sentence ("3.5" and URLs are not sentence ends)
    re.compile(r"[，、,：:]"),  # clause
    re.compile(r"[ \t\u3000]"),  # word (mixed Chinese/English text)
]


def utf16_len(text: str) -> int:
    """Length of text as Telegram counts it."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split text into parts of at most `limit` UTF-16 units at the cleanest boundary available."""
    if limit < 2:
        raise ValueError("limit must leave room for a character outside the BMP")
    parts: list[str] = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        end = _fit(rest, limit)
        cut = _cut(rest, end)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _fit(text: str, limit: int) -> int:
    """Largest index such that text[:index] is at most `limit` UTF-16 units."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _cut(text: str, end: int) -> int:
    window = text[:end]
    floor = int(end * _MIN_FILL)
    for boundary in _BOUNDARIES:
        cuts = [m.end() for m in boundary.finditer(window) if m.end() > floor]
        if cuts and window[: cuts[-1]].strip():
            return cuts[-1]
    return _safe_hard_cut(text, end)


def _safe_hard_cut(text: str, end: int) -> int:
    """Step back from end so that a character keeps its marks, ZWJ sequences, modifiers and flag pairs."""
    cut = end
    while cut > 1 and (_clings_to_previous(text[cut]) or text[cut - 1] == "\u200d"
                       or (_regional(text[cut]) and _regional(text[cut - 1]))):
        cut -= 1
    return cut


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _clings_to_previous(ch: str) -> bool:
    code = ord(ch)
    return (unicodedata.combining(ch) != 0 or unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or ch == "\u200d" or 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF
            or 0xE0100 <= code <= 0xE01EF or 0xE0020 <= code <= 0xE007F)


def keyboard_rows(buttons: Sequence[Button]) -> list[list[Button]]:
    """Lay buttons out in balanced rows: three to a row when every label is short, else two."""
    if not buttons:
        return []
    per_row = 3 if max(len(b.label) for b in buttons) <= 5 else 2
    row_count = -(-len(buttons) // per_row)
    size, longer = divmod(len(buttons), row_count)
    rows, start = [], 0
    for index in range(row_count):
        end = start + size + (1 if index < longer else 0)
        rows.append(list(buttons[start:end]))
        start = end
    return rows


class PayloadStore(Protocol):
    """Long payloads by digest, shared by the replicas (storage/callback_payloads.SqlCallbackPayloads)."""

    def put(self, token: str, payload: str) -> None: ...

    def get(self, token: str) -> str | None: ...


class CallbackData:
    """Fit button payloads into Telegram's 64-byte callback_data and map them back.

    A long payload travels as a digest. With a store the digest is kept in the database too, so
    the press is understood by any replica and after a restart; without one, by this process only.
    encode and decode never touch the store (they run on the event loop): the channel calls save()
    before sending and recall() before decoding, in a worker thread.
    """

    REFRESH = 86400.0  # seconds after which a payload still in use is stored again (its age restarts)

    def __init__(self, capacity: int = 10_000, store: PayloadStore | None = None):
        self.capacity = capacity
        self.store = store
        self._long: OrderedDict[str, str] = OrderedDict()
        self._stored: dict[str, float] = {}  # token -> when this process last stored it
        self._unsaved: dict[str, str] = {}

    def encode(self, payload: str) -> str:
        if len(payload.encode("utf-8")) <= MAX_CALLBACK_BYTES and not payload.startswith(_DIGEST_PREFIX):
            return payload
        digest = base64.urlsafe_b64encode(hashlib.sha256(payload.encode("utf-8")).digest()[:16]).decode().rstrip("=")
        token = _DIGEST_PREFIX + digest
        self._remember(token, payload)
        if self.store is not None and time.monotonic() - self._stored.get(token, -self.REFRESH) >= self.REFRESH:
            self._unsaved[token] = payload
        return token

    def decode(self, data: str) -> str:
        return self._long.get(data, data)

    def save(self) -> None:
        """Store the long payloads encoded since the last call (a worker thread); a failure is logged, and the
        press is then understood by this process only."""
        pending, self._unsaved = self._unsaved, {}
        for token, payload in pending.items():
            try:
                self.store.put(token, payload)
                self._stored[token] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - the database away: the message still goes out
                log.warning("could not store a long button payload (%s)", type(exc).__name__)
        if len(self._stored) > self.capacity:
            self._stored.clear()

    def recall(self, data: str) -> None:
        """Bring a digest this process does not know from the store (a worker thread)."""
        if self.store is None or not data.startswith(_DIGEST_PREFIX) or data in self._long:
            return
        try:
            found = self.store.get(data)
        except Exception as exc:  # noqa: BLE001 - the press is then read as it came
            log.warning("could not read a long button payload (%s)", type(exc).__name__)
            return
        if found is not None:
            self._remember(data, found)

    def _remember(self, token: str, payload: str) -> None:
        self._long[token] = payload
        self._long.move_to_end(token)
        while len(self._long) > self.capacity:
            self._long.popitem(last=False)


def inline_keyboard(buttons: Sequence[Button], callbacks: CallbackData) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=callbacks.encode(b.payload)) for b in row]
                                 for row in keyboard_rows(buttons)])


def render(reply: Reply, callbacks: CallbackData,
           limit: int = MAX_TEXT) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The messages that show one Reply: its text in parts, the keyboard on the last part."""
    parts = split_text(reply.text, limit)
    if not parts:
        if not reply.buttons:
            return []
        parts = ["👇"]  # Telegram refuses an empty text, and the buttons need a message to sit on
    markup = inline_keyboard(reply.buttons, callbacks)
    return [(part, markup if index == len(parts) - 1 else None) for index, part in enumerate(parts)]
