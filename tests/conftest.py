"""Shared fixtures: a real Redis database of our own per test, settings from a clean environment."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest
from prometheus_client import values
from redis import Redis

# MiniLM only, in this process and the workers and gateways it starts: the larger intent model
# adds seconds to every test that trains the classifier; tests/memory/test_mpnet.py and
# the `both` fixture in tests/agents/intents/conftest.py use it where it is the subject
os.environ.setdefault("INTENT_MPNET", "false")
REDIS_HOST = os.environ.get("DEPUTY_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("DEPUTY_TEST_REDIS_PORT", "6379"))
# db 0 is left to whoever else uses this Redis and db 15 to benchmarks (`deputy bench` flushes it);
# tests lease dbs 1-14, one per running test
LEASE_DBS = range(1, 15)
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _lease_db() -> tuple[int, str]:
    lessor = Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    token = f"{socket.gethostname()}:{os.getpid()}:{time.time()}"
    deadline = time.time() + 120
    while time.time() < deadline:
        for db in LEASE_DBS:
            if lessor.set(f"deputy-test-lease:{db}", token, nx=True, ex=600):
                return db, token
        time.sleep(0.2)
    raise RuntimeError("no free test database on Redis (all 14 leased for 2 minutes)")


@pytest.fixture
def redis_db() -> Iterator[int]:
    try:
        Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
    except Exception as err:  # the README's test command starts one; say so plainly
        pytest.fail(f"tests need Redis on {REDIS_HOST}:{REDIS_PORT} ({err}); run .ci/run or start redis-server")
    db, token = _lease_db()
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    try:
        yield db
    finally:
        client.flushdb()
        lessor = Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
        if lessor.get(f"deputy-test-lease:{db}") == token.encode():
            lessor.delete(f"deputy-test-lease:{db}")


@pytest.fixture
def redis_url(redis_db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from what a test sets: no developer .env, no real tokens."""
    for key in list(os.environ):
        if key.upper().startswith(("SLACK_", "TELEGRAM_", "OPENAI_", "WEAVIATE_", "CONSOLE_", "REDIS_URL", "WORKSPACE", "JOB_",
                                   "SMTP_", "IMAP_", "CALDAV_", "INBOUND_HOOKS", "OUTBOUND_WEBHOOKS", "HOOK_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def settings(redis_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from kernel.settings import load_settings

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("JOB_RETRY_BACKOFF", "0")
    # tests run workers by hand, whenever they choose: a stall notice would be one more reply in their
    # threads. The tests of the notice set a short one themselves
    monkeypatch.setenv("JOB_STALL_NOTICE_S", "60")
    return load_settings()


@pytest.fixture
def radicale(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real Radicale CalDAV server on loopback with one calendar, "Work" (harness/fakes/radicale_server.py)."""
    import caldav

    from harness.fakes.radicale_server import RadicaleServer

    server = RadicaleServer(tmp_path / "radicale").start()
    with caldav.DAVClient(url=server.url, username=server.username, password=server.password) as client:
        client.principal().make_calendar(name="Work")
    yield server
    server.stop()


@pytest.fixture
def imap():  # type: ignore[no-untyped-def]
    """A scripted IMAP server on loopback (harness/fakes/imap_server.py)."""
    from harness.fakes.imap_server import ImapServer

    server = ImapServer().start()
    yield server
    server.stop()


@pytest.fixture
def shared_eval() -> Path:
    path = SHARED / "eval"
    if not path.exists():
        pytest.skip("../shared/eval is not here")
    return path


@pytest.fixture
def openai_server():  # type: ignore[no-untyped-def]
    """A scripted OpenAI-compatible server on loopback (see harness/fakes/openai_server.py)."""
    from harness.fakes.openai_server import ScriptedOpenAI

    server = ScriptedOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _metrics_mode_is_undone() -> Iterator[None]:
    """A gateway, worker or cron started inside a test switches prometheus_client into multiprocess mode for the
    whole process (kernel.metrics.process_metrics): undone after each test, so no test counts into the next one's."""
    value_class, directory = values.ValueClass, os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    yield
    values.ValueClass = value_class
    if directory is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

