"""A local HTTP server that records every webhook it receives and answers from a script.

Script entries, consumed in order (when empty it answers 200): an int status (500, 429, 400 …),
"slow" (waits `slow_s` before answering 200: a client timeout), or "redirect" (302 elsewhere)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from harness.fakes.threaded_app import ThreadedApp


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int | str] = []
        self.slow_s = 3.0
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read(), request.method))
        entry = self.script.pop(0) if self.script else 200
        if entry == "slow":
            await asyncio.sleep(self.slow_s)
            return web.json_response({"ok": True})
        if entry == "redirect":
            raise web.HTTPFound(location="http://127.0.0.1:9/elsewhere")
        return web.json_response({"ok": entry < 400} if isinstance(entry, int) else {}, status=int(entry))

    def start(self) -> "WebhookReceiver":
        self._server = ThreadedApp([web.route("*", "/{tail:.*}", self._receive)], handler_cancellation=True)
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
