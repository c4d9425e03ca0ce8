"""One running Deputy for a journey module: `deputy gateway` and one worker as real processes on a Redis
database of their own, in the World of tests/journeys/world.py. Children get a clean environment: no
developer setting reaches them."""
from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from redis import Redis

from harness.fakes.radicale_server import free_port
from kernel.settings import ENV_NAMES, Settings
from tests.journeys.world import TELEGRAM_OPERATORS, ClusterConfig, World
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def deputy_free_env(**extra: str) -> dict[str, str]:
    """The parent's environment without anything Deputy would read as a setting, plus `extra`."""
    # a group's variables are GROUP_FIELD (SMTP_HOST); the documented exceptions are in ENV_NAMES
    names = {name.upper() for name in Settings.model_fields} | set(ENV_NAMES)
    prefixes = tuple(f"{name}_" for name in names)
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.upper().startswith(prefixes)}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **extra}


class JourneyCluster(World):
    """The world, plus `deputy gateway` and one worker (and `deputy cron` if asked) on a Redis database of their own."""

    def __init__(self, folder: Path, config: ClusterConfig, redis_url: str) -> None:
        self.folder = folder
        self.redis_url = redis_url
        self.redis = Redis.from_url(redis_url)
        self.port = free_port()
        self.console_token = secrets.token_urlsafe(24)
        self.workspace = "journeys"
        self.gateway: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.cron: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        # Telegram update ids are unique per bot, whoever sends them
        self.update_ids = itertools.count(int(time.time()))
        self._telegram_users = iter(TELEGRAM_OPERATORS)
        # seconds from nothing to a cluster that answers (set by the fixture that starts it)
        self.started_in_s = 0.0
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder, config)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return deputy_free_env(
            REDIS_URL=self.redis_url, EMBEDDED_REDIS="false", WORKSPACE=self.workspace, DATA_DIR=str(self.folder / "data"),
            CONSOLE_HOST="127.0.0.1", CONSOLE_PORT=str(self.port), CONSOLE_TOKEN=self.console_token,
            INTENT_MPNET="false", JOB_RETRY_BACKOFF="0", **self.settings(), **self.config.env,
        )

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")
        self._logs.append(log)
        return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env=self.env(), cwd=self.folder,
                                stdout=log, stderr=subprocess.STDOUT)

    def log(self, name: str, tail: int = 40) -> str:
        """The last lines a process wrote (gateway, worker, cron): for a failing journey's message."""
        path = self.folder / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.exists() else ""

    def _wait(self, check: Any, what: str, proc_name: str, timeout: float = 60) -> None:
        try:
            wait_for(check, timeout, interval=0.05, what=what)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- {proc_name}.log\n{self.log(proc_name)}") from None

    def start(self) -> "JourneyCluster":
        # all three start at once; each takes seconds to import
        self.gateway = self._spawn("gateway", "gateway")
        self.worker = self._spawn("worker", "worker", "--workers", "1")
        if self.config.cron:
            self.cron = self._spawn("cron", "cron")
        self._wait(self.healthy, f"the gateway on port {self.port}", "gateway")
        self._wait(lambda: self.workers() >= 1, "the worker to register", "worker")
        if self.telegram is not None:
            self._wait(lambda: self.telegram.calls_to("setWebhook"), "the gateway to set its Telegram webhook", "gateway")
        return self

    def next_telegram_operator(self) -> int:
        """An operator id no other TelegramUser of this cluster has: a private chat of its own."""
        user = next(self._telegram_users, None)
        if user is None:
            raise AssertionError(f"a cluster has {len(TELEGRAM_OPERATORS)} Telegram operators; this module wants more")
        return user

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.url}/healthz", timeout=1).status == 200
        except Exception:
            return False

    def workers(self) -> int:
        """Workers registered in Redis (alive, or not yet known to be dead)."""
        return int(self.redis.scard("rq:workers"))

    def start_worker(self) -> None:
        """One worker (`deputy worker --workers 1`); returns once it takes jobs."""
        if self.worker is not None and self.worker.poll() is None:
            raise AssertionError("the worker is already running")
        self.worker = self._spawn("worker", "worker", "--workers", "1")
        self._wait(lambda: self.workers() >= 1, "the worker to register", "worker")

    def stop_worker(self) -> None:
        """Stop the worker as `docker stop` would (SIGTERM: it finishes its job, then leaves); queued work waits."""
        if self.worker is not None:
            _stop(self.worker)
            self.worker = None
        self._wait(lambda: self.workers() == 0, "the worker to leave", "worker", timeout=30)

    def stop(self) -> None:
        for proc in (self.cron, self.worker, self.gateway):
            if proc is not None:
                _stop(proc)
        for log in self._logs:
            log.close()
        self.redis.close()
        World.stop(self)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
