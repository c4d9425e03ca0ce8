"""`deputy bench gateway`: console-endpoint ack latency at a fixed offered load, and message→reply latency.

The gateway and one worker run as child processes on a scratch Redis database; this process offers
load open-loop (sends on schedule whatever the previous requests are doing) and listens for replies
on the console's live channel."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
from redis import Redis as SyncRedis
from bot.async_redis import async_redis
from rq import Queue
from rq.suspension import resume, suspend

from harness.bench.harness import (base_parser, bearer, child, console_token, flush, free_port, open_loop, percentile, scratch_url,
                               wait_for)
from kernel.settings import Settings
from jobs.queues import QUEUES
from kernel.keys import Keys


async def _measure(url: str, token: str, redis_url: str, workspace: str, rate: float, seconds: float, reply_rate: float,
                   reply_seconds: float) -> dict[str, Any]:
    acks: list[float] = []
    sent_at: dict[str, float] = {}
    replies: dict[str, float] = {}
    errors: Counter[str] = Counter()  # by status, or by exception for no answer
    aredis = async_redis(redis_url)
    pubsub = aredis.pubsub()
    await pubsub.subscribe(Keys(workspace)("console", "live"))

    async def listen() -> None:
        async for item in pubsub.listen():
            if item["type"] != "message":
                continue
            # the live channel also carries status signs ("Working on it…") and drafts as they grow: only messages count
            message = json.loads(item["data"]).get("message")
            if message and message["role"] == "deputy" and message["trace_id"] not in replies:
                replies[message["trace_id"]] = time.perf_counter()

    listener = asyncio.create_task(listen())
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector, headers=bearer(token)) as session:

        def sender(phase: str):  # type: ignore[no-untyped-def]
            async def send(i: int) -> None:
                body = {"thread_id": f"bench-{phase}-{i % 50}", "text": f"/remember bench note {phase} {i} {uuid.uuid4().hex[:6]}",
                        "client_id": uuid.uuid4().hex}
                start = time.perf_counter()
                try:
                    async with session.post(url + "api/messages", json=body) as resp:
                        data = await resp.json(content_type=None)
                        if resp.status != 202:
                            errors[str(resp.status)] += 1
                            return
                except aiohttp.ClientError as err:
                    errors[type(err).__name__] += 1
                    return
                done = time.perf_counter()
                if phase == "load":
                    acks.append((done - start) * 1000)
                sent_at[data["trace_id"]] = start

            return send

        # warm up connections and code paths
        await open_loop(20, 1, sender("warm"))
        # The ack phase measures the gateway alone: workers are paused (rq suspend) so that on a
        # 2-core machine their CPU does not stand in the gateway's queue; what it queues is dropped after.
        sync = SyncRedis.from_url(redis_url)
        suspend(sync)
        offered = await open_loop(rate, seconds, sender("load"))
        load_traces = set(sent_at)
        for name in QUEUES:
            Queue(name, connection=sync).empty()
        resume(sync)
        await asyncio.sleep(1)
        # message→reply at a rate one worker keeps up with
        await open_loop(reply_rate, reply_seconds, sender("reply"))
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline and any(t not in replies for t in sent_at):
            await asyncio.sleep(0.1)
    listener.cancel()
    await pubsub.aclose()
    await aredis.aclose()
    reply_ms = [(replies[t] - sent_at[t]) * 1000 for t in sent_at if t not in load_traces and t in replies]
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "requests": offered,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "ack_p50_ms": round(percentile(acks, 50), 2),
        "ack_p99_ms": round(percentile(acks, 99), 2),
        "ack_max_ms": round(max(acks), 2) if acks else None,
        "reply_rate": reply_rate,
        "reply_p50_ms": round(percentile(reply_ms, 50), 2),
        "reply_p99_ms": round(percentile(reply_ms, 99), 2),
        "replies_missing": sum(1 for t in sent_at if t not in replies and t not in load_traces),
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("gateway")
    parser.add_argument("--rate", type=float, default=200, help="offered messages per second for the ack measurement")
    parser.add_argument("--seconds", type=float, default=10, help="how long to offer that load")
    parser.add_argument("--reply-rate", type=float, default=10, help="messages per second for the message→reply measurement")
    parser.add_argument("--reply-seconds", type=float, default=5)
    args = parser.parse_args(argv)
    redis_url = scratch_url(settings, args.redis_url)
    flush(redis_url)
    port = free_port()
    token = console_token()
    env = {"CONSOLE_PORT": str(port), "CONSOLE_HOST": "127.0.0.1", "CONSOLE_TOKEN": token, "JOB_RETRIES": "0"}
    with child(["gateway"], redis_url, **env), child(["worker", "--workers", "1"], redis_url, **env):
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            import urllib.request

            try:
                return urllib.request.urlopen(url + "healthz", timeout=1).status == 200
            except Exception:
                return False

        wait_for(up, 30, "the gateway to answer")
        time.sleep(1.0)  # the worker registers
        result = asyncio.run(_measure(url, token, redis_url, settings.workspace, args.rate, args.seconds, args.reply_rate,
                                      args.reply_seconds))
    flush(redis_url)
    return result
