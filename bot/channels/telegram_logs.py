"""Keep secrets and personal data out of the logs of python-telegram-bot, httpx and this channel.

httpx logs every request URL at INFO and the Bot logs its base URL at DEBUG; both
contain the bot token. One filter, attached to those loggers, replaces every
registered secret and masks phone and ID numbers (exception text included).
"""

from __future__ import annotations

import logging
import traceback

from bot.core.privacy import mask

_LIBRARIES = ("telegram", "httpx", "httpcore")


class Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def hide(self, *secrets: str) -> None:
        """Register secrets (bot tokens, webhook secrets) to replace in every record."""
        self._secrets.update(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return mask(text)

    def install(self, *extra_loggers: str) -> None:
        """Attach to the library loggers that exist now (python-telegram-bot creates its own at import)."""
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in _LIBRARIES]
        for name in names + list(extra_loggers):
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business, not ours
            return True
        if record.exc_info:  # handlers would format the traceback later, unredacted
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = self.redact(message), None
        return True


redactor = Redactor()
