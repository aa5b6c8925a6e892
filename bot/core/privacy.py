"""Find and mask residents' personal data (phone numbers, ID numbers) in text and log lines."""

from __future__ import annotations

import logging
import re

# Chinese mainland mobile numbers, landlines with area code, and 18-digit resident ID numbers.
_ID = re.compile(r"(?<!\d)(\d{6})(\d{8})(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{3,4})[- ]?(\d{4})(?!\d)")


_LOGIN_LINK = re.compile(r"(/console/login/)[A-Za-z0-9_\-]+")
# a number said in words, digit by digit ("一三八一二三四五六七八"; 幺 is how 1 is read out)
_SPOKEN_DIGITS = re.compile(r"[零〇幺一二三四五六七八九0-9]{7,}")
_DIGIT_OF = str.maketrans("零〇幺一二三四五六七八九", "001123456789")


def _spoken(text: str) -> str:
    return _SPOKEN_DIGITS.sub(lambda m: m.group(0).translate(_DIGIT_OF), text)


def mask(text: str) -> str:
    """Replace phone and ID numbers with masked forms that keep only a few digits; hide login links."""
    if not text:
        return text
    text = _spoken(_LOGIN_LINK.sub(r"\1***", text))
    text = _ID.sub(lambda m: m.group(1)[:3] + "*" * 11 + m.group(3)[-1:], text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****-{m.group(3)}", text)
    return text


def find_phone(text: str) -> str | None:
    """Return the first mobile or landline number in text, digits only (landline with dash)."""
    text = _spoken(text)
    m = _MOBILE.search(text)
    if m:
        return "".join(m.groups())
    m = _LANDLINE.search(text)
    if m:
        return f"{m.group(1)}-{m.group(2)}{m.group(3)}"
    return None


def contains_personal_data(text: str) -> bool:
    text = _spoken(text)
    return bool(_ID.search(text) or _MOBILE.search(text) or _LANDLINE.search(text))


class MaskingFilter(logging.Filter):
    """Mask personal data in every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # tracebacks quote the values being processed: mask them as well
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_masking() -> None:
    """Attach the masking filter to every handler of the root logger."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
