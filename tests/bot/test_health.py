"""`deputy health --role …` as Docker runs it in each container, and the gateway's /healthz behind it."""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Iterator

import pytest
from aiohttp import web
from redis.asyncio import Redis as AsyncRedis

from bot.cli import main
from bot.dispatcher import Dispatcher
from bot.server import build_app, build_services
from jobs.heartbeat import Heartbeats, process_ident


def health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["health", *args])
    return code, capsys.readouterr().out.strip()


@contextlib.contextmanager
def gateway(settings, redis) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The real gateway app, its dispatcher running, served from a thread of its own; yields its port."""
    loop = asyncio.new_event_loop()
    ready, port = threading.Event(), []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        aredis = AsyncRedis.from_url(settings.redis_url)
        runner = web.AppRunner(build_app(build_services(settings, redis, aredis), channels=[]))
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(aredis.aclose())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the gateway did not start"
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_worker_is_healthy_once_a_process_on_this_host_beats_ready(settings, redis, capsys):
    beats = Heartbeats(redis)
    code, line = health(capsys, "--role", "worker")
    assert code == 1 and "no heartbeat from a worker on" in line and "is `deputy worker` running?" in line

    beats.beat("worker", "another-container:7")  # the fleet is not this container
    code, line = health(capsys, "--role", "worker")
    assert code == 1 and "(1 on other hosts)" in line

    beats.beat("worker", process_ident(), ready=False, detail="waiting for Weaviate: Weaviate at http://weaviate:8080 did not answer")
    code, line = health(capsys, "--role", "worker")
    assert code == 1 and "none ready yet: waiting for Weaviate" in line

    beats.beat("worker", process_ident(pid=1), ready=True)
    code, line = health(capsys, "--role", "worker")
    assert code == 0 and line.startswith("healthy: worker: 1 of 2 ready on")


def test_a_cron_whose_last_heartbeat_is_stale_is_unhealthy(settings, redis, capsys, monkeypatch):
    Heartbeats(redis, clock=lambda: time.time() - 61).beat("cron", process_ident())
    code, line = health(capsys, "--role", "cron")
    assert code == 1 and "no heartbeat from a cron on" in line and "in the last 60 s" in line

    monkeypatch.setenv("HEALTH_STALE_S", "120")
    assert health(capsys, "--role", "cron")[0] == 0
    Heartbeats(redis).beat("cron", process_ident())
    monkeypatch.delenv("HEALTH_STALE_S")
    assert health(capsys, "--role", "cron")[0] == 0


def test_without_redis_a_worker_is_unhealthy_and_says_so(settings, capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, line = health(capsys, "--role", "worker")
    assert code == 1 and "worker: Redis did not answer" in line


def test_the_gateway_is_healthy_when_redis_answers_and_its_dispatcher_delivers(settings, redis, capsys):
    code, line = health(capsys, "--role", "gateway", "--port", "1")
    assert code == 1 and "nothing answers at http://127.0.0.1:1/healthz" in line

    with gateway(settings, redis) as port:
        code, line = health(capsys, "--role", "gateway", "--port", str(port))
        assert code == 0 and "gateway: redis ok, dispatcher " in line
        # `deputy up` runs all three on one machine
        code, line = health(capsys, "--role", "up", "--port", str(port))
        assert code == 1 and "no heartbeat from a worker" in line
        Heartbeats(redis).beat("worker", process_ident())
        Heartbeats(redis).beat("cron", process_ident())
        assert health(capsys, "--role", "up", "--port", str(port))[0] == 0


def test_a_dispatcher_that_makes_no_progress_makes_the_gateway_unhealthy(settings, redis, capsys, monkeypatch):
    async def stuck(self: Dispatcher) -> None:  # a send that never returns, two minutes ago
        self.last_pass = time.monotonic() - 120
        await asyncio.Event().wait()

    monkeypatch.setattr(Dispatcher, "run", stuck)
    with gateway(settings, redis) as port:
        code, line = health(capsys, "--role", "gateway", "--port", str(port))
    assert code == 1 and "gateway: redis ok, dispatcher stuck: no progress for 120 s" in line
