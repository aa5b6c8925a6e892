"""Run the service: the web server, Telegram (when a token is set) and the deadline watch, in one event loop.

Follows python-telegram-bot's customwebhookbot/starlettebot.py: uvicorn serves
the ASGI app while the Telegram Application runs beside it in the same loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from fastapi import Request  # noqa: F401 - FastAPI resolves the /telegram route's string annotation here

from bot.channels.ratelimit import build_limiter

log = logging.getLogger("bot")


def serve(settings) -> int:
    return asyncio.run(_serve(settings))


def warm_up(service) -> None:
    """Load the model, the index and the category examples before the first resident waits for them.

    A vector store that cannot be reached (a Chroma server down) must not keep the service from
    starting: tickets, staff and notifications do not need it, questions are answered with a plain
    "暂时无法查询" and the index loads by itself on the first question after the store is back.
    """
    from bot.errors import IndexUnavailable

    try:
        service.knowledge.retriever.search("老人家食堂怎么报名")
    except IndexUnavailable as exc:
        log.warning("knowledge index unavailable at start (%s); questions will be answered once it is back "
                    "(if the vector store lost its data, python ingest.py builds the index again)", exc)
    service.categorizer.warm_up()


def build_app(service, telegram=None, wechat=None, extra_routes=(), in_flight=None):
    """The ASGI app with every HTTP route of the service; in_flight: the gate the channels share."""
    from fastapi import APIRouter, Response

    from bot.channels.web import create_web_app

    routes = []
    if telegram is not None and service.settings.telegram.mode == "webhook":
        from bot.channels.telegram import SECRET_HEADER

        router = APIRouter()

        @router.post("/telegram")
        async def telegram_webhook(request: Request) -> Response:
            status = await telegram.process_webhook(await request.body(), request.headers.get(SECRET_HEADER))
            return Response(status_code=status)

        routes.append(router)
    if wechat is not None:
        routes.append(wechat.router)
    routes.extend(extra_routes)

    def health() -> dict:
        snap = service.knowledge.index.snapshot()
        return {"index_generation": snap.generation if snap else None,
                "passages": len(snap.entries) if snap else 0}

    from bot.console.app import create_console_router

    routes.append(create_console_router(service))
    routes.append(operations_router(service))
    web = service.settings.web
    return create_web_app(service.conversation, web, service.outbox, extra_routes=routes, health=health,
                          limiter=build_limiter(web.rate_limit_per_minute, "web", _redis_url(service.settings)),
                          in_flight=in_flight)


def _redis_url(settings) -> str:
    """The Redis the replicas share, from the environment (a URL may hold a password); "" when none."""
    return os.environ.get(settings.cluster.redis_url_env, "").strip()


def uvicorn_config(app, settings):
    """How uvicorn serves the app: behind a reverse proxy it believes X-Forwarded-For/-Proto from
    web.trusted_proxies only, so throttling, logs and /metrics see the resident's address, not the proxy's."""
    import uvicorn

    return uvicorn.Config(app, host=settings.web.host, port=settings.web.port, log_level="warning", lifespan="off",
                          proxy_headers=True, forwarded_allow_ips=",".join(settings.web.trusted_proxies) or "127.0.0.1")


def operations_router(service):
    """/readyz for load balancers and /metrics for Prometheus (allowed addresses, or a bearer token)."""
    import hmac

    from fastapi import APIRouter, Response
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from bot.metrics import CONTENT_TYPE, readiness

    router = APIRouter()
    settings = service.settings.metrics

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, problems = await run_in_threadpool(readiness, service)
        body = {"status": "ready"} if ready else {"status": "not ready", "problems": problems}
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        token = os.environ.get(settings.token_env, "").strip()
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        allowed = (request.client is not None and request.client.host in settings.allow) or \
            (bool(token) and hmac.compare_digest(given.encode(), token.encode()))
        if not allowed:
            return JSONResponse({"error": "无权读取监控指标。"}, status_code=403)
        return Response(await run_in_threadpool(service.metrics.expose), media_type=CONTENT_TYPE)

    return router


async def replay_kept_messages(conversation, interval: float) -> None:
    """Handle the messages kept while the database was away, as soon as it is back (see core/durable.py)."""
    while True:
        try:
            await asyncio.to_thread(conversation.replay)
        except Exception:  # a bug in one round must not stop the next
            log.exception("replaying kept messages failed")
        await asyncio.sleep(interval)


async def _serve(settings) -> int:
    import uvicorn

    from bot.app import build_service

    service = build_service(settings)
    report = await asyncio.to_thread(service.knowledge.ensure_ingested)
    if report is not None:
        log.info("sample knowledge ingested: %s", report.summary())
    try:
        laws = await asyncio.to_thread(service.laws.ensure_ingested)
        if laws is not None:
            log.info("law texts for mediation ingested: %s", laws.summary())
    except Exception:  # noqa: BLE001 - mediators lose suggestions, residents lose nothing
        log.exception("the law index could not be built; mediation cases get no law suggestions")
    await asyncio.to_thread(warm_up, service)
    from bot.channels.load import InFlight

    in_flight = InFlight(settings.web.max_in_flight)  # the chat API and Telegram's webhook: one bound for both
    telegram = None
    token = os.environ.get(settings.telegram.token_env, "").strip()
    if token:
        from bot.channels.telegram import TelegramChannel
        from bot.storage.callback_payloads import SqlCallbackPayloads
        from bot.storage.update_claims import SqlUpdateClaims

        telegram = TelegramChannel(service.conversation, token, settings.telegram, outbox=service.outbox,
                                   webhook_secret=os.environ.get(settings.telegram.webhook_secret_env, ""),
                                   limiter=build_limiter(settings.telegram.rate_limit_per_minute, "telegram",
                                                         _redis_url(settings)),
                                   claims=SqlUpdateClaims(service.sessions), in_flight=in_flight,
                                   payloads=SqlCallbackPayloads(service.sessions))
        service.kb_chat.fetchers["telegram"] = telegram.fetch_file
    wechat = None
    if settings.wechat.kind != "none":
        from bot.channels.wechat import WeChatChannel
        from bot.storage.update_claims import SqlUpdateClaims
        from bot.storage.wechat_shared import SqlButtonMemory, SqlTokenStore

        wechat = WeChatChannel(service.conversation, settings.wechat,
                               token=os.environ.get(settings.wechat.token_env, "").strip(),
                               aes_key=os.environ.get(settings.wechat.aes_key_env, "").strip() or None,
                               app_secret=os.environ.get(settings.wechat.app_secret_env, "").strip(),
                               outbox=service.outbox, claims=SqlUpdateClaims(service.sessions),
                               buttons=SqlButtonMemory(service.sessions), token_store=SqlTokenStore(service.sessions))
    app = build_app(service, telegram, wechat, in_flight=in_flight)
    server = uvicorn.Server(uvicorn_config(app, settings))
    url = f"http://{settings.web.host}:{settings.web.port}/"
    poller = None
    if telegram is None:
        log.info("no Telegram token in $%s: running the web channel alone at %s", settings.telegram.token_env, url)
    else:
        if settings.telegram.mode == "polling":
            poller = _only_poller(service.engine)
        await telegram.start()
        log.info("Telegram (%s) and the web channel at %s are running", settings.telegram.mode, url)
    if wechat is not None:
        await wechat.start()
        log.info("WeChat (%s) callbacks at %swechat", settings.wechat.kind, url)
    watch = asyncio.create_task(service.watch.run(settings.tickets.check_interval_seconds))
    replay = asyncio.create_task(replay_kept_messages(service.conversation, settings.database.replay_interval_seconds))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        except NotImplementedError:  # pragma: no cover - not on this platform
            pass
    try:
        await server.serve()
    finally:
        watch.cancel()
        replay.cancel()
        if telegram is not None:
            await telegram.stop()
        if poller is not None:
            poller.close()
        if wechat is not None:
            await wechat.stop()
    return 0


def _only_poller(engine):
    """Telegram polling runs on one replica only: the others are refused with what to do instead."""
    from bot.errors import ConfigError
    from bot.storage.singleton import AlreadyHeld, hold

    try:
        return hold(engine, "telegram-polling")
    except AlreadyHeld as exc:
        raise ConfigError("another replica is already polling Telegram on this database: run several replicas with "
                          "telegram.mode = \"webhook\" (one public URL behind the load balancer), or only one with "
                          "polling") from exc
