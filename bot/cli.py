"""The `deputy` command. Each subcommand is one entry in COMMANDS."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlparse

from pydantic import ValidationError

from bot import agent_cli, backup_cli, harness_cli, health_cli, memory_cli, prepare_cli, replay_cli
from bot.logs import configure_logging
from kernel.keys import claim_database, shared_database_message
from kernel.settings import Settings, load_settings
from memory.redaction import secret_values

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("deputy")


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


def _connect(settings: Settings, embedded: bool = False):  # type: ignore[no-untyped-def]
    from redis import Redis

    from bot.redis_server import ensure_redis

    server = ensure_redis(settings.redis_url, settings.data_dir, embedded=embedded and settings.embedded_redis) if embedded else None
    # a Redis started just now asks for the password it was started with
    return Redis.from_url(server.url if server else settings.redis_url), server


def _shared(settings: Settings, redis: "Redis") -> bool:
    """True (after saying why) when this Redis database already serves another workspace."""
    owner = claim_database(redis, settings.workspace)
    if owner is not None:
        print(shared_database_message(settings.redis_url, settings.workspace, owner), file=sys.stderr, flush=True)
    return owner is not None


def _refused(settings: Settings, redis: "Redis") -> bool:
    """True (after saying why) when this process must not start on this data: the database serves another workspace,
    or the stored data was written by a newer Deputy. Data of an older version is migrated here first."""
    from jobs.memory_wiring import memory_path
    from memory import schema

    if _shared(settings, redis):
        return True
    try:
        for migration in schema.check(redis, settings.workspace).ran:
            print(f"deputy: migrated the stored data to schema version {migration.version}: {migration.summary}", flush=True)
        schema.check_memory_file(memory_path(settings))
    except schema.NewerSchema as err:
        print(f"deputy: {err}", file=sys.stderr, flush=True)
        return True
    return False


def _no_args(parser: argparse.ArgumentParser) -> None:
    pass


# --- up / gateway / worker / cron

def _up_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="console port (default CONSOLE_PORT, 8700)")
    parser.add_argument("--workers", type=int, help="worker processes (default WORKERS, 2)")


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    """Gateway + console + workers + cron for one machine, in one command."""
    from bot.announce import announce_when_ready, workers_ready
    from bot.async_redis import async_redis
    from jobs.heartbeat import Heartbeats

    from bot.redis_server import RedisUnavailable
    from bot.server import run_gateway

    try:
        redis, embedded = _connect(settings, embedded=True)
    except RedisUnavailable as err:
        print(f"deputy: {err}", file=sys.stderr)
        return 2
    if _refused(settings, redis):
        return 2
    if embedded:
        settings = settings.model_copy(update={"redis_url": embedded.url})
    elif not urlparse(settings.redis_url).password:
        # whoever can reach a Redis without a password can queue work for Deputy's workers
        print(f"deputy: using the Redis already answering at {settings.redis_url}, which asks for no password; "
              "see README, \"Security model\", to secure it.", file=sys.stderr, flush=True)
    env = {**os.environ, "REDIS_URL": settings.redis_url}
    workers = args.workers or settings.workers
    children = [
        subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--workers", str(workers)], env=env),
        subprocess.Popen([sys.executable, "-m", "bot.cli", "cron"], env=env),
    ]
    port = args.port or settings.console.port

    def line(ready: bool) -> str:
        url = _login_link(settings, redis, port)
        waiting = "" if ready else "; no worker is ready yet, so free text waits for one"
        return f"Deputy is up: open {url}  ({workers} workers, cron, workspace '{settings.workspace}'{waiting}; Ctrl-C stops)"

    ready = workers_ready(Heartbeats(redis), time.time(), settings.health.stale_s)
    print(f"Deputy is starting ({workers} workers): the console link follows once a worker can answer", flush=True)
    try:
        run_gateway(settings, redis, async_redis(settings.redis_url), port=port, alongside=[lambda: announce_when_ready(ready, line)])
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(35)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            embedded.stop()
        print("Deputy stopped.", flush=True)
    return 0


def _login_link(settings: Settings, redis: "Redis", port: int) -> str:
    """A one-time link that opens a logged-in console (printed, never logged: it is a credential)."""
    from bot.console.sessions import LoginLinks

    token = LoginLinks(redis, settings.workspace).issue(settings.console.link_ttl_s)
    if settings.console.public_url:
        base = settings.console.public_url.rstrip("/")
    else:
        host = "127.0.0.1" if settings.console.host in ("0.0.0.0", "::", "") else settings.console.host
        base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    log.info("console: issued a login link (token %s…)", token[:4])
    return f"{base}/login?token={token}"


def _console_link_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="console port (default CONSOLE_PORT, 8700)")
    parser.add_argument("--end-sessions", action="store_true", help="also log every open console out")


def run_console_link(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console.sessions import LoginLinks

    redis, _ = _connect(settings)
    if args.end_sessions:
        print(f"{LoginLinks(redis, settings.workspace).end_sessions()} console login(s) ended.")
    print(f"Open {_login_link(settings, redis, args.port or settings.console.port)}  "
          f"(works once, for {settings.console.link_ttl_s // 3600} h; replaces any unused link)", flush=True)
    return 0


def run_gateway_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from bot.async_redis import async_redis

    from bot.server import run_gateway

    redis, _ = _connect(settings)
    if _refused(settings, redis):
        return 2
    print(f"Deputy gateway: open {_login_link(settings, redis, args.port or settings.console.port)}", flush=True)
    run_gateway(settings, redis, async_redis(settings.redis_url), port=args.port)
    return 0


def _worker_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, help="worker processes (default WORKERS, 2)")
    parser.add_argument("--burst", action="store_true", help="run what is queued, then exit")


def run_worker_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from agents.intents.recognizers import preload_intents
    from jobs.worker import run_burst, run_pool, worker_metrics
    from kernel.metric_files import MetricFiles
    from kernel.metrics import metrics_dir

    redis, _ = _connect(settings)
    if _refused(settings, redis):
        return 2
    if args.burst:
        run_burst(redis, metrics=worker_metrics(settings))
        return 0
    run_pool(settings.redis_url, args.workers or settings.workers, MetricFiles(metrics_dir(settings.data_dir, settings.metrics_dir)),
             preload_intents(settings))
    return 0


def run_cron_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.cron import run_cron

    redis, _ = _connect(settings)
    if _refused(settings, redis):
        return 2
    run_cron(redis, settings)
    return 0


# --- trace

def _trace_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace_id")
    parser.add_argument("--json", action="store_true", help="print the events as JSON")


def run_trace(args: argparse.Namespace, settings: Settings) -> int:
    from memory.events import EventLog

    redis, _ = _connect(settings)
    events = EventLog(redis, settings.workspace).timeline(args.trace_id)
    if not events:
        print(f"no trace {args.trace_id} in workspace '{settings.workspace}'", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([e.model_dump() for e in events], indent=2, default=str))
        return 0
    start = events[0].ts
    print(f"trace {args.trace_id}  ({len(events)} events, workspace '{settings.workspace}')")
    print(f"{'+ms':>9}  {'event':<20} {'actor':<12} details")
    for e in events:
        print(f"{(e.ts - start) * 1000:9.1f}  {e.kind:<20} {e.actor[:12]:<12} {e.summary}")
    return 0


# --- costs

def _costs_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=14, help="days of history to show (default 14)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run_costs(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cost_report import render, report
    from jobs.runtime import make_budgets

    redis, _ = _connect(settings)
    budgets = make_budgets(settings, redis)
    print(json.dumps(report(budgets, args.days)) if args.json else render(budgets, args.days))
    return 0


# The one list of subcommands.
COMMANDS: list[Subcommand] = [
    Subcommand("up", "run everything for one machine: gateway, web console, workers, cron", _up_args, run_up),
    Subcommand("gateway", "run the gateway (channels, web console, outbox dispatcher)", _up_args, run_gateway_cmd),
    Subcommand("console-link", "print a new one-time login link for the web console", _console_link_args,
               run_console_link),
    Subcommand("worker", "run a pool of workers", _worker_args, run_worker_cmd),
    Subcommand("cron", "run the scheduler (digests, reminders, housekeeping)", _no_args, run_cron_cmd),
    Subcommand("health", "is this container's gateway, worker or cron healthy? (exit 1 if not; Docker's probe)",
               health_cli.health_args, health_cli.run_health),
    Subcommand("trace", "print the timeline of one request", _trace_args, run_trace),
    Subcommand("replay", "re-run a recorded request on today's policy and playbooks, without effects or model calls; "
               "name the first divergence (exit 1)", replay_cli.replay_args, replay_cli.run_replay),
    Subcommand("costs", "model spend per project, model and day, against budget", _costs_args, run_costs),
    Subcommand("prepare", "prepare the model files a first message needs (run at install time; cheap when done)",
               prepare_cli.prepare_args, prepare_cli.run_prepare),
    Subcommand("bench", "measure throughput and latency", harness_cli.measure_args("BENCHES"), harness_cli.measure("BENCHES")),
    Subcommand("eval", "measure quality on a data set", harness_cli.measure_args("EVALS"), harness_cli.measure("EVALS")),
    Subcommand("capabilities", "list what Deputy can do: risk, reversibility, idempotency, policy", agent_cli.list_args,
               agent_cli.run_capabilities),
    Subcommand("check", "run every capability's health check (exit 1 if one fails)", agent_cli.list_args, agent_cli.run_check),
    Subcommand("ingest", "remember files or folders (txt, md, pdf, eml, csv) in semantic memory", memory_cli.ingest_args,
               memory_cli.run_ingest),
    Subcommand("forget", "forget a text everywhere Deputy keeps it (preview first), or memories by id, source or project", memory_cli.forget_args,
               memory_cli.run_forget),
    Subcommand("backup", "write one workspace's data, memory file, settings (not secrets) and files to an archive",
               backup_cli.backup_args, backup_cli.run_backup),
    Subcommand("restore", "restore a backup onto this machine (a fresh Redis database and data folder)",
               backup_cli.restore_args, backup_cli.run_restore),
    Subcommand("prove", "fault injection, fuzzing, prompt injection: prove nothing is lost, repeated or let through",
               harness_cli.prove_args, harness_cli.run_prove),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deputy", description="Deputy: a chat-first assistant for one-person companies.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.name, help=command.help, description=command.help))
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as err:
        parser.exit(2, f"deputy: fix these settings (in the environment or .env): {err}\n")
    configure_logging(secret_values(settings), verbose=args.verbose)
    chosen = next(c for c in COMMANDS if c.name == args.command)
    return chosen.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
