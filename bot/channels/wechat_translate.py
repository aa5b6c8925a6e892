"""Translate WeChat messages into the core's Incoming, and the core's Replies into WeChat text.

WeChat text has no buttons, so buttons are written as numbered lines::

    回复数字即可选择：
    【1】确认提交
    【2】修改

and the numbers of the last buttons each user was shown are remembered: a reply
that is just such a number ("1", "１", "1。") or exactly a label ("确认提交") is
a button press. A label that starts with a number keeps it as its key (the
rating buttons "5分" … "1分" are 5 … 1, so "5" means five stars whichever way
the core reads it); the others take the smallest free numbers. Each new batch
of replies replaces the user's buttons, so only the latest choice is pressable,
as with Telegram's inline keyboards.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import OrderedDict
from typing import Callable, Sequence

from bot.core.messages import Button, Incoming, Location, Reply, button_chosen

CHANNEL = "wechat"
MAX_PART_BYTES = 2000  # WeChat cuts text messages at 2048 bytes (WeCom documents it; official accounts do it)
MAX_USER_ID = 128
CHOOSE_HEADER = "回复数字即可选择："
_LEADING_NUMBER = re.compile(r"\s*(\d{1,2})(?!\d)")
_UNSUPPORTED = {"voice": "voice", "video": "video", "shortvideo": "video", "file": "file", "link": "other"}


class ButtonMemory:
    """The numbered buttons last shown to each user, in memory (bounded, expiring).

    Several processes behind one callback URL would each remember only what they
    sent; a press answered by another process reaches the core as the plain
    number. Keeping this in the database (the dialogue state) would fix that.
    """

    def __init__(self, ttl: float = 6 * 3600, max_users: int = 20000, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_users, self.clock = ttl, max_users, clock
        self._by_user: OrderedDict[str, tuple[float, dict[str, Button]]] = OrderedDict()

    def remember(self, user_id: str, numbered: Sequence[tuple[str, Button]]) -> None:
        self._by_user.pop(user_id, None)
        if numbered:
            self._by_user[user_id] = (self.clock() + self.ttl, dict(numbered))
            while len(self._by_user) > self.max_users:
                self._by_user.popitem(last=False)

    def press(self, user_id: str, text: str) -> Button | None:
        """The button a reply chooses, or None when it is not a choice."""
        entry = self._by_user.get(user_id)
        if entry is None:
            return None
        expires, buttons = entry
        if self.clock() > expires:
            del self._by_user[user_id]
            return None
        return button_chosen(buttons, unicodedata.normalize("NFKC", text).strip())


def number_buttons(buttons: Sequence[Button]) -> list[tuple[str, Button]]:
    """Give each button the number a resident replies with (see the module docstring)."""
    keys: list[str | None] = [None] * len(buttons)
    used: set[str] = set()
    for i, button in enumerate(buttons):
        m = _LEADING_NUMBER.match(unicodedata.normalize("NFKC", button.label))
        if m and int(m.group(1)) > 0 and str(int(m.group(1))) not in used:
            keys[i] = str(int(m.group(1)))
            used.add(keys[i])
    n = 1
    for i in range(len(buttons)):
        if keys[i] is None:
            while str(n) in used:
                n += 1
            keys[i] = str(n)
            used.add(keys[i])
    return [(key, button) for key, button in zip(keys, buttons)]  # type: ignore[misc]


def render(replies: Sequence[Reply]) -> tuple[list[str], list[tuple[str, Button]]]:
    """The text parts (each at most MAX_PART_BYTES of UTF-8) of a batch of replies, and its numbered buttons."""
    texts = [r.text.strip() for r in replies if r.text.strip()]
    buttons = next((r.buttons for r in reversed(replies) if r.buttons), [])
    numbered = number_buttons(buttons)
    if numbered:
        texts.append("\n".join([CHOOSE_HEADER] + [f"【{key}】{b.label}" for key, b in numbered]))
    return split_utf8("\n\n".join(texts), MAX_PART_BYTES), numbered


def split_utf8(text: str, limit: int) -> list[str]:
    """Split text into parts of at most `limit` UTF-8 bytes, at a paragraph or line end where one is near."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest.encode("utf-8")) > limit:
        end = len(rest.encode("utf-8")[:limit].decode("utf-8", "ignore"))  # characters that fit
        cut = rest.rfind("\n\n", 0, end)
        if cut < end // 2:
            cut = rest.rfind("\n", 0, end)
        if cut < end // 2:  # no line end in the second half: cut after a sentence, else anywhere
            cut = max(rest.rfind(p, 0, end) + 1 for p in "。！？；")
        if cut < max(end // 2, 1):
            cut = end
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def incoming_from(fields: dict[str, str], buttons: ButtonMemory) -> Incoming | None:
    """The Incoming for a message or a menu click; None for events that are no act of the user's."""
    user_id = fields.get("FromUserName", "")
    if not user_id or len(user_id) > MAX_USER_ID or any(unicodedata.category(c)[0] in "CZ" for c in user_id):
        raise ValueError("FromUserName is missing or malformed")
    kind = fields.get("MsgType", "").lower()
    who = {"channel": CHANNEL, "user_id": user_id}
    if kind == "text":
        text = _clean(fields.get("Content", ""))
        pressed = buttons.press(user_id, text)
        if pressed is not None:
            return Incoming(**who, button=pressed.payload, kind="button")
        return Incoming(**who, text=text, kind="text")
    if kind == "image":
        picture = fields.get("PicUrl") or fields.get("MediaId") or ""
        return Incoming(**who, photos=(picture,) if picture else (), kind="photo")
    if kind == "location":
        latitude, longitude = float(fields["Location_X"]), float(fields["Location_Y"])
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("location out of range")
        return Incoming(**who, location=Location(latitude, longitude, _clean(fields.get("Label", ""))),
                        kind="location")
    if kind == "voice" and fields.get("Recognition", "").strip():  # WeChat's own speech recognition, when on
        return Incoming(**who, text=_clean(fields["Recognition"]), kind="text")
    if kind == "event":
        event = fields.get("Event", "").lower()
        if event == "subscribe":
            return Incoming(**who, text="/start", kind="text")
        if event == "click" and fields.get("EventKey"):
            return Incoming(**who, button=fields["EventKey"], kind="button")
        return None  # unsubscribe, automatic LOCATION reports, VIEW, enter_agent …: nothing to answer
    return Incoming(**who, kind=_UNSUPPORTED.get(kind, "other"))


def dedup_key(fields: dict[str, str]) -> str | None:
    """What identifies a message across WeChat's retries: MsgId, or sender + CreateTime for events."""
    if fields.get("MsgId"):
        return "id:" + fields["MsgId"]
    if fields.get("FromUserName") and fields.get("CreateTime"):
        return f"at:{fields['FromUserName']}:{fields['CreateTime']}"
    return None


def _clean(text: str) -> str:
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
