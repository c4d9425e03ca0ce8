"""What benchmarks share: a scratch Redis database, child processes, percentiles, open-loop load."""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Awaitable, Callable, Iterator
from urllib.parse import urlparse, urlunparse

from redis import Redis

from kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def scratch_url(settings: Settings, given: str | None, db: int = 15) -> str:
    """The Redis the benchmark may flush: --redis-url, else the configured server's db 15."""
    if given:
        return given
    parsed = urlparse(settings.redis_url)
    return urlunparse(parsed._replace(path=f"/{db}"))


def base_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"deputy bench {name}")
    parser.add_argument("--redis-url", help="a Redis database the benchmark may flush (default: db 15 of REDIS_URL)")
    return parser


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def console_token() -> str:
    """A fresh CONSOLE_TOKEN for a gateway child: benchmarks and proofs log in as a script does."""
    return secrets.token_urlsafe(24)


def bearer(token: str) -> dict[str, str]:
    """The console login of a script: `Authorization: Bearer <CONSOLE_TOKEN>` (no cookie, so no CSRF token)."""
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def child(args: list[str], redis_url: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `deputy ...` child process on the scratch database, stopped (SIGTERM, then kill) on exit."""
    full_env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), **env}
    # its log goes to a file nobody has to read: a pipe nobody reads fills up and stops the child mid-run
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=full_env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield proc
    finally:
        log.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def open_loop(rate: float, seconds: float, send: Callable[[int], Awaitable[None]]) -> int:
    """Start send(i) at a fixed rate regardless of how long earlier ones take (no coordinated omission)."""
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    return total


def flush(url: str) -> None:
    Redis.from_url(url).flushdb()
