"""The gateway process: one aiohttp server for every channel, plus the outbox dispatcher."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.channels.slack import slack_channel
from bot.channels.telegram import telegram_channel
from bot.channels.webhooks import HookRecognizer, webhook_channel
from bot.console.api import console_channel
from bot.dispatcher import Dispatcher
from bot.metrics import EXPOSITION, Exposition, metrics_page
from bot.gateway import Gateway, Recognizer
from agents.intents.recognizers import GatewayRecognizer
from bot.refusals import Refusals
from bot.services import ChannelFactory, Services
from bot.status import StatusWatch
from bot.store_metrics import StoreCollector
from bot.web_guard import WebGuard, parse_networks, security_headers
from integrations.registry import build_capabilities
from kernel.metrics import Metrics, metrics_dir, process_metrics
from kernel.settings import Settings
from jobs.queues import JobQueues
from memory.events import EventLog
from memory.redaction import secret_values

log = logging.getLogger("deputy.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The one list of channels. A factory returns None when its channel is not configured.
CHANNELS: list[ChannelFactory] = [
    console_channel,
    slack_channel,
    telegram_channel,
    webhook_channel,
]


def gateway_recognizer(recognizer: Recognizer | None = None) -> Recognizer:
    """What the gateway recognises with: commands (or `recognizer`), and a hook delivery always as content to triage."""
    return HookRecognizer(recognizer or GatewayRecognizer())


def build_services(settings: Settings, redis: Redis, aredis: AsyncRedis, recognizer: Recognizer | None = None,
                   metrics: Metrics | None = None) -> Services:
    metrics = metrics if metrics is not None else Metrics()
    queues = JobQueues(redis, settings.job.retries, settings.job.retry_backoff, settings.job.timeout_s)
    operators = {name: settings.operators(name) for name in ("console", "slack", "telegram", "webhook")}
    events = EventLog(redis, settings.workspace, secrets=secret_values(settings))
    refusals = Refusals(aredis, events, settings.workspace)
    gateway = Gateway(redis=redis, aredis=aredis, operators=operators, queues=queues, recognizer=gateway_recognizer(recognizer),
                      events=events, refusals=refusals, dedupe_ttl_s=settings.dedupe_ttl_s, metrics=metrics)
    console = settings.console
    metrics_token = console.metrics_token.get_secret_value() if console.metrics_token else None
    guard = WebGuard(settings.allowed_hosts(), frozenset(console.probe_hosts), parse_networks(console.trusted_proxies), refusals,
                     metrics_token)
    return Services(settings=settings, redis=redis, aredis=aredis, gateway=gateway, events=events,
                    refusals=refusals, guard=guard, metrics=metrics)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Redis unreachable → 503 so platforms retry; anything unexpected → logged 500, never a silent drop."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (RedisConnectionError, RedisTimeoutError) as err:
        log.error("redis unavailable while handling %s %s: %s", request.method, request.path, err)
        raise web.HTTPServiceUnavailable(text="Deputy's store is unavailable; retry shortly.", headers={"Retry-After": "2"})
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        raise web.HTTPInternalServerError(text="internal error; it has been logged")


# The dispatcher goes round its loop every second or so and marks each reply it handles; this long without
# either, it is stuck (a send or a Redis read that never returns) and replies wait.
DISPATCHER_SILENT_S = 60.0


async def healthz(request: web.Request) -> web.Response:
    """200 when Redis answers and the outbox dispatcher makes progress, else 503; the body says each part's state
    (`deputy health --role gateway` prints it)."""
    services: Services = request.app[SERVICES]
    redis_ok, redis_state = True, "ok"
    try:
        await services.aredis.ping()
    except Exception as err:
        redis_ok, redis_state = False, f"unavailable: {err}"
    dispatcher_ok, dispatcher_state = _dispatcher_state(request.app)
    ok = redis_ok and dispatcher_ok
    return web.json_response({"ok": ok, "redis": redis_state, "dispatcher": dispatcher_state}, status=200 if ok else 503)


def _dispatcher_state(app: web.Application) -> tuple[bool, str]:
    if not app[DISPATCHING]:
        return True, "off (this gateway delivers no replies)"
    last = app[DISPATCHER].last_pass
    if last is None:
        return True, "starting"
    silent = time.monotonic() - last
    if silent > DISPATCHER_SILENT_S:
        return False, f"stuck: no progress for {silent:.0f} s"
    return True, "running"


SERVICES = web.AppKey("services", Services)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
DISPATCHING = web.AppKey("dispatching", bool)


def build_app(services: Services, channels: list[ChannelFactory] | None = None, dispatch: bool = True) -> web.Application:
    parts = [p for p in (factory(services) for factory in (channels if channels is not None else CHANNELS)) if p]
    middlewares = [errors, services.guard.middleware, *(m for p in parts for m in p.middlewares)]
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app.on_response_prepare.append(security_headers)
    app[SERVICES] = services
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics_page)])
    store = StoreCollector(services.redis, services.settings, list(build_capabilities(services.settings, services.redis)))
    app[EXPOSITION] = Exposition(services.metrics, store)
    for part in parts:
        app.add_routes(part.routes)
    dispatcher = Dispatcher(services.aredis, {p.name: p.sender for p in parts}, services.events)
    app[DISPATCHER] = dispatcher
    app[DISPATCHING] = dispatch
    status = StatusWatch(services.redis, services.aredis, services.events, services.settings.job.stall_notice_s,
                         {p.name: p.working for p in parts if p.working is not None})
    services.gateway.status = status

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for p in parts for job in p.background]
        if dispatch:
            tasks.append(asyncio.create_task(dispatcher.run()))
        log.info("channels: %s", ", ".join(p.name for p in parts))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await status.close()

    app.cleanup_ctx.append(lifespan)
    return app


def run_gateway(settings: Settings, redis: Redis, aredis: AsyncRedis, host: str | None = None, port: int | None = None,
                alongside: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
    """Serve until stopped; `alongside` run on the gateway's loop while it serves (`deputy up` prints its link from one)."""
    # this process's counts go to METRICS_DIR, where /metrics adds them to the workers' and cron's
    metrics = process_metrics(metrics_dir(settings.data_dir, settings.metrics_dir))
    services = build_services(settings, redis, aredis, metrics=metrics)
    app = build_app(services)
    app.cleanup_ctx.append(_running(alongside))
    # what exists now (modules, bolt, the app) lives as long as the process: keep it out of the
    # collector's sweeps, which otherwise walk it again and again while requests wait
    gc.freeze()
    web.run_app(app, host=host or settings.console.host, port=port or settings.console.port, print=None, access_log=None,
                loop=new_event_loop())


def _running(jobs: Sequence[Callable[[], Awaitable[None]]]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in jobs]
        yield
        for task in tasks:
            task.cancel()

    return run


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists (libuv's loop: fewer and cheaper wakeups per request), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
