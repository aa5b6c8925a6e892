"""The WeChat channel's exceptions, and the HTTP status a callback refused with one answers::

    BotError
    └── WeChatError
        ├── SignatureError       unsigned, bad signature, stale timestamp   -> 403
        ├── DecryptError         ciphertext not ours or malformed           -> 400
        ├── XmlError             malformed XML, DTD or entities             -> 400
        ├── BodyTooLarge                                                    -> 413
        └── WeChatApiError       the message API's errcode (errcode, errmsg)
            └── WeChatUnavailable    network, HTTP status, or not JSON (errcode -1)

Library errors are translated with ``raise … from``; httpx errors ``from None``,
because their text carries the request URL and with it the secret.
"""

from __future__ import annotations

from bot.errors import BotError


class WeChatError(BotError):
    """Something about a WeChat callback or API call; the message never holds a secret."""


class SignatureError(WeChatError):
    """A callback is unsigned, signed with another token, or too old (answered 403)."""


class DecryptError(WeChatError):
    """An encrypted payload does not decrypt to a well-formed message for our app (answered 400)."""


class XmlError(WeChatError):
    """A body is not the small, DTD-free XML document WeChat sends (answered 400)."""


class BodyTooLarge(WeChatError):
    """A body is larger than any WeChat callback (answered 413)."""


class WeChatApiError(WeChatError):
    """The message API answered an error code (errcode, errmsg) or could not be reached."""

    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(WeChatApiError):
    """The message API could not be reached or answered nonsense; trying again later may help."""

    def __init__(self, what: str):
        super().__init__(-1, what)
