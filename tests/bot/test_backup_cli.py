"""`deputy backup` and `deputy restore`: a workspace carried onto a fresh machine (another Redis database, another data
folder) still answers /ask from what it was told, lists its tasks and keeps its pending approval; what a backup
leaves out (secrets) and what a restore refuses (overwriting, a newer schema, a damaged archive)."""
from __future__ import annotations

import json
import shutil
import tarfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents import policy as policy_module
from bot.cli import main
from harness.fakes.smtp_server import SmtpServer
from jobs.queues import DEFAULT, JobQueues
from jobs.scheduling import RqScheduler
from kernel import job_names
from kernel.keys import OWNER, Keys
from kernel.settings import load_settings
from memory import schema
from memory.memory_copy import workspaces_in
from tests.bot.conftest import Deputy, logged_in_deputy
from tests.conftest import REDIS_HOST, REDIS_PORT, _lease_db

CONSOLE_SECRET = "console-token-9f3c1e7a"
EMAIL = "/email ana@acme.io Contract | Hi Ana, the contract is attached."


@pytest.fixture
def other_redis() -> Iterator[Redis]:
    """The fresh machine's Redis: a second test database, flushed before and after."""
    db, token = _lease_db()
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    yield client
    client.flushdb()
    lessor = Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    if lessor.get(f"deputy-test-lease:{db}") == token.encode():
        lessor.delete(f"deputy-test-lease:{db}")
    client.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def machine(monkeypatch: pytest.MonkeyPatch, redis: Redis, folder: Path, **env: str) -> None:
    """Point Deputy's settings at one machine: its Redis database and its data folder."""
    kwargs = redis.connection_pool.connection_kwargs
    monkeypatch.setenv("REDIS_URL", f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}")
    monkeypatch.setenv("DATA_DIR", str(folder))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


async def last(deputy: Deputy, thread_id: str = "t1") -> dict[str, Any]:
    await deputy.work()
    return (await deputy.messages(thread_id))[-1]


async def click(deputy: Deputy, card: dict[str, Any], label: str) -> None:
    button = next(b for b in card["buttons"] if b["label"] == label)
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                             "client_id": uuid.uuid4().hex})
    assert resp.status == 202
    await deputy.work()
    await deputy.work()


async def test_a_restored_workspace_answers_lists_its_tasks_and_keeps_its_pending_approval(
        settings: Any, redis: Redis, other_redis: Redis, smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    old, new, archive = tmp_path / "old", tmp_path / "new", tmp_path / "studio.tar.gz"
    old.mkdir()
    shutil.copyfile(Path(policy_module.__file__).with_name("policy.yaml"), old / "policy.yaml")
    machine(monkeypatch, redis, old, WORKSPACE="studio", POLICY_FILE=str(old / "policy.yaml"), CONSOLE_TOKEN=CONSOLE_SECRET, SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port), SMTP_SECURITY="none", SMTP_FROM="me@studio.example")
    async with logged_in_deputy(load_settings(), redis) as deputy:
        await deputy.say("/remember Ana prefers calls after 10am")
        await deputy.say("/task add send the invoice to Acme", thread_id="t2")
        await deputy.say(EMAIL)
        assert (await last(deputy))["card"]["buttons"][0]["label"] == "Approve"
    assert main(["backup", str(archive)]) == 0
    assert "Not in the backup (secrets; set them again where you restore): CONSOLE_TOKEN." in capsys.readouterr().out

    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert {"manifest.json", "redis.jsonl", "memory.sqlite3", "settings.json", "files/policy.yaml"} <= set(members)
    assert not any(CONSOLE_SECRET.encode() in content for content in members.values())
    assert json.loads(members["manifest.json"])["secrets_left_out"] == ["CONSOLE_TOKEN"]

    machine(monkeypatch, other_redis, new, WORKSPACE="studio", POLICY_FILE=str(new / "policy.yaml"), SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
            SMTP_SECURITY="none", SMTP_FROM="me@studio.example")
    monkeypatch.delenv("CONSOLE_TOKEN")
    assert main(["restore", str(archive)]) == 0
    said = capsys.readouterr().out
    assert "Restored workspace 'studio'" in said and "CONSOLE_TOKEN (not set here)" in said
    assert (new / "policy.yaml").read_bytes() == (old / "policy.yaml").read_bytes()
    assert workspaces_in(new / "memory.sqlite3") == {"studio": 1}

    async with logged_in_deputy(load_settings(), other_redis) as restored:
        await restored.say("/ask when does Ana prefer calls?", thread_id="t3")
        assert "10am" in (await last(restored, "t3"))["text"]
        await restored.say("/task list", thread_id="t3")
        assert "send the invoice to Acme" in (await last(restored, "t3"))["text"]
        card = next(m["card"] for m in reversed(await restored.messages("t1")) if m["card"])
        assert smtp.messages == []
        await click(restored, card, "Approve")
        await click(restored, card, "Approve")
    [sent] = smtp.messages
    assert (sent["To"], sent["Subject"]) == ("ana@acme.io", "Contract")


