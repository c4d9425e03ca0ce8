"""HTTP handlers of the web console: threads, messages, button clicks and a live SSE stream."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web
from redis.asyncio import Redis as AsyncRedis

from bot.channels.console import CHANNEL, ConsoleThreads
from bot.gateway import Gateway
from bot.messages import Decision, Inbound

if TYPE_CHECKING:
    from bot.server import ChannelParts, Services

log = logging.getLogger("deputy.console")

MAX_TEXT = 8_000
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


class ConsoleApi:
    def __init__(self, gateway: Gateway, threads: ConsoleThreads, aredis: AsyncRedis, operator: str, token: str | None) -> None:
        self.gateway = gateway
        self.threads = threads
        self.aredis = aredis
        self.operator = operator
        self.token = token

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get("/static/{name}", self.static),
            web.get("/api/threads", self.list_threads),
            web.post("/api/threads", self.create_thread),
            web.get("/api/threads/{thread_id}/messages", self.thread_messages),
            web.post("/api/messages", self.post_message),
            web.post("/api/decisions", self.post_decision),
            web.get("/api/stream", self.stream),
        ]

    @web.middleware
    async def auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """When a token is set (console bound beyond loopback), every console request must carry it."""
        if self.token is None or not (request.path == "/" or request.path.startswith(("/api/", "/static/"))):
            return await handler(request)
        given = (
            request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            or request.cookies.get("deputy_token", "")
            or request.query.get("token", "")
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            log.info("console: refused a request without a valid token from %s", request.remote)
            raise web.HTTPUnauthorized(text="A console token is required: open the link `deputy up` printed.")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie("deputy_token", self.token, httponly=True, samesite="Strict")
        return response

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=_asset("index.html"), content_type="text/html")

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
        )
        # the thread's copy of the message is written in the gateway's own transaction
        ack = await self.gateway.accept_async(
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
        ack = await self.gateway.decide_async(decision)
        return web.json_response({"status": ack.status, "trace_id": ack.trace_id}, status=202)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: every message and card update for the console, as it happens."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b": connected\n\n")
        pubsub = self.aredis.pubsub()
        await pubsub.subscribe(self.threads.live_channel)
        try:
            while True:
                item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15)
                if item is None:
                    await response.write(b": keep-alive\n\n")
                    continue
                data = item["data"].decode() if isinstance(item["data"], bytes) else item["data"]
                await response.write(f"data: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()
        return response


def _asset(name: str) -> str:
    return resources.files("bot.console").joinpath("static", name).read_text(encoding="utf-8")


def console_channel(services: "Services") -> "ChannelParts":
    from bot.channels.console import ConsoleSender
    from bot.server import ChannelParts

    threads = ConsoleThreads(services.redis, services.settings.workspace)
    token = services.settings.console_token.get_secret_value() if services.settings.console_token else None
    api = ConsoleApi(services.gateway, threads, services.aredis, sorted(services.settings.operators(CHANNEL) or {"operator"})[0], token)
    return ChannelParts(name=CHANNEL, routes=api.routes(), sender=ConsoleSender(threads), middlewares=[api.auth])

