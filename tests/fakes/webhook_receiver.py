"""A local HTTP server that records every webhook it receives and answers from a script.

Script entries, consumed in order (when empty it answers 200): an int status (500, 429, 400 …),
"slow" (waits `slow_s` before answering 200: a client timeout), or "redirect" (302 elsewhere)."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int | str] = []
        self.slow_s = 3.0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        entry = self.script.pop(0) if self.script else 200
        if entry == "slow":
            await asyncio.sleep(self.slow_s)
            return web.json_response({"ok": True})
        if entry == "redirect":
            raise web.HTTPFound(location="http://127.0.0.1:9/elsewhere")
        return web.json_response({"ok": entry < 400} if isinstance(entry, int) else {}, status=int(entry))

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.add_routes([web.post("/{tail:.*}", self._receive)])
            self._runner = web.AppRunner(app, handler_cancellation=True)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
