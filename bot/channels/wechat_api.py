"""The WeChat message API: the access token (cached, refreshed early) and text messages to one user.

Official accounts (公众号):
    GET  {api_base}/cgi-bin/token?grant_type=client_credential&appid=APPID&secret=SECRET
    POST {api_base}/cgi-bin/message/custom/send?access_token=TOKEN  {"touser", "msgtype": "text", "text"}
WeCom (企业微信) apps:
    GET  {api_base}/cgi-bin/gettoken?corpid=CORPID&corpsecret=SECRET
    POST {api_base}/cgi-bin/message/send?access_token=TOKEN  {"touser", "agentid", "msgtype": "text", "text"}

The token lives `expires_in` seconds (7200); it is refreshed `REFRESH_MARGIN` seconds
early, and once more when an answer says it is invalid or expired (another
process or the admin console may have fetched a new one, which retires ours).
Secrets travel in query strings, and httpx logs request URLs at INFO: a log
filter on httpx and on this channel's loggers replaces them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any, Callable, Protocol

import httpx

from bot.channels.wechat_errors import WeChatApiError, WeChatUnavailable
from bot.core.privacy import mask

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds before expiry at which a token is replaced
TOKEN_LEASE = 15.0  # seconds one replica may take to fetch the shared token before another may try
TOKEN_INVALID = {40001, 40014, 42001}  # invalid credential, invalid access_token, access_token expired
# Codes that will not change by sending the same message again soon: the user is gone, unreachable or
# outside the 48-hour window in which an official account may write first (45015), or sent too many (45047).
UNDELIVERABLE = {40003, 43004, 45015, 45047, 81013, 60111, 40031}
# A logger's filters see only the records of that very logger, not of its children: every one is named.
_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
            "bot.channels.wechat", "bot.channels.wechat_api", "bot.channels.outbox_delivery")
_SECRET_PARAMS = re.compile(r"((?:access_token|secret|corpsecret)=)[^&\s\"']+", re.IGNORECASE)


class SecretFilter(logging.Filter):
    """Replace secrets in query strings and known secret values; mask personal data."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        text = _SECRET_PARAMS.sub(r"\1<secret>", text)
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return mask(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


secret_filter = SecretFilter()


def install_secret_filter(*secrets: str) -> None:
    """Register secrets and attach the filter to httpx, httpcore and this channel's loggers (idempotent)."""
    secret_filter.secrets.update(s for s in secrets if s and len(s) >= 6)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if secret_filter not in logger.filters:
            logger.addFilter(secret_filter)


class SharedToken(Protocol):
    """Where replicas keep one access token, and who may fetch the next (storage/wechat_shared.SqlTokenStore)."""

    def read(self, app_id: str) -> tuple[str, float]: ...

    def lease(self, app_id: str, now: float, seconds: float, seen: str = "") -> bool: ...

    def put(self, app_id: str, token: str, refresh_at: float) -> None: ...

    def give_back(self, app_id: str) -> None: ...


class WeChatApi:
    """Send text messages through an official account's or a WeCom app's message API."""

    def __init__(self, kind: str, api_base: str, app_id: str, app_secret: str, http: httpx.AsyncClient,
                 agent_id: str = "", clock: Callable[[], float] = time.time, shared: SharedToken | None = None):
        self.kind = kind
        self.api_base = api_base.rstrip("/")
        self.app_id = app_id
        self.agent_id = agent_id
        self.http = http
        self.clock = clock
        self._secret = app_secret
        self._token = ""
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.shared = shared  # several replicas: one token for all (storage/wechat_shared.SqlTokenStore)
        install_secret_filter(app_secret)

    async def access_token(self, stale: str | None = None) -> str:
        """A valid access token; `stale` names one the API refused, which is replaced even if young."""
        async with self._lock:  # concurrent senders share one refresh
            if self._token and self._token != stale and self.clock() < self._refresh_at:
                return self._token
            if self.shared is None:
                return await self._fetch()
            return await self._shared_token(stale)

    async def _shared_token(self, stale: str | None) -> str:
        """The replicas' common token: take it if still good, else fetch the next one under the lease."""
        while True:  # ends: a lease not given back runs out after TOKEN_LEASE
            token, refresh_at = await asyncio.to_thread(self.shared.read, self.app_id)
            if token and token != stale and self.clock() < refresh_at:  # another replica fetched it
                secret_filter.secrets.add(token)
                self._token, self._refresh_at = token, refresh_at
                return token
            if await asyncio.to_thread(self.shared.lease, self.app_id, time.time(), TOKEN_LEASE, token):
                break
            await asyncio.sleep(0.2)
        try:
            token = await self._fetch()
        except BaseException:
            await asyncio.to_thread(self.shared.give_back, self.app_id)
            raise
        await asyncio.to_thread(self.shared.put, self.app_id, token, self._refresh_at)
        return token

    async def _fetch(self) -> str:
        if self.kind == "wecom":
            path, params = "/cgi-bin/gettoken", {"corpid": self.app_id, "corpsecret": self._secret}
        else:
            path, params = "/cgi-bin/token", {"grant_type": "client_credential", "appid": self.app_id,
                                              "secret": self._secret}
        data = await self._request("GET", path, params=params)
        token, lifetime = data.get("access_token"), data.get("expires_in", 7200)
        if not isinstance(token, str) or not token or not isinstance(lifetime, (int, float)):
            raise WeChatUnavailable("the token endpoint answered without access_token")
        secret_filter.secrets.add(token)
        margin = min(REFRESH_MARGIN, lifetime / 2)
        self._token, self._refresh_at = token, self.clock() + lifetime - margin
        log.info("wechat access token refreshed; valid for %ss", int(lifetime))
        return token

    async def send_text(self, user_id: str, text: str) -> None:
        """Send one text message to a user (openid, or WeCom userid)."""
        if self.kind == "wecom":
            path = "/cgi-bin/message/send"
            payload: dict[str, Any] = {"touser": user_id, "msgtype": "text", "text": {"content": text},
                                       "agentid": int(self.agent_id)}
        else:
            path = "/cgi-bin/message/custom/send"
            payload = {"touser": user_id, "msgtype": "text", "text": {"content": text}}
        token = await self.access_token()
        try:
            await self._request("POST", path, params={"access_token": token}, payload=payload)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_INVALID:
                raise
            log.info("wechat refused the access token (%s); refreshing it once", exc.errcode)
            token = await self.access_token(stale=token)
            await self._request("POST", path, params={"access_token": token}, payload=payload)

    async def _request(self, method: str, path: str, params: dict[str, str],
                       payload: dict[str, Any] | None = None) -> dict[str, Any]:
        # ensure_ascii=False: the message API shows \\uXXXX escapes literally instead of the Chinese text.
        content = json.dumps(payload, ensure_ascii=False).encode("utf-8") if payload is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8"} if content is not None else None
        try:
            response = await self.http.request(method, self.api_base + path, params=params, content=content,
                                               headers=headers)
        except httpx.HTTPError as exc:  # the exception's text may contain the URL, secrets included
            raise WeChatUnavailable(f"{path}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise WeChatUnavailable(f"{path}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise WeChatUnavailable(f"{path}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise WeChatUnavailable(f"{path}: the answer is not a JSON object")
        errcode = data.get("errcode", 0)
        if errcode not in (0, None):
            code = int(errcode) if isinstance(errcode, (int, str)) and str(errcode).lstrip("-").isdigit() else -1
            raise WeChatApiError(code, secret_filter.redact(str(data.get("errmsg", "")))[:200])
        return data
