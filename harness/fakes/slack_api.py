"""A local Slack Web API (and Socket Mode) server on loopback: records every call, answers the way Slack
does, and fails on request (429 with Retry-After, 500, or an API error) so retries can be tested.

The real slack_sdk/slack_bolt clients talk to it through SLACK_API_URL, as bolt-python's own tests do."""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    status: int
    at: float = field(default_factory=time.monotonic)
    # what the fake answered (for a 200)
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    status: int
    error: str
    retry_after: int | None = None


class FakeSlackApi:
    def __init__(self, bot_user_id: str = "W23456789", bot_id: str = "BZYBOTHED") -> None:
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.failures: dict[str, list[Failure]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        # what users.info says of each member's time zone (a member not here has none, as a bot has)
        self.zones: dict[str, str] = {}
        self._ts = itertools.count(1)
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._acked = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    # --- control

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def fail(self, method: str, status: int = 429, error: str = "ratelimited", retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` calls of `method` fail this way."""
        self.failures.setdefault(method, []).extend(Failure(status, error, retry_after) for _ in range(times))

    def calls_to(self, method: str, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    async def push_envelope(self, kind: str, payload: dict[str, Any], timeout_s: float = 5) -> dict[str, Any]:
        """Send one Socket Mode envelope to the connected app and wait for its ack."""
        envelope_id = uuid.uuid4().hex
        await self._outgoing.put({"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": False})
        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: envelope_id in self.acks), timeout_s)
        return self.acks[envelope_id]

    async def start(self) -> "FakeSlackApi":
        app = web.Application()
        # some methods travel as GET (users.info) or with their arguments in the query (reactions.add), as Slack allows
        app.add_routes([web.post("/api/{method}", self._api), web.get("/api/{method}", self._api), web.get("/link", self._socket)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post()) if request.method == "POST" else {}
        params = {**request.query, **params}
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or str(params.get("token", ""))
        queued = self.failures.get(method)
        if queued:
            failure = queued.pop(0)
            self.calls.append(Call(method, params, token, failure.status))
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            if failure.status >= 500:
                return web.Response(status=failure.status, text="upstream error", headers=headers)
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status, headers=headers)
        valid = token.startswith("xapp-") if method == "apps.connections.open" else token.startswith("xoxb-")
        call = Call(method, params, token, 200)
        self.calls.append(call)
        if not valid:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        call.response = self._answer(method, params)
        return web.json_response(call.response)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "deputy", "team_id": "T111",
                    "user_id": self.bot_user_id, "bot_id": self.bot_id}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "chat.postMessage":
            blocks = params.get("blocks")
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "text": params.get("text", ""), "ts": ts,
                       "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks or []}
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "users.info":
            user = str(params.get("user", ""))
            member: dict[str, Any] = {"id": user, "name": user.lower(), "is_bot": False}
            if user in self.zones:
                member.update(tz=self.zones[user], tz_label=self.zones[user])
            return {"ok": True, "user": member}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        return {"ok": True}

    # --- Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A111"}})

        async def send_envelopes() -> None:
            while True:
                await ws.send_json(await self._outgoing.get())

        sender = asyncio.create_task(send_envelopes())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    async with self._acked:
                        self.acks[data["envelope_id"]] = data
                        self._acked.notify_all()
        finally:
            sender.cancel()
            self._sockets.discard(ws)
        return ws
