"""User journeys: a test types what a user types, through a real `deputy gateway` and a real worker, and
asserts what the user sees (reply text, cards, buttons) and what happened (calendar events, emails).

One cluster runs per test module (cluster.py): the gateway and one worker as child processes on a Redis
database of their own, in a world (world.py) of Radicale (CalDAV, calendar "Work"), an SMTP server, and
Slack's and Telegram's Web APIs as wire-level fakes. Offline: no model endpoint is configured.

Fixtures
  cluster          the module's JourneyCluster (started once, shared by the module's tests)
  cluster_config   module-scoped ClusterConfig; override it in a module for another kind of cluster
  console          a ConsoleUser in a fresh console thread (one per test)
  slack            a SlackUser in a fresh DM channel
  telegram         a TelegramUser: a fresh operator id, so a private chat of its own

A user (driver.py; console_user.py, slack_user.py, telegram_user.py)
  say(text) -> mark                 send a message in the user's thread
  reply(timeout=30, after=mark, containing="…", where=fn) -> Said
                                    wait for the next thing Deputy shows in the thread (a new message or
                                    a new version of a card), skipping ones that do not match
  ask(text) -> Said                 say, then reply
  click(label, on=said) -> str      click a button on the latest card that has it (or on `on`, e.g. an
                                    old card); returns the platform's immediate answer
  messages() -> [Said]              Deputy's messages as they stand now; events() every version in order
  Said: .text, .card (None or CardView), .edit (an update of an earlier message), .shown (all the
        readable text), .raw. CardView: .title, .fields {label: value}, .buttons (ButtonView: label,
        action, value), .labels, .button(label), .resolution, .rationale, .preview

The world (on `cluster`)
  calendar_events() -> [CalendarEntry(uid, summary, start, end, attendees)]  (in the cluster's zone)
  add_event(summary, start, end=None, duration_min=30, attendees=()) -> uid  (naive = cluster's zone)
  emails() -> [Email(sender, to, subject, body, message)]
  imap (ClusterConfig(imap=True, mailbox=(EmailMessage, ...))): the IMAP server, seeded with `mailbox`;
        imap.deliver(message) adds one, imap.flags(uid) reads its flags
  stop_worker() / start_worker(); workers(); redis (the cluster's database); log("worker"|"gateway")

Another kind of cluster, for one module (from tests.journeys.world import ClusterConfig):

    @pytest.fixture(scope="module")
    def cluster_config() -> ClusterConfig:
        return ClusterConfig(smtp=False, timezone="Europe/Madrid", env={"PENDING_QUESTION_TTL": "2"})

Example:

    def test_a_task_is_added_and_done(console):
        added = console.ask("/task add send the invoice")
        assert "Added task #1" in added.text and added.card.labels == ["Mark done"]
        console.click("Mark done")
        assert "Done" in console.reply().card.resolution
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from redis import Redis

from tests.conftest import REDIS_HOST, REDIS_PORT, _lease_db
from tests.journeys.cluster import JourneyCluster
from tests.journeys.console_user import ConsoleUser
from tests.journeys.slack_user import SlackUser
from tests.journeys.telegram_user import TelegramUser
from tests.journeys.world import ClusterConfig
from harness.fakes.openai_server import ScriptedOpenAI

# a module's cluster holds its database this long at most (the lease is for dead test runs)
LEASE_S = 3_600


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig()


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    """A scripted OpenAI-compatible model for a module whose cluster_config points OPENAI_BASE_URL at it."""
    server = ScriptedOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def journey_redis_url() -> Iterator[str]:
    """A database of the test Redis, leased for the whole module and flushed before and after."""
    try:
        Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
    except Exception as err:
        pytest.fail(f"journeys need Redis on {REDIS_HOST}:{REDIS_PORT} ({err}); run .ci/run or start redis-server")
    db, token = _lease_db()
    lessor = Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    lessor.set(f"deputy-test-lease:{db}", token, ex=LEASE_S)
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        client.flushdb()
        if lessor.get(f"deputy-test-lease:{db}") == token.encode():
            lessor.delete(f"deputy-test-lease:{db}")


@pytest.fixture(scope="module")
def cluster(cluster_config: ClusterConfig, journey_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyCluster]:
    folder: Path = tmp_path_factory.mktemp("journey")
    started = time.monotonic()
    running = JourneyCluster(folder, cluster_config, journey_redis_url)
    try:
        running.start()
        running.started_in_s = time.monotonic() - started
        yield running
    finally:
        running.stop()


@pytest.fixture
def console(cluster: JourneyCluster) -> ConsoleUser:
    return ConsoleUser(cluster)


@pytest.fixture
def slack(cluster: JourneyCluster) -> SlackUser:
    return SlackUser(cluster)


@pytest.fixture
def telegram(cluster: JourneyCluster) -> TelegramUser:
    return TelegramUser(cluster)
