"""The WeChat channel: Official Account (公众号) and WeCom (企业微信) app callbacks into the same core.

One route, ``/wechat``, mounted in the web server::

    channel = WeChatChannel(conversation, settings.wechat, token=os.environ[...], aes_key=os.environ.get(...),
                            app_secret=os.environ[...], outbox=outbox)
    create_web_app(..., extra_routes=[channel.router])
    await channel.start()   # the outbox delivery loop
    ...
    await channel.stop()    # stops it, lets late answers finish sending, closes the HTTP client

GET verifies the callback URL (official: signature over token/timestamp/nonce,
echostr echoed; WeCom: msg_signature also over the encrypted echostr, which is
answered decrypted). POST carries a message: plain (official accounts without
an EncodingAESKey: signature on the query) or encrypted (encrypt_type=aes, and
always on WeCom: msg_signature over token/timestamp/nonce/Encrypt); encrypted
messages are answered encrypted, with a fresh timestamp and nonce.

Refused: unsigned or wrongly signed requests, and timestamps more than
REPLAY_WINDOW seconds from our clock (403): WeChat sends a message and its
retries within ~15 s, so five minutes allows for clock skew while a captured
request cannot be replayed later, and inside the window a replay meets its
MsgId in the turn cache (kept longer) and runs nothing. Malformed or DTD-carrying
XML and undecryptable payloads answer 400, bodies over 64 KB 413; never 500.

WeChat waits 5 s, then retries (three times). The answer is returned passively
when the core is done within ``reply_within_seconds``; otherwise "success" is
answered at once and the answer follows through the message API. A retry waits
for the same in-flight task (wechat_turns.py); the core runs once per message.

Buttons become numbered lines answered with the number (wechat_translate.py).
Protocol code is our own, not wechatpy's (wechat_crypto.py says why); the
exceptions are drawn in wechat_errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Callable, Protocol

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from bot.channels.wechat_api import WeChatApi, install_secret_filter, secret_filter
from bot.channels.wechat_crypto import MessageCrypto, sign, signature_matches
from bot.channels.wechat_errors import BodyTooLarge, DecryptError, SignatureError, WeChatApiError, XmlError
from bot.channels.wechat_outbox import OutboxLike, wechat_delivery
from bot.channels.wechat_translate import CHANNEL, ButtonMemory, dedup_key, incoming_from, render
from bot.channels.wechat_turns import API, PASSIVE, Answer, Turn, TurnCache
from bot.channels.wechat_xml import MAX_BODY, encrypted_envelope, parse_message, text_reply
from bot.core import texts
from bot.core.messages import Incoming, Reply
from bot.core.ports import CLAIM_MINE, UpdateClaims
from bot.errors import ConfigError
from bot.settings import WeChatSettings

log = logging.getLogger(__name__)

PATH = "/wechat"
REPLAY_WINDOW = 300.0  # seconds a callback's timestamp may differ from our clock
OFFICIAL_API = "https://api.weixin.qq.com"
WECOM_API = "https://qyapi.weixin.qq.com"
SUCCESS = "success"  # what WeChat expects when no passive reply follows


class ConversationLike(Protocol):
    def handle(self, incoming: Incoming) -> list[Reply]: ...


class WeChatChannel:
    def __init__(self, conversation: ConversationLike, settings: WeChatSettings, token: str, aes_key: str | None,
                 app_secret: str, *, outbox: OutboxLike | None = None, clock: Callable[[], float] = time.time,
                 http: httpx.AsyncClient | None = None, outbox_interval: float = 2.0, outbox_batch: int = 20,
                 claims: UpdateClaims | None = None, buttons=None, token_store=None):
        wecom = settings.kind == "wecom"
        for wrong, problem in [
            (settings.kind not in ("official", "wecom"), "wechat.kind must be official or wecom to run WeChat"),
            (not token, f"the WeChat callback Token is empty (set {settings.token_env})"),
            (not settings.app_id, "wechat.app_id is empty (the AppID, or the CorpID for WeCom)"),
            (wecom and not aes_key, f"WeCom callbacks are always encrypted: set {settings.aes_key_env}"),
            (not app_secret, f"late answers need the message API: set {settings.app_secret_env}"),
            (wecom and not settings.agent_id.isdigit(), "wechat.agent_id must be the WeCom app's numeric AgentId"),
        ]:
            if wrong:
                raise ConfigError(problem)
        self.conversation = conversation
        self.settings = settings
        self.kind = settings.kind
        self.clock = clock
        self.crypto = MessageCrypto(aes_key, settings.app_id) if aes_key else None
        api_base = settings.api_base
        if wecom and api_base.rstrip("/") == OFFICIAL_API:
            api_base = WECOM_API  # the default of wechat.api_base is the official accounts' host
        self._own_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(timeout=10.0)
        self.api = WeChatApi(self.kind, api_base, settings.app_id, app_secret, self.http, settings.agent_id, clock,
                             shared=token_store)
        # shared with the other replicas when given (storage/wechat_shared.py); this process's memory otherwise
        self.buttons = buttons if buttons is not None else ButtonMemory()
        self.claims = claims
        self.turns = TurnCache(ttl=2 * REPLAY_WINDOW)
        self._token = token
        self._background: set[asyncio.Task] = set()
        self._delivery = wechat_delivery(outbox, CHANNEL, self.send_reply, outbox_batch, outbox_interval) \
            if outbox is not None else None
        self._delivery_task: asyncio.Task | None = None
        install_secret_filter(token, aes_key or "", app_secret)
        self.router = APIRouter()
        self.router.add_api_route(PATH, self.callback, methods=["GET", "POST"], include_in_schema=False)

    # -- running -------------------------------------------------------------
    async def start(self) -> None:
        """Start delivering the outbox rows of this channel (when an outbox was given)."""
        if self._delivery is not None and self._delivery_task is None:
            self._delivery_task = asyncio.create_task(self._delivery.run_forever(), name="wechat-outbox")
        log.info("wechat channel (%s) listening on %s", self.kind, PATH)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the outbox loop, give answers in progress `grace` seconds to go out, close the HTTP client."""
        task, self._delivery_task = self._delivery_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=grace)
            for leftover in pending:
                leftover.cancel()
        if self._own_http:
            await self.http.aclose()

    async def deliver_outbox(self) -> int:
        """Send the pending outbox rows of this channel now; return how many were sent."""
        return 0 if self._delivery is None else await self._delivery.deliver()

    async def send_reply(self, user_id: str, reply: Reply) -> None:
        """Send one Reply through the message API (numbered buttons remembered for the user)."""
        parts, numbered = render([reply])
        await asyncio.to_thread(self.buttons.remember, user_id, numbered)
        for part in parts:
            await self.api.send_text(user_id, part)

    # -- the route -------------------------------------------------------------
    async def callback(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            if request.method == "GET":
                return self._verify_url(request)
            return await self._receive(request, started)
        except SignatureError as exc:
            return _refuse(request, 403, "forbidden", exc)
        except BodyTooLarge as exc:
            return _refuse(request, 413, "too large", exc)
        except (XmlError, DecryptError, ValueError, KeyError) as exc:
            return _refuse(request, 400, "bad request", exc)

    def _verify_url(self, request: Request) -> Response:
        query = request.query_params
        timestamp, nonce, echostr = query.get("timestamp", ""), query.get("nonce", ""), query.get("echostr", "")
        if self.kind == "wecom":
            self._check(query.get("msg_signature"), timestamp, nonce, echostr)
            return PlainTextResponse(self.crypto.decrypt(echostr).decode("utf-8"))  # type: ignore[union-attr]
        self._check(query.get("signature"), timestamp, nonce)
        if not echostr:
            raise ValueError("echostr is missing")
        return PlainTextResponse(echostr)

    async def _receive(self, request: Request, started: float) -> Response:
        query = request.query_params
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        encrypted = self.kind == "wecom" or query.get("encrypt_type", "").lower() == "aes"
        if encrypted:
            if not query.get("msg_signature"):
                raise SignatureError("msg_signature is missing")
            self._check_fresh(timestamp)
        else:  # the signature covers only the query: check it before reading anything else
            self._check(query.get("signature"), timestamp, nonce)
        fields = parse_message(await _read_body(request))
        if encrypted:
            if not fields.get("Encrypt"):
                raise XmlError("the encrypted message has no Encrypt field")
            self._check(query.get("msg_signature"), timestamp, nonce, fields.get("Encrypt", ""))
            if self.crypto is None:
                raise DecryptError(f"an encrypted message arrived but {self.settings.aes_key_env} is not set")
            fields = parse_message(self.crypto.decrypt(fields["Encrypt"]))
        return await self._answer(fields, encrypted, started)

    def _check(self, signature: str | None, timestamp: str, nonce: str, *extra: str) -> None:
        if not signature or not timestamp or not nonce or any(not part for part in extra):
            raise SignatureError("the request is not signed")
        self._check_fresh(timestamp)
        if not signature_matches(signature, self._token, timestamp, nonce, *extra):
            raise SignatureError("bad signature")

    def _check_fresh(self, timestamp: str) -> None:
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > REPLAY_WINDOW:
            raise SignatureError("timestamp missing or outside the replay window")

    # -- answering -------------------------------------------------------------
    async def _answer(self, fields: dict[str, str], encrypted: bool, started: float) -> Response:
        key = dedup_key(fields)
        turn = self.turns.get(key) if key is not None else None
        if turn is None:
            claim = f"wechat:{key}" if key is not None and self.claims is not None else None
            if claim is not None and await asyncio.to_thread(self.claims.claim, claim) != CLAIM_MINE:
                # a retry of a message another replica is answering: it answers (or sends through the API)
                return PlainTextResponse(SUCCESS)
            incoming = await asyncio.to_thread(incoming_from, fields, self.buttons)
            if incoming is None:
                return PlainTextResponse(SUCCESS)
            turn = self.turns.add(key)
            turn.task = self._spawn(self._work(incoming, turn, claim))
        assert turn.task is not None
        remaining = self.settings.reply_within_seconds - (time.monotonic() - started)
        try:
            await asyncio.wait_for(asyncio.shield(turn.task), timeout=max(remaining, 0.0))
        except asyncio.TimeoutError:
            pass
        except asyncio.CancelledError:  # WeChat hung up: the answer must still reach the resident
            self._hand_to_api(turn, fields["FromUserName"])
            raise
        if turn.task.done() and turn.delivery != API and not turn.task.cancelled():
            turn.delivery = PASSIVE
            parts = turn.task.result().parts
            if not parts:
                return PlainTextResponse(SUCCESS)
            if len(parts) > 1 and not turn.rest_sent:
                turn.rest_sent = True
                self._spawn(self._send_parts(fields["FromUserName"], parts[1:]))
            return self._passive(fields, parts[0], encrypted)
        self._hand_to_api(turn, fields["FromUserName"])
        return PlainTextResponse(SUCCESS)

    async def _work(self, incoming: Incoming, turn: Turn, claim: str | None = None) -> Answer:
        try:
            replies = await asyncio.to_thread(self.conversation.handle, incoming)
            if claim is not None:
                await asyncio.to_thread(self.claims.finish, claim)
        except Exception as exc:
            log.error("wechat message (%s) of %s failed: %s", incoming.kind, incoming.user_id,
                      secret_filter.redact(repr(exc)))
            replies = [Reply(texts.ERROR, intent="error")]
        parts, numbered = render(replies)
        await asyncio.to_thread(self.buttons.remember, incoming.user_id, numbered)
        if turn.delivery == API:  # nobody waits for it any more: send it
            self._spawn(self._send_parts(incoming.user_id, parts))
        return Answer(parts)

    def _hand_to_api(self, turn: Turn, user_id: str) -> None:
        if turn.delivery is not None:
            return
        turn.delivery = API
        if turn.task is not None and turn.task.done() and not turn.task.cancelled():
            self._spawn(self._send_parts(user_id, turn.task.result().parts))

    async def _send_parts(self, user_id: str, parts: list[str]) -> None:
        for part in parts:
            try:
                await self.api.send_text(user_id, part)
            except WeChatApiError as exc:
                log.warning("late wechat answer to %s not sent: %s", user_id, exc)
                return

    def _passive(self, fields: dict[str, str], content: str, encrypted: bool) -> Response:
        now = str(int(self.clock()))
        xml = text_reply(fields["FromUserName"], fields.get("ToUserName", ""), int(now), content)
        if encrypted:
            assert self.crypto is not None
            nonce = str(secrets.randbelow(9 * 10**9) + 10**9)
            encrypt = self.crypto.encrypt(xml)
            xml = encrypted_envelope(encrypt, sign(self._token, now, nonce, encrypt), now, nonce)
        return Response(xml, media_type="application/xml")

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


def create_wechat_router(conversation: ConversationLike, settings: WeChatSettings, token: str, aes_key: str | None,
                         app_secret: str, outbox: OutboxLike | None = None, clock: Callable[[], float] = time.time,
                         http: httpx.AsyncClient | None = None) -> APIRouter:
    """The /wechat route alone; use WeChatChannel to also run the outbox loop and stop cleanly."""
    return WeChatChannel(conversation, settings, token, aes_key, app_secret, outbox=outbox, clock=clock,
                         http=http).router


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise BodyTooLarge(f"Content-Length {length}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge("body over the limit")
    return bytes(body)


def _refuse(request: Request, status: int, text: str, exc: Exception) -> Response:
    client = request.client.host if request.client else "-"
    log.warning("wechat %s from %s refused with %s: %s", request.method, client, status,
                secret_filter.redact(f"{type(exc).__name__}: {exc}"))
    return PlainTextResponse(text, status_code=status)
