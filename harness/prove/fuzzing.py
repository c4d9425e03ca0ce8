"""Fuzzing the inbound parsers over HTTP with hypothesis: only 2xx/4xx, no crash, nothing queued from
invalid input. The gateway runs as a real process; no worker runs, so every job a request queued is
still there to count. The console fuzzer is logged in (CONSOLE_TOKEN), so its bodies reach the parsers;
a body that is not `application/json` is refused before them (403, or 429 once its source is over the
refusal limit), and that is the right answer to it."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.bench.harness import bearer
from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.report import Row

# what a platform (or an attacker) can put in a JSON body
MAX_TEXT = 8_000


def _strategies() -> Any:
    try:
        from hypothesis import strategies as st
    except ImportError as err:
        raise RuntimeError("fuzzing needs hypothesis: pip install -e '.[test]'") from err
    return st


def json_values(st: Any) -> Any:
    scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=80)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                        max_leaves=12)


def field_values(st: Any) -> Any:
    """Values aimed at the edges of a field's checks: empty, blank, long, odd types, odd characters."""
    return (
        st.text(min_size=1, max_size=60)
        | st.sampled_from(["", " ", "\x00", "/help", "/task add x", "/email a@b.c s | t", "a" * 64, "a" * 65, "a" * 201])
        | st.integers(-5, 10**12)
        | st.booleans()
        | st.none()
        | st.just("x" * MAX_TEXT) | st.just("x" * (MAX_TEXT + 1)) | st.just(" " * 50)
        | json_values(st)
    )


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    accepted_invalid: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    # "accepted" answers, counting a trace accepted twice (two racing deliveries of one id) twice
    accepted_answers: int = 0
    server_errors: list[str] = field(default_factory=list)
    no_answer: int = 0
    # a change not sent as JSON answered with anything but a refusal (403, or 429 past the limit)
    not_refused: list[str] = field(default_factory=list)
    # 401: the fuzzer's login did not hold, so nothing reached the parsers
    unauthorized: int = 0
    non_json: int = 0

    def note(self, status: int, body: bytes, valid: bool, response: bytes, sample: str, json_body: bool = True) -> None:
        self.sent += 1
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(sample[:200])
        if status == 401:
            self.unauthorized += 1
        if not json_body:
            self.non_json += 1
            if status not in (403, 429):
                self.not_refused.append(f"{status} {sample[:200]}")
        if status == 202:
            try:
                data = json.loads(response)
            except ValueError:
                data = {}
            if data.get("status") == "accepted":
                self.accepted_answers += 1
                self.accepted.add(str(data.get("trace_id")))
                if not valid:
                    self.accepted_invalid.append(sample[:200])


class Http:
    """Sends a batch of requests concurrently over keep-alive connections; (status, body), or None for no answer."""

    def __init__(self, port: int, concurrency: int = 16, headers: dict[str, str] | None = None) -> None:
        import asyncio

        import aiohttp

        self.base = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self.limit = asyncio.Semaphore(concurrency)

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                         timeout=aiohttp.ClientTimeout(total=15), headers=headers)

        self.session = self.loop.run_until_complete(open_session())

    def post_many(self, requests: list[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, bytes] | None]:
        import asyncio

        import aiohttp

        async def one(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes] | None:
            async with self.limit:
                try:
                    async with self.session.post(self.base + path, data=body, headers=headers) as resp:
                        return resp.status, await resp.read()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    return None

        async def all_of() -> list[tuple[int, bytes] | None]:
            return list(await asyncio.gather(*(one(*r) for r in requests)))

        return self.loop.run_until_complete(all_of())

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


BATCH = 25


def run_examples(count: int, strategy: Any, check: Callable[[list[Any]], None]) -> None:
    """Draw `count` examples from `strategy`, in batches of BATCH (hypothesis's cost is per test case),
    and give each batch to `check` (which records, never raises)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=max(1, -(-count // BATCH)), database=None, deadline=None, phases=[Phase.generate],
              derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=BATCH, max_size=BATCH))
    def each(batch: list[Any]) -> None:
        check(batch)

    each()


def _text_ok(value: Any, limit: int) -> bool:
    if value is None or value == "" or isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return len(str(value)) <= limit


def console_message_valid(body: Any) -> bool:
    """The console's contract for POST /api/messages, written independently of its code."""
    if not isinstance(body, dict):
        return False
    text = body.get("text")
    return (_text_ok(text, MAX_TEXT) and bool(str(text).strip()) and _text_ok(body.get("thread_id"), 64)
            and _text_ok(body.get("client_id"), 64))


