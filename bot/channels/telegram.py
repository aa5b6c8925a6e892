"""The Telegram channel: python-telegram-bot in, the core's Conversation, rendered Replies out.

It runs inside an existing event loop (the web server's), as in python-telegram-bot's
examples/customwebhookbot/starlettebot.py::

    channel = TelegramChannel(conversation, token, settings.telegram, outbox=outbox,
                              webhook_secret=os.environ.get(settings.telegram.webhook_secret_env, ""))
    await channel.start()      # polling: starts polling; webhook: calls setWebhook
    ...                        # serve the web app; in webhook mode its POST /telegram route answers
                               # Response(status_code=await channel.process_webhook(
                               #     await request.body(), request.headers.get(SECRET_HEADER)))
    await channel.stop()

Updates of different users are processed concurrently, those of one user in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
import traceback
from typing import Any, Awaitable, Callable, Protocol

from telegram import BotCommand, CallbackQuery, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.channels.load import InFlight
from bot.channels.ratelimit import SLOW_DOWN, RateLimiter, Verdict
from bot.channels.telegram_logs import redactor
from bot.channels.telegram_outbox import OutboxLike, retry_after_seconds, telegram_delivery
from bot.channels.telegram_render import MAX_TEXT, CallbackData, render, utf16_len
from bot.channels.telegram_translate import CHANNEL, incoming_from_update
from bot.core import texts
from bot.core.ports import CLAIM_BUSY, CLAIM_DONE, UpdateClaims
from bot.core.messages import Incoming, Reply
from bot.errors import ConfigError
from bot.settings import TelegramSettings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CLAIM_RENEW_SECONDS = 10.0  # well inside the claims' lease (30 s)
COMMANDS = [("start", "开始使用"), ("report", "反映问题"), ("my", "我的工单"), ("cancel", "取消当前操作"), ("help", "帮助")]
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
_TYPING_EVERY = 4.5  # seconds; Telegram shows "typing…" for five
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token


class ConversationLike(Protocol):
    def handle(self, incoming: Incoming) -> list[Reply]: ...


class TelegramChannel:
    def __init__(self, conversation: ConversationLike, token: str, settings: TelegramSettings, *,
                 outbox: OutboxLike | None = None, clock: Callable[[], float] = time.monotonic,
                 webhook_secret: str = "", outbox_interval: float = 2.0, outbox_batch: int = 20,
                 poll_timeout: float = 10.0, concurrent_updates: int = 64, limiter=None,
                 claims: UpdateClaims | None = None, in_flight: InFlight | None = None, payloads=None):
        if not token:
            raise ConfigError(f"the Telegram bot token is empty (set {settings.token_env})")
        if settings.mode == "webhook":
            if not settings.webhook_url:
                raise ConfigError("telegram.mode is webhook but telegram.webhook_url is empty")
            if not _SECRET_TOKEN.fullmatch(webhook_secret or ""):
                raise ConfigError(f"webhook mode needs {settings.webhook_secret_env}: 1-256 of A-Z a-z 0-9 _ -")
        self.conversation = conversation
        self.settings = settings
        self.outbox = outbox
        self.limiter = limiter or RateLimiter(settings.rate_limit_per_minute, clock=clock)
        self.callbacks = CallbackData(store=payloads)  # long button payloads: shared when a store is given
        self.poll_timeout = poll_timeout
        self.application: Application | None = None
        self._token = token
        self._webhook_secret = webhook_secret
        self._concurrency = concurrent_updates
        # webhook mode: which replica handles an update Telegram sends again (storage/update_claims.py), and the
        # process's gate: saturated, it answers 503 (Telegram keeps the update and sends it again)
        self.claims = claims
        self.in_flight = in_flight or InFlight(concurrent_updates)
        self._locks = _KeyedLocks()
        self._delivery = telegram_delivery(outbox, CHANNEL, self.send_reply, outbox_batch, outbox_interval) \
            if outbox is not None else None
        self._delivery_task: asyncio.Task | None = None
        redactor.hide(token, webhook_secret)

    # -- building and running ---------------------------------------------
    def build_application(self) -> Application:
        """Build the python-telegram-bot Application with this channel's handlers."""
        redactor.install(__name__)  # before the Bot exists: it logs its URL, token included, at DEBUG
        builder = Application.builder().token(self._token).concurrent_updates(self._concurrency)
        if self.settings.base_url:
            builder = builder.base_url(self.settings.base_url).base_file_url(file_url(self.settings.base_url))
        if self.settings.mode == "webhook":
            builder = builder.updater(None)  # the web server receives the updates
        app = builder.post_init(self._post_init).post_stop(self._post_stop).build()
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & ~filters.StatusUpdate.ALL, self._on_message))
        app.add_error_handler(self._on_error)
        self.application = app
        return app

    async def start(self) -> None:
        """Start inside the running event loop: polling, or register the webhook."""
        self._loop = asyncio.get_running_loop()
        app = self.application or self.build_application()
        await app.initialize()
        await self._post_init(app)  # run_polling() would call it; start() is its manual equivalent
        await app.start()
        if self.settings.mode == "webhook":
            await app.bot.set_webhook(url=self.settings.webhook_url, secret_token=self._webhook_secret,
                                      allowed_updates=ALLOWED_UPDATES)
        else:
            await app.updater.start_polling(timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES)
        log.info("telegram channel started (%s)", self.settings.mode)

    async def stop(self) -> None:
        """Stop polling, finish the updates in hand, and release the connections; the webhook stays set."""
        app = self.application
        if app is None:
            return
        await self._post_stop(app)
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def process_webhook(self, body: bytes | str | dict, secret_header: str | None) -> int:
        """Handle one webhook update; return the HTTP status for Telegram.

        The update is handled before 200 is answered: Telegram keeps an update until it gets 200 and sends it
        again otherwise, so an update whose replica is killed while handling it, or that arrives when this
        process is saturated (503), is not lost; a copy of one already handled is answered 200 and dropped.
        """
        if self.settings.mode != "webhook":
            return 404
        if self.application is None:
            return 503  # not started yet; Telegram retries
        if not hmac.compare_digest((secret_header or "").encode(), self._webhook_secret.encode()):
            return 403
        try:
            data = body if isinstance(body, dict) else json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError) as exc:
            log.warning("webhook body is not a Telegram update: %s", type(exc).__name__)
            return 400
        if not self.in_flight.enter():
            return 503
        try:
            key = f"telegram:{self.application.bot.id}:{update.update_id}"
            claimed = False
            if self.claims is not None:
                try:
                    outcome = await asyncio.to_thread(self.claims.claim, key)
                except Exception as exc:  # noqa: BLE001 - the database away: handle it unclaimed (the journal keeps it)
                    log.warning("could not claim telegram update %s (%s); handled without a claim",
                                update.update_id, type(exc).__name__)
                    outcome = None
                if outcome == CLAIM_DONE:
                    return 200  # a copy of an update already answered
                if outcome == CLAIM_BUSY:
                    return 503  # another replica is on it: asked again later, it is then done (or taken over)
                claimed = outcome is not None
            renewing = asyncio.create_task(self._keep_claim(key)) if claimed else None
            try:
                await self.application.process_update(update)
            finally:
                if renewing is not None:
                    renewing.cancel()
            if claimed:
                try:
                    await asyncio.to_thread(self.claims.finish, key)
                except Exception as exc:  # noqa: BLE001 - handled and answered: a 500 would only bring a copy
                    log.warning("could not mark telegram update %s done (%s)", update.update_id, type(exc).__name__)
            return 200
        finally:
            self.in_flight.leave()

    async def _keep_claim(self, key: str) -> None:
        """Renew the update's claim while it is being handled, so a slow answer is not taken over as dead."""
        while True:
            await asyncio.sleep(CLAIM_RENEW_SECONDS)
            try:
                await asyncio.to_thread(self.claims.renew, key)
            except Exception as exc:  # noqa: BLE001 - the next renewal tries again
                log.warning("could not renew the claim of %s (%s)", key, type(exc).__name__)

    async def _post_init(self, app: Application) -> None:
        try:
            await app.bot.set_my_commands([BotCommand(name, label) for name, label in COMMANDS])
        except TelegramError as exc:
            log.warning("could not set the command menu: %s", redactor.redact(str(exc)))
        if self._delivery is not None and self._delivery_task is None:
            self._delivery_task = asyncio.create_task(self._delivery.run_forever(), name="telegram-outbox")

    async def _post_stop(self, app: Application) -> None:
        task, self._delivery_task = self._delivery_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- handlers ------------------------------------------------------------
    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is not None and chat.type != "private":
            # reports repeat phone numbers and addresses back: never in a group everyone reads
            if update.effective_message is not None and update.effective_message.text \
                    and update.effective_message.text.startswith("/"):
                await self._bot.send_message(chat_id=chat.id, text=texts.PRIVATE_ONLY)
            return
        incoming = incoming_from_update(update)
        if incoming is not None and chat is not None:
            await self._serve(chat.id, incoming)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        try:
            await query.answer()  # stop the button's spinner whatever happens next
        except BadRequest as exc:  # the query is too old; the press still counts
            log.debug("could not answer a callback query: %s", exc)
        await asyncio.to_thread(self.callbacks.recall, query.data or "")  # from the database when not in memory
        incoming = incoming_from_update(update, self.callbacks.decode)
        if incoming is not None and update.effective_chat is not None:
            await self._serve(update.effective_chat.id, incoming, before=lambda: _show_choice(query))

    async def _serve(self, chat_id: int, incoming: Incoming,
                     before: Callable[[], Awaitable[None]] | None = None) -> None:
        verdict = self.limiter.check(incoming.user_id)
        if verdict is Verdict.DROP:
            return
        async with self._locks.hold(incoming.user_id):
            if verdict is Verdict.WARN:  # queued behind the replies this user is still owed
                await self._bot.send_message(chat_id=chat_id, text=SLOW_DOWN)
                return
            if before is not None:
                await before()
            first_typing = asyncio.create_task(self._chat_action(chat_id))
            refresher = asyncio.create_task(self._keep_typing(chat_id))
            try:
                replies = await asyncio.to_thread(self.conversation.handle, incoming)
            finally:
                refresher.cancel()
                await first_typing  # so that "typing…" cannot arrive after the answer
            for reply in replies:
                await self.send_reply(chat_id, reply)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        detail = "".join(traceback.format_exception(error)) if error is not None else "unknown error"
        user = update.effective_user if isinstance(update, Update) else None
        log.error("telegram update from user %s failed: %s", user.id if user else "-", redactor.redact(detail))
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            return
        try:
            await context.bot.send_message(chat_id=chat.id, text=texts.ERROR)
        except TelegramError as exc:
            log.warning("could not apologise in chat %s: %s", chat.id, redactor.redact(str(exc)))

    # -- sending -------------------------------------------------------------
    @property
    def _bot(self):
        return self.application.bot

    def fetch_file(self, file_id: str) -> bytes:
        """Download a file a user sent (an admin's document); called from the conversation's worker thread."""
        return asyncio.run_coroutine_threadsafe(self._download(file_id), self._loop).result(timeout=60)

    async def _download(self, file_id: str) -> bytes:
        file = await self._bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    async def send_reply(self, chat_id: int | str, reply: Reply) -> None:
        """Send one Reply as plain text (no parse_mode, so no user text can inject markup)."""
        parts = render(reply, self.callbacks)
        await asyncio.to_thread(self.callbacks.save)  # long payloads stored before anyone can press them
        for text, markup in parts:
            await self._send_with_retry(chat_id, text, markup)

    async def _send_with_retry(self, chat_id, text: str, markup) -> None:
        """Send once more after a 429 (when Telegram says) or a 5xx; never after a timeout, which may
        have been delivered: the resident must not read the same answer twice."""
        for attempt in range(3):
            try:
                await self._bot.send_message(chat_id=chat_id, text=text, reply_markup=markup,
                                             read_timeout=self.settings.send_read_timeout_seconds)
                return
            except RetryAfter as exc:
                if attempt == 2:
                    raise
                await asyncio.sleep(min(retry_after_seconds(exc), 30))
            except (TimedOut, BadRequest):  # maybe delivered, or never deliverable: do not repeat
                raise
            except NetworkError:  # Bad Gateway and friends: Telegram did not take the message
                if attempt == 2:
                    raise
                await asyncio.sleep(1.0 + attempt)

    async def _chat_action(self, chat_id: int) -> None:
        with contextlib.suppress(TelegramError):
            await self._bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)

    async def _keep_typing(self, chat_id: int) -> None:
        while True:
            await asyncio.sleep(_TYPING_EVERY)
            await self._chat_action(chat_id)

    async def deliver_outbox(self) -> int:
        """Send the pending outbox rows of this channel and mark them sent; return how many were sent."""
        if self._delivery is None or self.application is None:
            return 0
        return await self._delivery.deliver()


async def _show_choice(query: CallbackQuery) -> None:
    """Replace the pressed keyboard by the chosen label, so that old buttons cannot be pressed again."""
    message = query.message
    if not isinstance(message, Message) or not message.text:
        return
    keyboard = message.reply_markup.inline_keyboard if message.reply_markup else ()
    label = next((b.text for row in keyboard for b in row if b.callback_data == query.data), "")
    text = f"{message.text}\n\n（已选择：{label}）" if label else message.text
    try:
        await query.edit_message_text(text if utf16_len(text) <= MAX_TEXT else message.text)
    except TelegramError as exc:  # too old to edit, or already edited by a double tap
        log.debug("could not edit the pressed message: %s", exc)


def file_url(base_url: str) -> str:
    """The file URL of a Bot API server: ".../bot{token}" serves files at ".../file/bot{token}"."""
    head, sep, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if sep else base_url


class _KeyedLocks:
    """One asyncio.Lock per user, forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str):
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]
