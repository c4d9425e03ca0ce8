"""HTTP handlers of the web console: threads, messages, button clicks and a live SSE stream."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any, Awaitable, Callable

from aiohttp import web

from bot.async_redis import async_redis
from bot.channels.console import CHANNEL, ConsoleSender, ConsoleThreads, live_status
from bot.console.auth import IDENTITY, ConsoleAuth
from bot.console.live import LiveHub, TooManyStreams
from bot.console.sessions import ConsoleSessions
from bot.gateway import Gateway
from bot.services import ChannelParts, Services
from kernel.messages import Decision, Inbound

log = logging.getLogger("deputy.console")

MAX_TEXT = 8_000
# a keep-alive this often also notices, by failing, a client that went away
KEEPALIVE_S = 15
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(web.HTTPBadRequest):
    def __init__(self, reason: str) -> None:
        super().__init__(text=json.dumps({"error": reason}), content_type="application/json")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.info("console: rejected a body that is not JSON from %s", request.remote)
        raise BadRequest("body must be a JSON object")
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, required: bool = True, limit: int = 200) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"'{name}' is required")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise BadRequest(f"'{name}' must be a string")
    text = str(value)
    if len(text) > limit:
        raise BadRequest(f"'{name}' is longer than {limit} characters")
    return text


@dataclass(eq=False)
class ConsoleApi:
    gateway: Gateway
    threads: ConsoleThreads
    operator: str
    auth: ConsoleAuth
    hub: LiveHub

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/login", self.auth.login),
            web.get("/static/{name}", self.static),
            web.get("/api/threads", self.list_threads),
            web.post("/api/threads", self.create_thread),
            web.get("/api/threads/{thread_id}/messages", self.thread_messages),
            web.post("/api/messages", self.post_message),
            web.post("/api/decisions", self.post_decision),
            web.get("/api/stream", self.stream),
        ]

    async def index(self, request: web.Request) -> web.Response:
        identity = request[IDENTITY]
        csrf = identity.session.csrf if identity.session else ""
        page = _asset("index.html").replace('content="__CSRF__"', f'content="{csrf}"')
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {"js": "application/javascript", "css": "text/css"}
        kind = name.rsplit(".", 1)[-1]
        if kind not in types or "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        try:
            return web.Response(text=_asset(name), content_type=types[kind])
        except FileNotFoundError:
            raise web.HTTPNotFound()

    async def list_threads(self, request: web.Request) -> web.Response:
        return web.json_response({"threads": await asyncio.to_thread(self.threads.threads)})

    async def create_thread(self, request: web.Request) -> web.Response:
        body = await _json(request) if request.can_read_body else {}
        thread = await asyncio.to_thread(self.threads.new_thread, _field(body, "title", required=False))
        return web.json_response(thread, status=201)

    async def thread_messages(self, request: web.Request) -> web.Response:
        thread_id = request.match_info["thread_id"]
        return web.json_response({"thread_id": thread_id, "messages": await asyncio.to_thread(self.threads.messages, thread_id)})

    async def post_message(self, request: web.Request) -> web.Response:
        body = await _json(request)
        text = _field(body, "text", limit=MAX_TEXT).strip()
        if not text:
            raise BadRequest("'text' is empty")
        thread_id = _field(body, "thread_id", limit=64)
        inbound = Inbound(
            channel=CHANNEL, event_id=_field(body, "client_id", limit=64), user_id=self.operator,
            user_name=self.operator, thread_id=thread_id, text=text,
            # the browser's time zone: a hint the worker keeps until the operator says otherwise
            timezone=_field(body, "timezone", required=False, limit=64),
        )
        # the thread's copy of the message is written in the gateway's own transaction
        ack = await self.gateway.accept(
            inbound, also=lambda pipe, trace_id: self.threads.add_user_message(inbound.thread_id, inbound.text, inbound.user_id, trace_id, pipe=pipe)
        )
        return web.json_response({"status": ack.status, "trace_id": ack.trace_id}, status=202)

    async def post_decision(self, request: web.Request) -> web.Response:
        body = await _json(request)
        decision = Decision(
            channel=CHANNEL, event_id=_field(body, "client_id", limit=64), user_id=self.operator, user_name=self.operator,
            thread_id=_field(body, "thread_id", limit=64), action=_field(body, "action", limit=64),
            value=_field(body, "value", limit=200),
        )
        ack = await self.gateway.decide(decision)
        return web.json_response({"status": ack.status, "trace_id": ack.trace_id}, status=202)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: every message and card update for the console, as it happens."""
        owner = request[IDENTITY].owner
        try:
            queue = self.hub.open(owner)
        except TooManyStreams as err:
            raise web.HTTPTooManyRequests(text=json.dumps({"error": str(err)}), content_type="application/json",
                                          headers={"Retry-After": "5"})
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                                   "X-Accel-Buffering": "no"})
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:  # also how a client that went away is noticed: the write fails
                    data = ": keep-alive"
                # a login ended meanwhile (`deputy console-link --end-sessions`) ends its streams too
                if data is None or not await self.auth.still_valid(request):
                    break
                await response.write(f"{data}\n\n".encode() if data.startswith(":") else f"data: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.close(owner, queue)
        return response


def _asset(name: str) -> str:
    return resources.files("bot.console").joinpath("static", name).read_text(encoding="utf-8")


def console_channel(services: Services) -> ChannelParts:
    settings = services.settings
    threads = ConsoleThreads(services.redis, settings.workspace)
    console = settings.console
    token = console.token.get_secret_value() if console.token else None
    sessions = ConsoleSessions(services.aredis, settings.workspace, console.session_ttl_s, token)
    auth = ConsoleAuth(sessions, services.guard, services.refusals, cookie_name=f"deputy_session_{console.port}")
    hub = LiveHub(lambda: async_redis(settings.redis_url, max_connections=1), threads.live_channel,
                  console.max_streams, console.streams_per_session)
    operator = sorted(settings.operators(CHANNEL) or {"operator"})[0]
    api = ConsoleApi(services.gateway, threads, operator, auth, hub)
    return ChannelParts(name=CHANNEL, routes=api.routes(), sender=ConsoleSender(threads), middlewares=[auth.middleware],
                        background=[hub.run], working=live_status(services.aredis, threads))