def console_decision_valid(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return (_text_ok(body.get("thread_id"), 64) and _text_ok(body.get("client_id"), 64) and _text_ok(body.get("action"), 64)
            and _text_ok(body.get("value"), 200))


def console_examples(st: Any) -> Any:
    keys = st.sampled_from(["text", "thread_id", "client_id", "action", "value", "title", "user_id", "channel"])
    objects = st.dictionaries(keys, field_values(st), max_size=6)
    shaped = st.fixed_dictionaries({"text": field_values(st), "thread_id": field_values(st), "client_id": field_values(st)},
                                   optional={"action": field_values(st), "value": field_values(st), "user_id": field_values(st)})
    bodies = (
        shaped.map(lambda b: ("json", b))
        | objects.map(lambda b: ("json", b))
        | json_values(st).map(lambda b: ("json", b))
        | st.binary(max_size=300).map(lambda b: ("raw", b))
        | st.text(max_size=200).map(lambda b: ("raw", b.encode("utf-8", "surrogatepass")))
    )
    return st.tuples(st.sampled_from(["/api/messages", "/api/messages", "/api/decisions", "/api/threads"]), bodies,
                     st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))


def fuzz_console(cluster: Cluster, count: int) -> Tally:
    st = _strategies()
    client = Http(cluster.port, headers=bearer(cluster.console_token))
    tally = Tally()

    def check(batch: list[Any]) -> None:
        requests, oracle, ctypes = [], [], []
        for path, (kind, body), ctype in batch:
            raw = json.dumps(body).encode() if kind == "json" else body
            try:
                parsed: Any = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                parsed = None
            valid = {"/api/messages": console_message_valid, "/api/decisions": console_decision_valid}.get(path, lambda b: True)
            requests.append((path, raw, {"Content-Type": ctype} if ctype else {}))
            # (without a Content-Type aiohttp sends application/octet-stream: not JSON either)
            ctypes.append(ctype or "none")
            oracle.append(ctype == "application/json" and valid(parsed))
        for (path, raw, _), valid, ctype, answer in zip(requests, oracle, ctypes, client.post_many(requests)):
            if answer is None:
                tally.no_answer += 1
                continue
            tally.note(answer[0], raw, valid, answer[1], f"{path} {ctype} {raw[:150]!r}", ctype == "application/json")

    try:
        run_examples(count, console_examples(st), check)
    finally:
        client.close()
    return tally


def queued_jobs(cluster: Cluster) -> int:
    from rq import Queue

    from jobs.queues import QUEUES

    redis = cluster.redis.client()
    return sum(Queue(name, connection=redis).count for name in QUEUES)


def fuzz_row(name: str, tally: Tally, jobs: int, seconds: float, refused: int | None = None) -> Row:
    checks = []
    if tally.no_answer:
        checks.append(f"{tally.no_answer} requests got no answer (a crash?)")
    if tally.accepted_invalid:
        checks.append(f"{len(tally.accepted_invalid)} invalid payloads were accepted, e.g. {tally.accepted_invalid[0]}")
    if jobs > tally.accepted_answers:
        checks.append(f"{jobs} jobs queued for {tally.accepted_answers} accepted payloads")
    if tally.not_refused:
        checks.append(f"{len(tally.not_refused)} changes not sent as JSON were not refused, e.g. {tally.not_refused[0]}")
    if refused is not None and refused != tally.non_json:
        checks.append(f"the console counted {refused} refusals for {tally.non_json} changes not sent as JSON")
    if tally.unauthorized:
        checks.append(f"{tally.unauthorized} answered 401: the fuzzer was not logged in, its bodies never reached the parsers")
    if tally.sent and not tally.accepted:
        checks.append("no payload was accepted: nothing reached the parsers (nothing was proven)")
    # the same delivery id accepted twice (two copies racing through the gateway's claim) is a duplicate job
    twice = tally.accepted_answers - len(tally.accepted)
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items()))
    return Row(
        scenario=name,
        attempts=tally.sent + tally.no_answer,
        duplicated=twice,
        errors_5xx=sum(n for code, n in tally.statuses.items() if code >= 500),
        failed_checks=tuple(checks),
        notes=f"{tally.sent} payloads in {seconds:.0f} s → {codes}; {jobs} jobs from {len(tally.accepted)} valid ones"
              + (f" ({twice} accepted twice by racing copies)" if twice else "")
              + (f"; {refused} refusals counted for {tally.non_json} bodies not sent as JSON" if refused is not None else "")
              + (f"; 5xx e.g. {tally.server_errors[0]}" if tally.server_errors else ""),
        details={"statuses": dict(tally.statuses), "jobs": jobs, "accepted": len(tally.accepted),
                 "server_errors": tally.server_errors[:5], "accepted_invalid": tally.accepted_invalid[:5],
                 "not_refused": tally.not_refused[:5], "unauthorized": tally.unauthorized, "non_json": tally.non_json,
                 "refusals_counted": refused},
    )


def console_fuzz(folder: Path, count: int) -> Row:
    redis = PrivateRedis(folder / "redis").start()
    try:
        cluster = Cluster(folder, redis, {}, workers=0)
        cluster.folder.mkdir(parents=True, exist_ok=True)
        cluster.start_gateway()
        try:
            started = time.time()
            tally = fuzz_console(cluster, count)
            seconds = time.time() - started
            jobs = queued_jobs(cluster)
            # a logged-in script is refused only for a body not sent as JSON
            refused = sum(n for reason, n in cluster.refusals().items() if reason.startswith("console:"))
        finally:
            cluster.stop()
    finally:
        redis.stop()
    return fuzz_row("fuzz: console API", tally, jobs, seconds, refused)
