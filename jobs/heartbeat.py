"""Heartbeats: each worker and cron process says in Redis, every few seconds, that it is alive and whether it
can answer yet; `deputy health --role worker|cron` reads them, and a container's probe checks its own processes.

One Redis hash per role, a field per process ("<host>:<pid>"), the value JSON {"at", "ready", "detail"}.
Keys are global: one Redis database serves one workspace, and processes serve the database."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from redis import Redis
from redis.exceptions import RedisError

from kernel.keys import Keys

log = logging.getLogger("deputy.heartbeat")

# a process silent this long is gone for good (a crash, an old container): its field is dropped when another beats,
# and a role nobody beats for any more expires as a whole
FORGET_AFTER_S = 3_600


def process_ident(host: str | None = None, pid: int | None = None) -> str:
    """This process as heartbeats name it: "<host>:<pid>" (the host is the container's name under Docker)."""
    return f"{host or socket.gethostname()}:{pid or os.getpid()}"


def host_of(ident: str) -> str:
    return ident.rsplit(":", 1)[0]


class Heartbeats:
    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    @staticmethod
    def key(role: str) -> str:
        return Keys.global_("heartbeat", role)

    def beat(self, role: str, ident: str, ready: bool = True, detail: str = "") -> None:
        """Say that process `ident` of `role` is alive now, and whether it is ready (`detail` says why not)."""
        now = self.clock()
        key = self.key(role)
        stale = [name for name, beat in self._read(key) if now - beat["at"] > FORGET_AFTER_S]
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, ident, json.dumps({"at": now, "ready": ready, "detail": detail}))
            if stale:
                pipe.hdel(key, *stale)
            pipe.expire(key, FORGET_AFTER_S)
            pipe.execute()

    def alive(self, role: str, max_age_s: float) -> list[dict[str, Any]]:
        """The processes of `role` that beat within the last `max_age_s` seconds, each {"ident", "at", "ready", "detail"}."""
        now = self.clock()
        return sorted(({"ident": name, **beat} for name, beat in self._read(self.key(role)) if now - beat["at"] <= max_age_s),
                      key=lambda beat: beat["ident"])

    def ready(self, role: str, max_age_s: float) -> bool:
        """True when an alive process of `role` is ready (a worker: it can answer free text)."""
        return any(beat["ready"] for beat in self.alive(role, max_age_s))

    def forget(self, role: str, ident: str) -> None:
        """A process that stops says so, so no probe takes it for alive in its last seconds."""
        self.redis.hdel(self.key(role), ident)

    def _read(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        beats = []
        for name, raw in self.redis.hgetall(key).items():
            try:
                beat = json.loads(raw)
                beat = {"at": float(beat["at"]), "ready": bool(beat.get("ready", True)), "detail": str(beat.get("detail", ""))}
            except (ValueError, KeyError, TypeError):
                continue  # not written by beat(); ignored rather than failing every probe
            beats.append((name.decode() if isinstance(name, bytes) else str(name), beat))
        return beats


class Pulse:
    """This process's heartbeat. Its own loop beats through `beat_if_due` (rq's worker heartbeat, the cron loop), so a
    stuck loop goes stale; `warming` beats from a thread while start-up work holds the loop (loading models, waiting
    for Weaviate). `mark` changes what the beats say: a worker beats ready=False until it can answer. Used as a
    context manager: it beats on entry and removes its field on exit."""

    def __init__(self, heartbeats: Heartbeats, role: str, every_s: float, ident: str | None = None,
                 ready: bool = True, detail: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeats = heartbeats
        self.role = role
        self.every_s = every_s
        self.ident = ident or process_ident()
        self.ready = ready
        self.detail = detail
        self.clock = clock
        self._last = float("-inf")
        self._warned = False

    def mark(self, ready: bool, detail: str = "") -> None:
        """What this process is now (ready, or why not), sent at once."""
        self.ready, self.detail = ready, detail
        self.send()

    def beat_if_due(self) -> None:
        if self.clock() - self._last >= self.every_s:
            self.send()

    def send(self) -> None:
        self._last = self.clock()
        try:
            self.heartbeats.beat(self.role, self.ident, self.ready, self.detail)
            self._warned = False
        except RedisError as err:  # Redis away: the probe says unhealthy; the process carries on and beats again
            if not self._warned:
                log.warning("%s %s: could not send a heartbeat (%s); trying again every %.0f s", self.role, self.ident, err,
                            self.every_s)
            self._warned = True

    @contextmanager
    def warming(self) -> Iterator["Pulse"]:
        """Beats from a thread while the block runs: start-up work that keeps the process's loop from beating."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(self.every_s):
                self.send()

        thread = threading.Thread(target=run, name=f"deputy-{self.role}-heartbeat", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(5)

    def __enter__(self) -> "Pulse":
        self.send()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.heartbeats.forget(self.role, self.ident)
        except RedisError:
            pass  # its beats go stale on their own
