"""`deputy up` as a user meets it: how long until it prints the console link, how long after that the
first free-text message is answered, and what each worker then holds in memory.

The link is read from `deputy up`'s output; messages go in through the console API with the
CONSOLE_TOKEN bearer, and answers come back on the console's live stream (/api/stream), as the
browser sees them. Memory is the proportional set size (/proc/PID/smaps_rollup): a page that several
processes map (model files, the interpreter) counts once in total, shared among them."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import aiohttp

from bot.status import STALLED
from harness.bench.harness import ROOT, bearer, console_token, free_port

LINK = "Deputy is up: open "


@dataclass
class Up:
    """A `deputy up` child: its process, console URL, token, and when it printed its link."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    started: float
    linked: float = 0.0
    log: Path = field(default=Path())


@contextmanager
def deputy_up(redis_url: str, workers: int, timeout_s: float, **env: str) -> Iterator[Up]:
    """`deputy up --workers N` on a scratch Redis database and data folder, stopped (SIGTERM, then kill) on exit."""
    port, token = free_port(), console_token()
    with tempfile.TemporaryDirectory(prefix="deputy-bench-") as data:
        log = Path(data) / "up.log"
        full_env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "DATA_DIR": data, "CONSOLE_HOST": "127.0.0.1",
                    "CONSOLE_TOKEN": token, "JOB_RETRIES": "0", **env}
        with log.open("w") as errors:
            started = time.perf_counter()
            # a session of its own: stopping it stops every process it started, whatever state they are in
            proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "up", "--workers", str(workers), "--port", str(port)],
                                    env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True,
                                    start_new_session=True)
            up = Up(proc, f"http://127.0.0.1:{port}/", token, started, log=log)
            try:
                up.linked = _wait_for_link(proc.stdout, timeout_s, log)
                yield up
            finally:
                _stop(proc)


def _wait_for_link(stdout: IO[str] | None, timeout_s: float, log: Path) -> float:
    assert stdout is not None
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        line = stdout.readline()
        if not line:
            break
        if line.startswith(LINK):
            return time.perf_counter()
    raise TimeoutError(f"deputy up printed no console link within {timeout_s:.0f} s; its log: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to `deputy up`'s process group (it stops its workers and cron), SIGKILL to what is left after a minute."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Console:
    """The console API as the browser uses it: post a message, wait for Deputy's answer on the live stream."""

    def __init__(self, up: Up) -> None:
        self.up = up
        self.answers: dict[str, asyncio.Future[float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Console":
        self._session = aiohttp.ClientSession(headers=bearer(self.up.token))
        stream = await self._open_stream()
        await stream.content.readline()  # ": connected"
        self._reader = asyncio.create_task(self._read(stream))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()

    async def _open_stream(self, timeout_s: float = 60) -> aiohttp.ClientResponse:
        """The live stream, as soon as the console answers: a link printed before its server listens (as Deputy did
        before it waited for a worker) is tried again, as a user reloads the page, and that time counts."""
        assert self._session is not None
        deadline = time.perf_counter() + timeout_s
        while True:
            try:
                return await self._session.get(self.up.url + "api/stream", timeout=aiohttp.ClientTimeout(total=None))
            except aiohttp.ClientConnectionError:
                if time.perf_counter() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def ask(self, text: str, timeout_s: float) -> float:
        """When (time.perf_counter) Deputy's first answer to `text` arrived."""
        assert self._session is not None
        body = {"thread_id": "bench-intents", "text": text, "client_id": uuid.uuid4().hex}
        async with self._session.post(self.up.url + "api/messages", json=body) as resp:
            if resp.status != 202:
                raise RuntimeError(f"the console refused the message: {resp.status} {await resp.text()}")
            trace = (await resp.json())["trace_id"]
        answered = self.answers.setdefault(trace, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(answered, timeout_s)

    async def _read(self, stream: aiohttp.ClientResponse) -> None:
        async for raw in stream.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            message = event.get("message") or {}
            if event.get("type") != "message" or message.get("role") != "deputy" or message.get("text") == STALLED:
                continue
            answered = self.answers.setdefault(message.get("trace_id", ""), asyncio.get_running_loop().create_future())
            if not answered.done():
                answered.set_result(time.perf_counter())


def worker_pids(up_pid: int) -> tuple[list[int], list[int]]:
    """The worker pool processes of a `deputy up`, and their children, the workers (each worker's own scheduler
    process, a child of the worker, is neither)."""
    pools = [pid for pid in _children(up_pid) if " worker" in _cmdline(pid)]
    return pools, sorted(pid for pool in pools for pid in _children(pool))


def pss_mb(pid: int) -> float:
    """Proportional set size: private pages, plus each shared page divided by the processes sharing it."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss line for process {pid}")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
