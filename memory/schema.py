"""The version of a workspace's stored data, and the migrations that bring older data up to it.

The version lives in Redis at dp:<workspace>:schema. Every process checks it as it starts (`deputy up`,
`gateway`, `worker`, `cron`) and `deputy restore` checks a backup's: data of a newer version is refused with the
reason, data of an older one is brought up to date by the migrations below, in order, under a lock, so that the
processes of one deployment starting together migrate once. The embedded memory file carries a layout of its own
(memory/sqlite_schema.py) that the store upgrades when it opens the file; a newer one is refused here too."""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from redis import Redis

from kernel.keys import Keys
from memory import sqlite_schema

log = logging.getLogger("deputy.schema")

# the layout every release up to the first versioned one wrote: data without a version is of this one
FIRST = 1


@dataclass(frozen=True)
class Migration:
    """One step of layout: `apply` turns data of version - 1 into `version`. It must be idempotent: a process killed
    half-way runs it again from the start."""

    version: int
    summary: str
    apply: Callable[[Redis, Keys], None]


# The one list of migrations, oldest first. Version 1 is the first layout and needs none; a change of layout appends
# Migration(2, "what changes", function) and README ("Backup, restore and upgrades") names it.
MIGRATIONS: tuple[Migration, ...] = ()


class NewerSchema(RuntimeError):
    """The data was written by a newer Deputy; this one cannot read it."""


@dataclass
class Checked:
    """What a check found (None: no version was stored) and what it did."""

    found: int | None
    version: int
    ran: list[Migration] = field(default_factory=list)


def current(migrations: Sequence[Migration] | None = None) -> int:
    """The version this Deputy writes."""
    migrations = MIGRATIONS if migrations is None else migrations
    return migrations[-1].version if migrations else FIRST


def schema_key(workspace: str) -> str:
    return Keys(workspace)("schema")


def lock_key(workspace: str) -> str:
    return Keys(workspace)("schema", "lock")


def stored(redis: Redis, workspace: str) -> int | None:
    raw = redis.get(schema_key(workspace))
    return int(raw) if raw is not None else None


def newer_message(what: str, found: int | str, reads: int | str) -> str:
    return (f"{what} has schema version {found}, written by a newer Deputy; this one reads up to version {reads}. "
            "Run the newer Deputy, or restore a backup this version made (README, \"Backup, restore and upgrades\").")


def check(redis: Redis, workspace: str, migrations: Sequence[Migration] | None = None, lock_timeout_s: float = 600) -> Checked:
    """Bring the workspace's data to this Deputy's version; NewerSchema when it is past it. A workspace with no
    data yet is stamped with today's version; data stored before versions were, with version 1."""
    migrations = MIGRATIONS if migrations is None else migrations
    target = current(migrations)
    found = stored(redis, workspace)
    if found is not None and found > target:
        raise NewerSchema(newer_message(f"the data of workspace '{workspace}'", found, target))
    if found == target:
        return Checked(found, target)
    keys = Keys(workspace)
    with redis.lock(lock_key(workspace), timeout=lock_timeout_s, blocking_timeout=lock_timeout_s):
        # another process may have migrated while this one waited
        found = stored(redis, workspace)
        version = found if found is not None else (FIRST if _has_data(redis, keys) else target)
        ran = [m for m in migrations if m.version > version]
        for migration in ran:
            log.warning("workspace %s: migrating stored data to version %d: %s", workspace, migration.version, migration.summary)
            migration.apply(redis, keys)
            redis.set(schema_key(workspace), migration.version)
        redis.set(schema_key(workspace), max(version, target))
    return Checked(found, target, ran)


def _has_data(redis: Redis, keys: Keys) -> bool:
    lock = lock_key(keys.workspace).encode()
    return any(key != lock for key in redis.scan_iter(match=keys("*"), count=1_000))


def memory_file_info(path: Path) -> dict[str, str]:
    """An embedded memory file's info table (layout, model, dimension), read without opening the store; empty when
    there is no file or none was written yet."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT key, value FROM info").fetchall())
    except sqlite3.OperationalError:
        return {}  # no info table: the store writes one when it first opens the file
    finally:
        db.close()


def check_memory_file(path: Path) -> int | None:
    """The file's layout; NewerSchema when it is newer than this Deputy reads (an older one is upgraded on open)."""
    raw = memory_file_info(path).get("schema")
    layout = int(raw) if raw is not None else None
    if layout is not None and layout > int(sqlite_schema.VERSION):
        raise NewerSchema(newer_message(f"the memory file {path}", layout, sqlite_schema.VERSION))
    return layout
