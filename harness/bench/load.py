"""`deputy bench load`: sustained mixed traffic (chat, button clicks, signed webhooks) against a real
gateway and two workers on a private Redis, beside single-message figures from the same run.

Offered open-loop (on schedule, whatever earlier requests are doing). End-to-end is from the POST to
the reply reaching the console's live channel, for chat, clicks and hooks alike."""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from bot.async_redis import async_redis

from harness.bench.harness import base_parser, bearer, open_loop, percentile
from harness.prove.cluster import Cluster, PrivateRedis
from kernel.settings import Settings
from kernel.keys import Keys

HOOK, HOOK_SECRET = "load", "bench-load-secret"


def _hook_request(i: int) -> tuple[bytes, dict[str, str]]:
    from integrations.webhooks import SIGNATURE_HEADER, sign

    body = json.dumps({"id": f"order-{i}-{uuid.uuid4().hex[:6]}", "type": "order", "total": i}).encode()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(HOOK_SECRET, body, int(time.time()))}


class Load:
    def __init__(self, url: str, token: str, redis_url: str, workspace: str) -> None:
        self.url = url
        self.console = {"Content-Type": "application/json", **bearer(token)}
        self.redis_url = redis_url
        self.workspace = workspace
        self.sent_at: dict[str, float] = {}
        self.kind_of: dict[str, str] = {}
        self.replies: dict[str, float] = {}
        self.acks: dict[str, list[float]] = {"chat": [], "click": [], "hook": []}
        self.errors: dict[str, int] = {}
        self.tasks: list[str] = []

    async def listen(self, ready: asyncio.Event) -> None:
        aredis = async_redis(self.redis_url)
        pubsub = aredis.pubsub()
        await pubsub.subscribe(Keys(self.workspace)("console", "live"))
        ready.set()
        try:
            async for item in pubsub.listen():
                if item["type"] != "message":
                    continue
                message = json.loads(item["data"])["message"]
                if message["role"] == "deputy" and message["trace_id"] not in self.replies:
                    self.replies[message["trace_id"]] = time.perf_counter()
                    card = message.get("card") or {}
                    for button in card.get("buttons", []):
                        if button.get("action") == "task.done":
                            self.tasks.append(button["value"])
        finally:
            await pubsub.aclose()
            await aredis.aclose()

    async def post(self, http: aiohttp.ClientSession, kind: str, path: str, data: bytes, headers: dict[str, str],
                   record: bool = True) -> str | None:
        start = time.perf_counter()
        try:
            async with http.post(self.url + path, data=data, headers=headers) as resp:
                body = await resp.json(content_type=None)
                if resp.status >= 300:
                    self.errors[f"{kind} {resp.status}"] = self.errors.get(f"{kind} {resp.status}", 0) + 1
                    return None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            self.errors[f"{kind} {type(err).__name__}"] = self.errors.get(f"{kind} {type(err).__name__}", 0) + 1
            return None
        if record:
            self.acks[kind].append((time.perf_counter() - start) * 1000)
        trace = str(body.get("trace_id"))
        self.sent_at[trace], self.kind_of[trace] = start, kind
        return trace

    async def chat(self, http: aiohttp.ClientSession, i: int, record: bool = True) -> str | None:
        text = f"/task add follow up lead {i}" if i % 2 else f"/remember load note {i} {uuid.uuid4().hex[:6]}"
        body = json.dumps({"thread_id": f"load-{i % 20}", "text": text, "client_id": uuid.uuid4().hex}).encode()
        return await self.post(http, "chat", "api/messages", body, self.console, record)

    async def click(self, http: aiohttp.ClientSession, i: int) -> None:
        if not self.tasks:
            await self.chat(http, i)
            return
        body = json.dumps({"thread_id": f"load-{i % 20}", "action": "task.done", "value": self.tasks.pop(0),
                           "client_id": uuid.uuid4().hex}).encode()
        await self.post(http, "click", "api/decisions", body, self.console)

    async def hook(self, http: aiohttp.ClientSession, i: int) -> None:
        body, headers = _hook_request(i)
        await self.post(http, "hook", f"hooks/{HOOK}", body, headers)

    async def wait_replies(self, traces: list[str], timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline and any(t not in self.replies for t in traces):
            await asyncio.sleep(0.05)

    def e2e(self, traces: list[str]) -> list[float]:
        return [(self.replies[t] - self.sent_at[t]) * 1000 for t in traces if t in self.replies]


async def _measure(cluster: Cluster, rate: float, seconds: float, singles: int) -> dict[str, Any]:
    load = Load(cluster.url, cluster.console_token, cluster.redis.url(), cluster.workspace)
    ready = asyncio.Event()
    listener = asyncio.create_task(load.listen(ready))
    await ready.wait()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=300), timeout=aiohttp.ClientTimeout(total=30)) as http:
        # warm up: the first jobs of a worker load its models and connections
        for i in range(3):
            trace = await load.chat(http, 20_000 + i, record=False)
            if trace:
                await load.wait_replies([trace], 20)
        # one message at a time, each waiting for its reply: the figures a lone operator sees
        single_acks, single_traces = [], []
        for i in range(singles):
            start = time.perf_counter()
            trace = await load.chat(http, 10_000 + i, record=False)
            single_acks.append((time.perf_counter() - start) * 1000)
            if trace:
                single_traces.append(trace)
                await load.wait_replies([trace], 10)
        before = set(load.sent_at)

        async def mixed(i: int) -> None:
            # 7 of 10 chat, 2 clicks on task cards, 1 signed webhook
            slot = i % 10
            if slot < 7:
                await load.chat(http, i)
            elif slot < 9:
                await load.click(http, i)
            else:
                await load.hook(http, i)

        started = time.perf_counter()
        offered = await open_loop(rate, seconds, mixed)
        traces = [t for t in load.sent_at if t not in before]
        await load.wait_replies(traces, 60)
        drained = time.perf_counter() - started
        rss = cluster.rss()
    listener.cancel()
    e2e_all = load.e2e(traces)
    by_kind = {kind: load.e2e([t for t in traces if load.kind_of[t] == kind]) for kind in ("chat", "click", "hook")}
    acks = [a for v in load.acks.values() for a in v]
    single_e2e = load.e2e(single_traces)
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "requests": offered,
        "mix": {k: len(v) for k, v in by_kind.items()},
        "errors": sum(load.errors.values()),
        "error_kinds": load.errors,
        "ack_p50_ms": round(percentile(acks, 50), 2),
        "ack_p99_ms": round(percentile(acks, 99), 2),
        "e2e_p50_ms": round(percentile(e2e_all, 50), 2),
        "e2e_p99_ms": round(percentile(e2e_all, 99), 2),
        "e2e_p50_ms_by_kind": {k: round(percentile(v, 50), 2) for k, v in by_kind.items()},
        "replies_missing": len(traces) - len(e2e_all),
        "jobs_per_s": round(len(e2e_all) / drained, 1),
        "single_ack_p50_ms": round(percentile(single_acks, 50), 2),
        "single_e2e_p50_ms": round(percentile(single_e2e, 50), 2),
        "single_e2e_p99_ms": round(percentile(single_e2e, 99), 2),
        "rss_mb": rss,
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("load")
    parser.add_argument("--rate", type=float, default=40, help="offered requests per second (mixed)")
    parser.add_argument("--seconds", type=float, default=20, help="how long to offer it")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--singles", type=int, default=20, help="one-at-a-time messages measured first")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="deputy-bench-load-"))
    # its own redis-server (append-only, as `deputy up` runs it): nothing of anyone else's is flushed
    redis = PrivateRedis(folder / "redis").start()
    try:
        hooks = {"INBOUND_HOOKS": json.dumps({HOOK: HOOK_SECRET}), "JOB_RETRIES": "0"}
        with Cluster(folder, redis, hooks, workers=args.workers).start() as cluster:
            result = asyncio.run(_measure(cluster, args.rate, args.seconds, args.singles))
    finally:
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return result
