"""/metrics as Prometheus and the operator see it: messages through the console, Slack and Telegram, jobs run by a
worker, then one scrape whose counters moved and which holds every metric the Grafana dashboard draws; who may
scrape; and workers in other processes added up, their counts kept after they exit."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from agents.approvals import Approval, ApprovalStore
from agents.costs import CostLedger, Spend
from bot.channels.slack import slack_channel
from bot.channels.telegram import SECRET_HEADER, telegram_channel
from bot.console.api import console_channel
from bot.server import DISPATCHER, build_app, build_services
from bot.services import Services
from harness.fakes.slack_api import FakeSlackApi
from harness.fakes.telegram_api import FakeTelegramApi
from integrations.breaker import Breakers
from jobs.cron import Periodic, build_scheduler
from jobs.digest_jobs import digest_tick
from jobs.registry import JOBS
from jobs.worker import run_burst
from kernel.metrics import Metrics, process_metrics
from kernel.settings import load_settings
from tests.bot.channels.conftest import TELEGRAM_SECRET, slack_env, telegram_env
from tests.bot.channels.test_slack import dm, signed
from tests.bot.channels.test_telegram import text_update
from tests.console_login import log_in

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "deputy.json"
BROKEN = f"{__name__}.broken"
SAMPLE_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",)}


def broken(payload: dict[str, Any]) -> None:
    raise RuntimeError("a job that always fails")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, set[str]]:
    """Every sample by (name, labels), and every sample name the families could have (empty ones too)."""
    samples: Samples = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, names


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every label set that includes `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def dashboard_metrics() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]
    return {name for expr in exprs for name in re.findall(r"\bdeputy_[a-z_]+", expr)}


@pytest.fixture
async def platforms(monkeypatch):  # type: ignore[no-untyped-def]
    slack_api = await FakeSlackApi(bot_user_id="W111").start()
    telegram_api = await FakeTelegramApi("123456:TEST-token").start()
    for key, val in {**slack_env(slack_api), **telegram_env(telegram_api), "INTENT_EMBEDDINGS": "false"}.items():
        monkeypatch.setenv(key, val)
    yield slack_api, telegram_api
    await slack_api.stop()
    await telegram_api.stop()


async def _gateway(redis: Redis, metrics: Metrics | None = None, **env: str) -> tuple[TestClient, Services, AsyncRedis]:
    settings = load_settings(**env)
    aredis = AsyncRedis.from_url(settings.redis_url)
    services = build_services(settings, redis, aredis, metrics=metrics)
    client = TestClient(TestServer(build_app(services, channels=[console_channel, slack_channel, telegram_channel], dispatch=False),
                                   host="127.0.0.1"))
    await client.start_server()
    return client, services, aredis


@pytest.fixture
async def gateway(settings, redis, platforms) -> AsyncIterator[tuple[TestClient, Services]]:  # type: ignore[no-untyped-def]
    client, services, aredis = await _gateway(redis)
    await log_in(client, redis, settings.workspace)
    yield client, services
    await client.close()
    await aredis.aclose()


async def scrape(client: TestClient, **headers: str) -> tuple[Samples, set[str]]:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    return parse(await resp.text())


async def say(client: TestClient, text: str, client_id: str | None = None) -> None:
    resp = await client.post("/api/messages", json={"thread_id": "t1", "text": text, "client_id": client_id or uuid.uuid4().hex})
    assert resp.status == 202, await resp.text()


async def test_a_scrape_after_messages_and_jobs_shows_them_and_every_metric_the_dashboard_draws(gateway, redis, shared_eval):
    client, services = gateway
    # counts live as long as the process that made them: what this test did is what moved since here
    start, _ = await scrape(client)
    await say(client, "/task add pay the rent", client_id="same-click")
    await say(client, "/task add pay the rent", client_id="same-click")  # the browser sent it twice
    await say(client, "what do I have on today?")  # free text: recognised in the worker
    slack_dm = json.dumps(dm(shared_eval, "/task add call the bank", event_id="EvM1"))
    for _ in range(2):  # Slack delivers it again when the first ack seemed late
        assert (await client.post("/slack/events", **signed(slack_dm))).status == 200
    stranger = text_update(shared_eval, "/task add strangers' work", user_id=999)
    assert (await client.post("/telegram/webhook", json=stranger, headers={SECRET_HEADER: TELEGRAM_SECRET})).status == 200
    Queue("interactive", connection=redis, serializer=JSONSerializer).enqueue_call(BROKEN, args=({},), retry=Retry(max=2), job_id="broken-1")
    build_scheduler(redis, services.settings, [Periodic(digest_tick, "background", interval_s=60)], metrics=services.metrics).enqueue_jobs()

    before, _ = await scrape(client)
    assert value(before, "deputy_queue_depth", queue="interactive") == 4  # two console messages, one Slack DM, the broken job
    assert value(before, "deputy_queue_oldest_age_seconds", queue="interactive") >= 0
    await client.app[DISPATCHER].setup()
    run_burst(redis, jobs=(*JOBS, BROKEN), metrics=services.metrics)
    after, names = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(start, name, **labels)

    def moved_total(name: str) -> float:
        return total(after, name) - total(start, name)

    assert moved("deputy_deliveries_total", channel="console", status="accepted") == 2
    assert moved("deputy_deliveries_total", channel="console", status="duplicate") == 1
    assert moved("deputy_deliveries_total", channel="slack", status="accepted") == 1
    assert moved("deputy_deliveries_total", channel="slack", status="duplicate") == 1
    assert moved("deputy_deliveries_total", channel="telegram", status="refused") == 1
    assert moved("deputy_ack_seconds_count", channel="slack") == 2
    assert moved("deputy_job_duration_seconds_count", job="handle_message") == 3
    assert moved("deputy_job_duration_seconds_count", job="digest_tick") == 1
    assert moved("deputy_job_failures_total", job="broken") == 3 and moved("deputy_job_retries_total", job="broken") == 2
    assert moved("deputy_cron_enqueued_total", job="digest_tick") == 1
    assert moved_total("deputy_intents_total") == 1 and moved_total("deputy_intent_confidence_count") == 1
    assert value(after, "deputy_queue_depth", queue="interactive") == 0
    assert value(after, "deputy_queue_failed", queue="interactive") == 1
    assert value(after, "deputy_outbox_undelivered") >= 3  # written by the worker, not delivered yet
    assert value(after, "deputy_breaker_state", connector="tasks", capability="tasks.create") == 0
    assert value(after, "deputy_redis_up") == 1
    missing = dashboard_metrics() - names
    assert not missing, f"the dashboard draws metrics /metrics does not export: {sorted(missing)}"


async def test_approvals_spend_and_an_open_breaker_are_read_from_redis_at_scrape_time(gateway, redis):
    client, services = gateway
    store, now = ApprovalStore(redis, services.settings.workspace), time.time()
    store.create(Approval(id="a1", run_id="r1", step_index=0, trace_id="t", capability="email.send", args={}, digest="d",
                          rationale="", risk_score=50, deciders=("operator",), created_at=now - 120, expires_at=now + 600))
    ledger = CostLedger(redis, services.settings.workspace)
    ledger.record(Spend(run_id="r1", project="inbox", model="gpt-4o-mini", prompt_tokens=10, completion_tokens=5, cost=25_000,
                        day=ledger.today().isoformat()))
    breaker = Breakers(redis, services.settings.workspace, failure_threshold=1).for_("tasks.create")
    breaker.failure()

    samples, _ = await scrape(client)
    assert value(samples, "deputy_approvals_pending") == 1
    assert 119 <= value(samples, "deputy_approvals_oldest_age_seconds") < 180
    assert value(samples, "deputy_spend_usd", project="inbox", period="day") == pytest.approx(0.025)
    assert value(samples, "deputy_spend_usd", project="inbox", period="month") == pytest.approx(0.025)
    assert value(samples, "deputy_breaker_state", connector="tasks", capability="tasks.create") == 2
    assert value(samples, "deputy_breaker_failures", connector="tasks", capability="tasks.create") == 1


async def test_beyond_loopback_metrics_need_the_token_in_a_header_and_a_page_in_a_browser_gets_nothing(settings, redis, monkeypatch, caplog):
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret-123")
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1")  # lets the test speak as a client on another address
    client, services, aredis = await _gateway(redis)
    remote = {"X-Forwarded-For": "198.51.100.7"}
    try:
        with caplog.at_level(logging.WARNING, logger="deputy.web"):
            resp = await client.get("/metrics", headers=remote)
        assert resp.status == 401 and "Authorization: Bearer" in await resp.text()
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "refused /metrics to 198.51.100.7" in caplog.text
        # a cookie or a query string is no token
        assert (await client.get("/metrics?token=scrape-secret-123", headers={**remote, "Cookie": "token=scrape-secret-123"})).status == 401
        assert (await client.get("/metrics", headers={**remote, "Authorization": "Bearer wrong"})).status == 401
        allowed = await client.get("/metrics", headers={**remote, "Authorization": "Bearer scrape-secret-123"})
        assert allowed.status == 200 and "deputy_queue_depth" in await allowed.text()
        # a page on another site, in the operator's own browser on this machine
        assert (await client.get("/metrics", headers={"Sec-Fetch-Site": "cross-site"})).status == 403
        assert (await client.get("/metrics")).status == 200  # loopback scrapes freely
    finally:
        await client.close()
        await aredis.aclose()


async def test_through_a_tunnel_on_this_machine_loopback_is_not_enough(settings, redis):
    client, services, aredis = await _gateway(redis, console={"allowed_hosts": ["deputy.example"]})
    try:
        # a proxy or tunnel on this machine connects from loopback on behalf of anyone
        assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 401
        assert (await client.get("/metrics", headers={"Host": "deputy.example"})).status == 401
        assert (await client.get("/metrics")).status == 200
    finally:
        await client.close()
        await aredis.aclose()


@pytest.fixture
def metric_files(tmp_path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """This test process in the mode every `deputy` process runs in, undone afterwards: the switch is process-wide."""
    directory = tmp_path / "data" / "metrics"
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


async def test_a_worker_process_exports_its_jobs_and_its_counts_outlive_it(settings, redis, redis_url, metric_files):
    client, services, aredis = await _gateway(redis, metrics=process_metrics(metric_files))
    try:
        await log_in(client, redis, settings.workspace)
        await say(client, "/task add renew the domain")
        await say(client, "/task add book the dentist")
        env = {**os.environ, "REDIS_URL": redis_url}
        worker = subprocess.run([sys.executable, "-m", "bot.cli", "worker", "--burst"], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert worker.returncode == 0, worker.stderr[-2000:]
        own = {p.name for p in metric_files.glob("*.db")}
        assert any(name.endswith(f"-{worker_pid(own, os.getpid())}.db") for name in own)

        samples, _ = await scrape(client)  # the first scrape also folds what the finished worker wrote
        assert value(samples, "deputy_job_duration_seconds_count", job="handle_message") == 2
        assert value(samples, "deputy_deliveries_total", channel="console", status="accepted") == 2  # this process's own
        left = sorted(p.name for p in metric_files.glob("*.db"))
        assert "histogram_archive.db" in left and all(name.endswith(("archive.db", f"-{os.getpid()}.db")) for name in left), left
        again, _ = await scrape(client)
        assert value(again, "deputy_job_duration_seconds_count", job="handle_message") == 2
    finally:
        await client.close()
        await aredis.aclose()


def worker_pid(names: set[str], own: int) -> str:
    """The pid in a file name that is not this process's: the worker's."""
    pids = {name.rsplit("-", 1)[1][:-3] for name in names} - {str(own)}
    assert len(pids) == 1, names
    return pids.pop()
