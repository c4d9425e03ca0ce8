"""Journey: one distinctive text, seeded through every path the cluster can drive (a /remember note, a chat
turn kept in memory, an ingested file, a task, an email triaged from the inbox into a task, a job that failed
with it in its payload), is forgotten from the console: a preview card with counts per store, Forget, and
afterwards no Redis key of any type, no page of the embedded SQLite files, no event and no answer holds it,
while the event log keeps who/when/what-kind."""
from __future__ import annotations

import subprocess
import sys
import zlib
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import pytest
from redis import Redis
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from jobs.queues import JobQueues
from kernel import job_names
from memory.events import EventLog
from tests.journeys.world import ClusterConfig
from tests.waiting import wait_for

SECRET = "Rioja Gran Reserva 2015"


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(smtp=False, caldav=False, slack=False, telegram=False, env={"INGEST_CONVERSATIONS": "console"},
                         imap=True, mailbox=(_mail(),))


def _mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Carla Vinos <carla@vinos.example>"
    message["To"] = "me@studio.example"
    message["Subject"] = f"Your {SECRET} order"
    message["Date"] = formatdate()
    message["Message-ID"] = "<order-7@vinos.example>"
    message.set_content(f"The six bottles of {SECRET} ship on Monday.")
    return message


def _readable(value: bytes) -> str:
    try:
        value = zlib.decompress(value)  # rq compresses a job's payload and error
    except zlib.error:
        pass
    return value.decode("utf-8", errors="replace")


def redis_copies(redis: Redis, text: str) -> list[str]:
    """Every key of the database (every type) whose name or any value holds `text`, any case."""
    wanted, found = text.lower(), []
    for raw in redis.scan_iter(match="*", count=1_000):
        kind = redis.type(raw).decode()
        values: list[bytes] = [raw]
        if kind == "string":
            values.append(redis.get(raw) or b"")
        elif kind == "hash":
            values += [v for pair in redis.hgetall(raw).items() for v in pair]
        elif kind == "list":
            values += redis.lrange(raw, 0, -1)
        elif kind == "set":
            values += list(redis.smembers(raw))
        elif kind == "zset":
            values += redis.zrange(raw, 0, -1)
        elif kind == "stream":
            values += [v for _, fields in redis.xrange(raw) for pair in fields.items() for v in pair]
        if any(wanted in _readable(v).lower() for v in values):
            found.append(f"{kind} {raw.decode()}")
    return found


def sqlite_copies(folder: Path, text: str) -> list[str]:
    """The embedded SQLite files (and their -wal/-shm) under DATA_DIR whose bytes hold any word of `text`."""
    words = [w.lower().encode() for w in text.split()]
    return [p.name for p in folder.rglob("*.sqlite3*") if p.is_file() and any(w in p.read_bytes().lower() for w in words)]


def seed_everywhere(cluster, console, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "Noted" in console.ask(f"/remember Bob's favourite wine is {SECRET}").text
    console.ask(f"I promised Bob a bottle of {SECRET} for his birthday")
    assert "Added task" in console.ask(f"/task add buy {SECRET} for Bob").text
    # the inbox, triaged: the email shown with its buttons, then made a task
    console.ask("/inbox")
    email = console.reply(where=lambda said: said.card is not None and said.card.title == "New email")
    console.click("Make task", on=email)
    console.reply(containing="task")
    cellar = tmp_path / "cellar.md"
    cellar.write_text(f"# Cellar\n\nTwo bottles of {SECRET} are kept for Bob.\n")
    subprocess.run([sys.executable, "-m", "bot.cli", "ingest", str(cellar), "--wait", "--trusted"], env=cluster.env(),
                   cwd=cluster.folder, check=True, capture_output=True, timeout=120)
    # a request that fails for good: its payload, with the text, stays in rq's failed registry
    queues = JobQueues(cluster.redis, retries=0)
    queues.enqueue(job_names.HANDLE_MESSAGE, {"trace_id": "seed-failed", "quote": SECRET}, job_id="seed-failed")
    failed = FailedJobRegistry("interactive", connection=cluster.redis, serializer=JSONSerializer)
    wait_for(lambda: "seed-failed" in failed.get_job_ids(), 30, what="the seeded job to fail")


def test_a_forgotten_text_is_gone_from_every_store(cluster, console, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seed_everywhere(cluster, console, tmp_path)
    assert SECRET in console.ask("/ask what wine does Bob like?").text
    before = redis_copies(cluster.redis, SECRET), sqlite_copies(cluster.folder / "data", SECRET)
    assert all(before)

    preview = console.ask(f"/forget {SECRET}")
    assert preview.card is not None and preview.card.labels == ["Forget", "Keep"], console.transcript()
    counts = {label: int(value) for label, value in preview.card.fields.items()}
    assert counts["notes"] == 1 and counts["tasks"] == 2 and counts["semantic memory"] >= 3, counts
    assert counts["jobs (failed and finished)"] >= 1 and counts["console transcript"] >= 1, counts

    console.click("Forget", on=preview)
    done = console.reply(containing="Forgotten")
    assert SECRET.lower() not in done.shown.lower()

    assert redis_copies(cluster.redis, SECRET) == []
    assert sqlite_copies(cluster.folder / "data", SECRET) == []
    answer = console.ask("/ask what wine does Bob like?").text
    assert SECRET.lower() not in answer.lower() and "rioja" not in answer.lower()

    events = EventLog(cluster.redis, cluster.workspace).recent(2_000)
    kinds = {e.kind for e in events}
    assert {"inbound.received", "memory.forgotten", "reply.queued"} <= kinds
    assert not [e for e in events if SECRET.lower() in (e.summary + str(e.data)).lower()]
    [forgotten] = [e for e in events if e.kind == "memory.forgotten"]
    assert forgotten.actor and forgotten.ts
