"""`deputy bench slack`: signed Slack events at a fixed offered load against the running gateway.

The gateway runs as a child process (`deputy gateway`, Slack channel on, on a scratch Redis database)
and a bare aiohttp handler that only reads the body and answers 200 runs as a second child: the same
load is offered open-loop to both, so the ratio shows what signature checking, bolt and the durable
write cost on this machine. A local stub answers bolt's one auth.test call; nothing leaves loopback."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

import aiohttp
from aiohttp import web
from redis import Redis
from slack_sdk.signature import SignatureVerifier

from bot.bench.harness import ROOT, base_parser, child, flush, free_port, open_loop, percentile, scratch_url, wait_for
from bot.settings import Settings

SECRET = "bench-signing-secret"
OPERATOR = "UBENCH01"
BOT_USER = "UDEPUTY01"
TARGET_P99_MS = 50.0
TARGET_RATIO = 3.0


def serve_bare(port: int) -> None:
    """The baseline: an aiohttp handler that reads the request and answers 200, nothing else."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")

    app = web.Application()
    app.add_routes([web.post("/slack/events", handle), web.get("/healthz", lambda r: handle(r))])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _slack_stub(port: int) -> web.AppRunner:
    async def api(request: web.Request) -> web.Response:
        if request.match_info["method"] == "auth.test":
            return web.json_response({"ok": True, "team_id": "TBENCH", "user_id": BOT_USER, "bot_id": "BBENCH", "user": "deputy"})
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes([web.post("/api/{method}", api)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _event(run: str, i: int) -> str:
    ts = f"{int(time.time())}.{i:06d}"
    return json.dumps({
        "token": "bench", "team_id": "TBENCH", "api_app_id": "ABENCH", "type": "event_callback",
        "event_id": f"Ev{run}{i:07d}", "event_time": int(time.time()),
        "event": {"type": "message", "channel_type": "im", "channel": "DBENCH", "user": OPERATOR, "ts": ts,
                  "text": f"/remember bench note {i}", "event_ts": ts},
    })


async def _offer(url: str, run: str, rate: float, seconds: float) -> tuple[list[float], int, float, int]:
    """(ack latencies in ms, failures, achieved events/s, 200s including warm-up) for `rate` signed events/s."""
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as session:

        async def send(i: int) -> None:
            nonlocal failures
            body = _event(run, i)
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)}
            start = time.perf_counter()
            try:
                async with session.post(url, data=body.encode(), headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                failures += 1

        await open_loop(min(rate, 20), 1, lambda i: send(10_000_000 - 1 - i))  # warm-up: connections, bolt's auth.test
        warm = len(latencies)
        latencies.clear()
        started = time.perf_counter()
        await open_loop(rate, seconds, send)
        elapsed = time.perf_counter() - started
    return latencies, failures, len(latencies) / elapsed if elapsed else 0.0, warm + len(latencies)


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except Exception:
        return False


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("slack")
    parser.add_argument("--rate", type=float, default=100, help="offered Slack events per second")
    parser.add_argument("--seconds", type=float, default=10, help="how long to offer that load")
    args = parser.parse_args(argv)
    redis_url = scratch_url(settings, args.redis_url)
    flush(redis_url)
    gateway_port, bare_port, stub_port = free_port(), free_port(), free_port()
    env = {
        "CONSOLE_PORT": str(gateway_port), "CONSOLE_HOST": "127.0.0.1", "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": f"http://127.0.0.1:{stub_port}/api/", "SLACK_OPERATORS": OPERATOR,
        # only the Slack channel: no Socket Mode, no Telegram, whatever the environment says
        "SLACK_APP_TOKEN": "", "TELEGRAM_BOT_TOKEN": "",
    }
    bare = subprocess.Popen([sys.executable, "-c", f"from bot.bench.slack import serve_bare; serve_bare({bare_port})"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loop = asyncio.new_event_loop()
    stub = loop.run_until_complete(_slack_stub(stub_port))
    try:
        with child(["gateway"], redis_url, **env):
            wait_for(lambda: _answers(f"http://127.0.0.1:{gateway_port}/healthz"), 30, "the gateway to answer")
            wait_for(lambda: _answers(f"http://127.0.0.1:{bare_port}/healthz"), 30, "the bare handler to answer")
            bare_ms, bare_failed, bare_rate, _ = loop.run_until_complete(
                _offer(f"http://127.0.0.1:{bare_port}/slack/events", "B", args.rate, args.seconds))
            ms, failed, achieved, acked = loop.run_until_complete(
                _offer(f"http://127.0.0.1:{gateway_port}/slack/events", "G", args.rate, args.seconds))
            queued = Redis.from_url(redis_url).llen("rq:queue:interactive")
    finally:
        loop.run_until_complete(stub.cleanup())
        loop.close()
        bare.terminate()
        bare.wait(10)
        flush(redis_url)
    p99, bare_p99 = percentile(ms, 99), percentile(bare_ms, 99)
    return {
        "offered_rate": args.rate,
        "seconds": args.seconds,
        "events": len(ms) + failed,
        "events_per_s": round(achieved, 1),
        "failed": failed,
        # every acked event must be a queued job: the 200 comes only after the durable write
        "acked": acked,
        "jobs_queued": queued,
        "ack_p50_ms": round(percentile(ms, 50), 2),
        "ack_p99_ms": round(p99, 2),
        "ack_max_ms": round(max(ms), 2) if ms else None,
        "bare_events_per_s": round(bare_rate, 1),
        "bare_failed": bare_failed,
        "bare_ack_p50_ms": round(percentile(bare_ms, 50), 2),
        "bare_ack_p99_ms": round(bare_p99, 2),
        "p99_ratio": round(p99 / bare_p99, 2) if bare_p99 else None,
        "target": f"ack p99 < {TARGET_P99_MS:.0f} ms and within {TARGET_RATIO:.0f}x of bare",
        "target_met": bool(ms) and not failed and queued == acked and p99 < TARGET_P99_MS and p99 <= TARGET_RATIO * bare_p99,
    }
