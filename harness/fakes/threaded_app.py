"""An aiohttp app served on 127.0.0.1 from its own thread and event loop, for fakes that sync code
(workers, connectors, child-process harnesses) talks to."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from aiohttp import web


class ThreadedApp:
    def __init__(self, routes: list[web.RouteDef], handler_cancellation: bool = False,
                 middlewares: Sequence[Any] = (), client_max_size: int = 1024**2) -> None:
        self.routes = routes
        self.handler_cancellation = handler_cancellation
        self.middlewares = list(middlewares)
        self.client_max_size = client_max_size
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0) -> int:
        """Serve on `port` (a free one by default); returns the port once it accepts connections."""
        ready = threading.Event()

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            app = web.Application(middlewares=self.middlewares, client_max_size=self.client_max_size)
            app.add_routes(self.routes)
            self._runner = web.AppRunner(app, handler_cancellation=self.handler_cancellation)
            self.loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", port)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the local test server did not start")
        return self.port

    def stop(self) -> None:
        if self.loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread:
            self._thread.join(10)