def test_a_backup_never_overwrites_a_file(settings: Any, redis: Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "backup.tar.gz"
    archive.write_bytes(b"last week's backup")
    assert main(["backup", str(archive)]) == 2
    assert "already exists; a backup never overwrites one" in capsys.readouterr().err
    assert archive.read_bytes() == b"last week's backup"


def _small_workspace(redis: Redis) -> None:
    keys = Keys("default")
    redis.set(keys("note", "1"), "the wifi password is on the fridge")
    redis.set(keys("approval", "a1"), "{}", ex=3600)
    redis.xadd(keys("events"), {"kind": "note.added"})


def test_a_scheduled_reminder_is_still_scheduled_after_a_restore(settings: Any, redis: Redis, other_redis: Redis, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    at = datetime.now(timezone.utc) + timedelta(days=2)
    RqScheduler(JobQueues(redis, 0)).run_at(job_names.FIRE_REMINDER, {"reminder_id": "r1"}, "reminder-r1-0", at)
    assert main(["backup", str(tmp_path / "b.tar.gz")]) == 0
    machine(monkeypatch, other_redis, tmp_path / "new")
    assert main(["restore", str(tmp_path / "b.tar.gz")]) == 0
    registry = ScheduledJobRegistry(DEFAULT, connection=other_redis, serializer=JSONSerializer)
    assert registry.get_job_ids() == ["reminder-r1-0"]
    assert abs(registry.get_scheduled_time("reminder-r1-0").timestamp() - at.timestamp()) < 1


def test_a_restore_refuses_a_workspace_that_has_data_unless_forced(settings: Any, redis: Redis, other_redis: Redis,
                                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _small_workspace(redis)
    assert main(["backup", str(tmp_path / "b.tar.gz")]) == 0
    machine(monkeypatch, other_redis, tmp_path / "new")
    assert main(["restore", str(tmp_path / "b.tar.gz")]) == 0
    keys = Keys("default")
    assert other_redis.get(keys("note", "1")) == b"the wifi password is on the fridge"
    assert 3500 < other_redis.ttl(keys("approval", "a1")) <= 3600 and other_redis.xlen(keys("events")) == 1
    assert other_redis.get(OWNER) == b"default"
    other_redis.set(keys("note", "1"), "changed since")

    capsys.readouterr()
    assert main(["restore", str(tmp_path / "b.tar.gz")]) == 2
    assert "already has data" in capsys.readouterr().err and other_redis.get(keys("note", "1")) == b"changed since"
    assert main(["restore", "--force", str(tmp_path / "b.tar.gz")]) == 0
    assert other_redis.get(keys("note", "1")) == b"the wifi password is on the fridge"


def test_data_of_a_newer_schema_is_refused_by_restore_and_by_a_worker(settings: Any, redis: Redis, other_redis: Redis,
                                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _small_workspace(redis)
    redis.set(schema.schema_key("default"), schema.current() + 1)
    assert main(["worker", "--burst"]) == 2
    assert f"has schema version {schema.current() + 1}, written by a newer Deputy" in capsys.readouterr().err

    assert main(["backup", str(tmp_path / "b.tar.gz")]) == 0
    machine(monkeypatch, other_redis, tmp_path / "new")
    assert main(["restore", str(tmp_path / "b.tar.gz")]) == 2
    assert "the backup's data has schema version" in capsys.readouterr().err
    assert other_redis.dbsize() == 0


def test_an_older_backup_is_migrated_once_on_restore(settings: Any, redis: Redis, other_redis: Redis, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _small_workspace(redis)
    assert main(["backup", str(tmp_path / "b.tar.gz")]) == 0
    runs: list[str] = []

    def notes_to_hash(r: Redis, keys: Keys) -> None:  # a made-up layout change: notes move into one hash
        runs.append(keys.workspace)
        for key in list(r.scan_iter(match=keys("note", "*"))):
            r.hset(keys("notes_v2"), key.decode().rsplit(":", 1)[1], r.get(key) or b"")
            r.delete(key)

    monkeypatch.setattr(schema, "MIGRATIONS", (schema.Migration(2, "notes move into one hash", notes_to_hash),))
    machine(monkeypatch, other_redis, tmp_path / "new")
    assert main(["restore", str(tmp_path / "b.tar.gz")]) == 0
    assert "Migrated the stored data to schema version 2: notes move into one hash." in capsys.readouterr().out
    assert other_redis.hget(Keys("default")("notes_v2"), "1") == b"the wifi password is on the fridge"
    assert main(["worker", "--burst"]) == 0
    assert runs == ["default"] and schema.stored(other_redis, "default") == 2


def test_a_damaged_backup_is_refused_before_anything_is_written(settings: Any, redis: Redis, other_redis: Redis, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _small_workspace(redis)
    assert main(["backup", str(tmp_path / "b.tar.gz")]) == 0
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / "redis.jsonl").write_text((unpacked / "redis.jsonl").read_text().replace("note", "nope"))
    with tarfile.open(tmp_path / "damaged.tar.gz", "w:gz") as tar:
        for path in unpacked.iterdir():
            tar.add(path, arcname=path.name)
    machine(monkeypatch, other_redis, tmp_path / "new")
    assert main(["restore", str(tmp_path / "damaged.tar.gz")]) == 2
    assert "redis.jsonl does not match its checksum" in capsys.readouterr().err
    assert other_redis.dbsize() == 0
