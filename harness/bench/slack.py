"""`deputy bench slack`: signed Slack events at a fixed offered load against the running gateway.

The gateway runs as a child process (`deputy gateway`, Slack channel on, on a scratch Redis database)
and a bare aiohttp handler that only reads the body and answers 200 runs as a second child: the same
load is offered open-loop to both, so the ratio shows what signature checking, bolt and the durable
write cost on this machine. A local stub answers bolt's one auth.test call; nothing leaves loopback."""
from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import aiohttp
from aiohttp import web
from redis import Redis
from slack_sdk.signature import SignatureVerifier

from harness.bench.harness import ROOT, base_parser, child, flush, free_port, open_loop, percentile, scratch_url, wait_for
from bot.server import new_event_loop
from kernel.settings import Settings

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
    # the gateway's own runtime settings (event loop, frozen heap), so the ratio compares handlers
    gc.freeze()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop())


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


async def _offer(session: aiohttp.ClientSession, url: str, run: str, first: int, rate: float, seconds: float) -> tuple[list[float], int]:
    """(ack latencies in ms, failures) for `rate` signed events/s over `seconds`, event ids from `first` on."""
    verifier = SignatureVerifier(SECRET)
    latencies: list[float] = []
    failures = 0

    async def send(i: int) -> None:
        nonlocal failures
        body = _event(run, first + i)
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

    await open_loop(rate, seconds, send)
    return latencies, failures


async def _compare(gateway_url: str, bare_url: str, rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    """Offer the same load to both, alternating in short rounds so both see the same machine."""
    results: dict[str, list[float]] = {"gateway": [], "bare": []}
    failed = {"gateway": 0, "bare": 0}
    busy = {"gateway": 0.0, "bare": 0.0}
    per_round = seconds / rounds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as session:
        warm = {}
        for name, url in (("gateway", gateway_url), ("bare", bare_url)):  # warm-up: connections, bolt's auth.test
            warm[name] = len((await _offer(session, url, "W" + name[0], 9_000_000, min(rate, 20), 1))[0])
        for r in range(rounds):
            for name, url in (("gateway", gateway_url), ("bare", bare_url)):
                started = time.perf_counter()
                ms, bad = await _offer(session, url, name[0].upper(), r * 1_000_000, rate, per_round)
                busy[name] += time.perf_counter() - started
                results[name] += ms
                failed[name] += bad
    return {"ms": results, "failed": failed, "warm": warm, "rate": {k: len(v) / busy[k] if busy[k] else 0.0 for k, v in results.items()}}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux), or nan elsewhere."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except Exception:
        return False


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("slack")
    parser.add_argument("--rate", type=float, default=100, help="offered Slack events per second")
    parser.add_argument("--seconds", type=float, default=10, help="how long to offer that load (to each server)")
    parser.add_argument("--rounds", type=int, default=5, help="alternate gateway and bare handler this many times")
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
    bare = subprocess.Popen([sys.executable, "-c", f"from harness.bench.slack import serve_bare; serve_bare({bare_port})"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loop = asyncio.new_event_loop()
    stub = loop.run_until_complete(_slack_stub(stub_port))
    try:
        with child(["gateway"], redis_url, **env) as gateway:
            wait_for(lambda: _answers(f"http://127.0.0.1:{gateway_port}/healthz"), 30, "the gateway to answer")
            wait_for(lambda: _answers(f"http://127.0.0.1:{bare_port}/healthz"), 30, "the bare handler to answer")
            load_before = os.getloadavg()[0]
            cpu_before = _cpu_s(gateway.pid)
            compared = loop.run_until_complete(_compare(
                f"http://127.0.0.1:{gateway_port}/slack/events", f"http://127.0.0.1:{bare_port}/slack/events",
                args.rate, args.seconds, args.rounds))
            cpu_used = _cpu_s(gateway.pid) - cpu_before
            queued = Redis.from_url(redis_url).llen("rq:queue:interactive")
    finally:
        loop.run_until_complete(stub.cleanup())
        loop.close()
        bare.terminate()
        bare.wait(10)
        flush(redis_url)
    ms, bare_ms = compared["ms"]["gateway"], compared["ms"]["bare"]
    failed, bare_failed = compared["failed"]["gateway"], compared["failed"]["bare"]
    acked = len(ms) + compared["warm"]["gateway"]
    p99, bare_p99 = percentile(ms, 99), percentile(bare_ms, 99)
    return {
        "offered_rate": args.rate,
        "seconds": args.seconds,
        "events": len(ms) + failed,
        "events_per_s": round(compared["rate"]["gateway"], 1),
        "failed": failed,
        # every acked event must be a queued job: the 200 comes only after the durable write
        "acked": acked,
        "jobs_queued": queued,
        "ack_p50_ms": round(percentile(ms, 50), 2),
        "ack_p99_ms": round(p99, 2),
        "ack_max_ms": round(max(ms), 2) if ms else None,
        # what one event costs the gateway process, whatever else the machine is doing
        "gateway_cpu_ms_per_event": round(cpu_used * 1000 / acked, 2) if acked else None,
        "bare_events_per_s": round(compared["rate"]["bare"], 1),
        "bare_failed": bare_failed,
        "bare_ack_p50_ms": round(percentile(bare_ms, 50), 2),
        "bare_ack_p99_ms": round(bare_p99, 2),
        "p99_ratio": round(p99 / bare_p99, 2) if bare_p99 else None,
        # other work on the machine shows up in both columns alike; this says how busy it was
        "load_avg_1m": round(load_before, 2),
        "target": f"ack p99 < {TARGET_P99_MS:.0f} ms and within {TARGET_RATIO:.0f}x of bare",
        "target_met": bool(ms) and not failed and queued == acked and p99 < TARGET_P99_MS and p99 <= TARGET_RATIO * bare_p99,
    }
