"""`deputy health --role ROLE`: is this machine's (or container's) part of Deputy healthy? Exit 0 or 1, and one line
saying why. Docker's HEALTHCHECK and compose's healthchecks run it in each container.

gateway: its /healthz (Redis answers, the outbox dispatcher makes progress). worker, cron: a fresh heartbeat in Redis
from a process on this host (a container checks itself, not the fleet); a worker must also be ready to answer."""
from __future__ import annotations

import argparse
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from jobs.heartbeat import Heartbeats, host_of
from kernel.settings import Settings

ROLES = ("up", "gateway", "worker", "cron")
# a probe answers within Docker's timeout, or says why not
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    ok: bool
    line: str


def health_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=ROLES,
                        help="what this container runs: gateway, worker, cron, or up (all three)")
    parser.add_argument("--port", type=int, help="the gateway's port (default CONSOLE_PORT, 8700)")


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    checks: list[Check] = []
    if args.role in ("up", "gateway"):
        checks.append(check_gateway(gateway_url(settings, args.port)))
    if args.role in ("up", "worker", "cron"):
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
        try:
            for role in ("worker", "cron") if args.role == "up" else (args.role,):
                checks.append(check_heartbeats(Heartbeats(redis), role, socket.gethostname(), settings.health.stale_s))
        finally:
            redis.close()
    ok = all(check.ok for check in checks)
    print(f"{'healthy' if ok else 'unhealthy'}: " + "; ".join(check.line for check in checks), flush=True)
    return 0 if ok else 1


def gateway_url(settings: Settings, port: int | None = None) -> str:
    host = settings.console.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{'[' + host + ']' if ':' in host else host}:{port or settings.console.port}/healthz"


def check_gateway(url: str) -> Check:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body, status = response.read(), response.status
    except urllib.error.HTTPError as err:  # 503 carries the state of each part
        body, status = err.read(), err.code
    except (OSError, ValueError) as err:
        return Check(False, f"gateway: nothing answers at {url} ({getattr(err, 'reason', err)}); is `deputy gateway` running?")
    try:
        state = json.loads(body)
        parts = f"redis {state['redis']}, dispatcher {state['dispatcher']}"
    except (ValueError, KeyError, TypeError):
        parts = f"HTTP {status}, not Deputy's /healthz"
        state = {}
    return Check(status == 200 and state.get("ok") is True, f"gateway: {parts}")


def check_heartbeats(heartbeats: Heartbeats, role: str, host: str, stale_s: float) -> Check:
    """Healthy when a process of `role` on `host` beat within `stale_s` seconds and says it is ready."""
    try:
        alive = heartbeats.alive(role, stale_s)
    except RedisError as err:
        return Check(False, f"{role}: Redis did not answer ({err}); the {role} needs it to take or schedule work")
    here = [beat for beat in alive if host_of(beat["ident"]) == host]
    if not here:
        elsewhere = f" ({len(alive)} on other hosts)" if alive else ""
        return Check(False, f"{role}: no heartbeat from a {role} on {host} in the last {stale_s:.0f} s{elsewhere}; "
                            f"is `deputy {role}` running?")
    ready = [beat for beat in here if beat["ready"]]
    age = time.time() - max(beat["at"] for beat in here)
    if not ready:
        return Check(False, f"{role}: {len(here)} alive on {host}, none ready yet: {here[0]['detail'] or 'starting'}")
    return Check(True, f"{role}: {len(ready)} of {len(here)} ready on {host} (last heartbeat {age:.0f} s ago)")
