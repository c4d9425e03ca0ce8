"""The stored data's schema version: a new workspace is stamped, data from before versions counts as version 1, each
migration runs once (and again only if it did not finish), a newer version is refused with the reason, and so is a
memory file of a newer layout."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from redis import Redis

from kernel.keys import Keys
from memory import schema, sqlite_schema
from memory.sqlite_store import SqliteStore, StoreMismatch
from tests.memory.test_weaviate_store import WordEmbedder, item


def tasks_to_hash(calls: list[str]):  # type: ignore[no-untyped-def]
    """A made-up migration 1 → 2: each task string moves into one hash. Idempotent: a moved task is not there twice."""
    def apply(redis: Redis, keys: Keys) -> None:
        calls.append(keys.workspace)
        for key in list(redis.scan_iter(match=keys("task", "*"))):
            redis.hset(keys("tasks_v2"), key.decode().rsplit(":", 1)[1], redis.get(key) or b"")
            redis.delete(key)
    return schema.Migration(2, "tasks move into one hash", apply)


def test_a_new_workspace_is_stamped_with_todays_version_and_nothing_runs(redis: Redis) -> None:
    calls: list[str] = []
    checked = schema.check(redis, "studio", [tasks_to_hash(calls)])
    assert (checked.found, checked.version, checked.ran, calls) == (None, 2, [], [])
    assert schema.stored(redis, "studio") == 2


def test_unversioned_data_is_version_1_and_each_migration_runs_once(redis: Redis) -> None:
    keys = Keys("studio")
    redis.set(keys("task", "1"), "send the invoice")
    calls: list[str] = []
    migrations = [tasks_to_hash(calls)]
    first = schema.check(redis, "studio", migrations)
    assert [m.version for m in first.ran] == [2] and first.found is None
    assert redis.hgetall(keys("tasks_v2")) == {b"1": b"send the invoice"} and redis.get(keys("task", "1")) is None
    assert schema.check(redis, "studio", migrations).ran == []
    assert calls == ["studio"] and schema.stored(redis, "studio") == 2


def test_todays_layout_is_version_1_with_no_migration(redis: Redis) -> None:
    assert schema.MIGRATIONS == () and schema.current() == schema.FIRST == 1
    redis.set(Keys("studio")("task", "1"), "x")
    assert schema.check(redis, "studio").version == 1 and schema.stored(redis, "studio") == 1


def test_data_of_a_newer_version_is_refused_and_left_as_it_is(redis: Redis) -> None:
    redis.set(schema.schema_key("studio"), 3)
    with pytest.raises(schema.NewerSchema, match=r"has schema version 3, written by a newer Deputy; this one reads up to version 1"):
        schema.check(redis, "studio")
    assert schema.stored(redis, "studio") == 3


def test_a_memory_file_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    with SqliteStore(path, WordEmbedder()) as store:
        store.add([item("n1", "the wifi password is on the fridge")])
    assert schema.check_memory_file(path) == int(sqlite_schema.VERSION)
    newer = int(sqlite_schema.VERSION) + 1
    with sqlite3.connect(path) as db:
        db.execute("UPDATE info SET value = ? WHERE key = 'schema'", (str(newer),))
    with pytest.raises(schema.NewerSchema, match=f"memory file .* has schema version {newer}"):
        schema.check_memory_file(path)
    with pytest.raises(StoreMismatch, match="written by a newer Deputy"):
        SqliteStore(path, WordEmbedder())
    assert schema.check_memory_file(tmp_path / "none.sqlite3") is None
