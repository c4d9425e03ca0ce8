"""`deputy backup PATH` and `deputy restore PATH`: one workspace's stored state, carried to another machine.

A backup holds every Redis key of the workspace (memory/redis_snapshot.py), the embedded memory file
(memory/memory_copy.py), the settings without their secrets (kernel/settings_export.py), the operator's intents and
policy files, and a manifest with the versions and checksums (memory/archive.py). A restore checks all of it before
it writes anything; README, "Backup, restore and upgrades", is the operator's side."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator

from redis import Redis
from redis.exceptions import ConnectionError as RedisDown

from agents.intents.recognizers import intents_file
from bot.redis_server import ensure_redis
from jobs.memory_wiring import memory_path
from kernel.keys import OWNER, claim_database
from kernel.redis_url import RedisUnavailable
from kernel.settings import Settings
from kernel.settings_export import differences, exported
from memory import redis_snapshot, schema, sqlite_schema
from memory.archive import Refused, seal, staging, unpack
from memory.memory_copy import check_in, copy_in, copy_out
from memory.workspaces import Workspaces

REDIS = "redis.jsonl"
MEMORY = "memory.sqlite3"
SETTINGS = "settings.json"


def backup_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the archive to write (a .tar.gz); an existing file is never overwritten")


def restore_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="an archive `deputy backup` wrote")
    parser.add_argument("--force", action="store_true",
                        help="replace what the workspace already holds here (its Redis keys, memory file, intents and policy files)")


@contextmanager
def workspace_redis(settings: Settings) -> Iterator[Redis]:
    """The Redis at REDIS_URL; when nothing answers there (a single machine's Deputy, stopped), its embedded Redis,
    started for the while as `deputy up` starts it (data in DATA_DIR/redis) and stopped after."""
    server = ensure_redis(settings.redis_url, settings.data_dir, embedded=settings.embedded_redis)
    redis = Redis.from_url(server.url if server else settings.redis_url)
    try:
        yield redis
    finally:
        redis.close()
        if server is not None:
            server.stop()


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with workspace_redis(settings) as redis:
            manifest = write_backup(args.path, settings, redis)
    except (Refused, RedisDown, RedisUnavailable) as err:
        print(f"deputy backup: {err}", file=sys.stderr)
        return 2
    counts = manifest["counts"]
    print(f"Backed up workspace '{manifest['workspace']}' to {args.path}: {counts['keys']} Redis keys, "
          f"{counts['memories']} memories, {len(manifest['files'])} file(s) ({', '.join(manifest['files']) or 'none'}).")
    if manifest["secrets_left_out"]:
        print(f"Not in the backup (secrets; set them again where you restore): {', '.join(manifest['secrets_left_out'])}.")
    if settings.weaviate.url:
        print("Memories kept in Weaviate are not in it: back them up with Weaviate's own backup module.")
    return 0


def write_backup(path: Path, settings: Settings, redis: Redis) -> dict[str, Any]:
    """Write the archive at PATH; its manifest."""
    workspace = settings.workspace
    owner = _text(redis.get(OWNER))
    if owner and owner != workspace:
        raise Refused(f"the Redis database at {settings.redis_url} serves workspace '{owner}', not '{workspace}'; "
                      f"set WORKSPACE={owner} to back it up")
    with staging(path) as folder:
        with (folder / REDIS).open("w", encoding="utf-8") as out:
            by_store = redis_snapshot.dump(redis, workspace, out)
        source = memory_path(settings)
        memories = copy_out(source, folder / MEMORY, workspace) if source.exists() else 0
        plain, secrets = exported(settings)
        (folder / SETTINGS).write_text(json.dumps(plain, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        files = _files_in_use(settings)
        for name, where in files.items():
            (folder / "files").mkdir(exist_ok=True)
            shutil.copyfile(where, folder / "files" / name)
        info = schema.memory_file_info(folder / MEMORY)
        return seal(folder, path, {
            "deputy_version": _deputy_version(), "workspace": workspace,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "schema": {"data": schema.stored(redis, workspace) or schema.FIRST,
                       "memory_file": int(info["schema"]) if "schema" in info else None},
            "memory_model": {"name": info.get("model"), "dim": int(info["dim"]) if "dim" in info else None},
            "redis_version": str(redis.info("server")["redis_version"]),
            "counts": {"keys": sum(by_store.values()), "keys_by_store": by_store, "memories": memories},
            "secrets_left_out": secrets, "files": {name: str(where) for name, where in files.items()},
        })


def _files_in_use(settings: Settings) -> dict[str, Path]:
    """The operator's own files: the intents file (when there is one) and POLICY_FILE (when set). Playbooks and the
    built-in policy are part of Deputy itself."""
    files = {"intents.yaml": intents_file(settings)}
    if settings.policy.file is not None:
        files["policy.yaml"] = settings.policy.file
    return {name: where for name, where in files.items() if where.is_file()}


# --- restore

@dataclass
class Restore:
    """A checked backup, and where each of its parts goes on this machine."""

    folder: Path
    manifest: dict[str, Any]
    force: bool
    memory_target: Path
    files: dict[Path, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_restore(args: argparse.Namespace, settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".deputy-restore-", dir=settings.data_dir) as scratch:
        try:
            manifest = unpack(args.path, Path(scratch))
            with workspace_redis(settings) as redis:
                plan = check_restore(manifest, Path(scratch), settings, redis, args.force)
                done = apply_restore(plan, redis, settings.workspace)
        except (Refused, schema.NewerSchema, RedisDown, RedisUnavailable) as err:
            print(f"deputy restore: {err}", file=sys.stderr)
            return 2
        for line in _report(plan, done, settings):
            print(line)
    return 0


def check_restore(manifest: dict[str, Any], folder: Path, settings: Settings, redis: Redis, force: bool) -> Restore:
    """Every reason to refuse, before anything is written."""
    workspace = manifest["workspace"]
    if settings.workspace != workspace:
        raise Refused(f"the backup is of workspace '{workspace}' and this Deputy is set up for '{settings.workspace}'; "
                      f"set WORKSPACE={workspace} and run the restore again")
    _check_versions(manifest, redis)
    owner = _text(redis.get(OWNER))
    if owner and owner != workspace:
        raise Refused(f"the Redis database at {settings.redis_url} already serves workspace '{owner}'; give this one a "
                      "database of its own (REDIS_URL with another db number)")
    held = next(redis_snapshot.workspace_keys(redis, workspace), None)
    if held is not None and not force:
        raise Refused(f"workspace '{workspace}' already has data in the Redis database at {settings.redis_url} (e.g. {held}); "
                      "restore onto a fresh database, or add --force to replace it")
    plan = Restore(folder, manifest, force, memory_path(settings))
    if (folder / MEMORY).exists():
        check_in(plan.memory_target, workspace, force)
    _plan_files(plan, settings)
    return plan


def _check_versions(manifest: dict[str, Any], redis: Redis) -> None:
    data, layout = manifest["schema"]["data"], manifest["schema"]["memory_file"]
    if data > schema.current():
        raise schema.NewerSchema(schema.newer_message("the backup's data", data, schema.current()))
    if layout is not None and layout > int(sqlite_schema.VERSION):
        raise schema.NewerSchema(schema.newer_message("the backup's memory file", layout, sqlite_schema.VERSION))
    here = str(redis.info("server")["redis_version"])
    if _version_tuple(here) < _version_tuple(manifest["redis_version"]):
        raise Refused(f"the backup was made on Redis {manifest['redis_version']} and this Redis is {here}; an older Redis "
                      f"cannot read a newer one's keys: restore onto Redis {manifest['redis_version']} or newer")


def _plan_files(plan: Restore, settings: Settings) -> None:
    """The intents file goes where this machine's settings look for it; the policy file to POLICY_FILE, or beside
    the data when that is unset (and the operator is told to set it)."""
    targets = {"intents.yaml": intents_file(settings), "policy.yaml": settings.policy.file or settings.data_dir / "policy.yaml"}
    for name in plan.manifest["files"]:
        source, target = plan.folder / "files" / name, targets[name]
        if target.exists() and target.read_bytes() != source.read_bytes() and not plan.force:
            raise Refused(f"{target} exists and differs from the backup's {name}; move it away, or add --force to replace it")
        plan.files[source] = target
        if name == "policy.yaml" and settings.policy.file is None:
            plan.notes.append(f"The backup ran with its own policy file: set POLICY_FILE={target}")


def apply_restore(plan: Restore, redis: Redis, workspace: str) -> dict[str, Any]:
    """Write the checked backup: Redis keys (with what they had left to live), memory file, files; then bring the
    data to this Deputy's schema version. What was done."""
    removed = redis_snapshot.delete(redis, workspace) if plan.force else 0
    with (plan.folder / REDIS).open(encoding="utf-8") as lines:
        restored = redis_snapshot.load(redis, lines, replace=plan.force)
    claim_database(redis, workspace)
    Workspaces(redis).ensure(workspace)
    if (plan.folder / MEMORY).exists():
        copy_in(plan.folder / MEMORY, plan.memory_target)
    for source, target in plan.files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    checked = schema.check(redis, workspace)
    return {"removed": removed, "restored": restored, "migrations": checked.ran, "version": checked.version}


def _report(plan: Restore, done: dict[str, Any], settings: Settings) -> list[str]:
    manifest, restored = plan.manifest, done["restored"]
    lines = [f"Restored workspace '{manifest['workspace']}' from the backup of {manifest['created_at']} (Deputy "
             f"{manifest['deputy_version']}, schema {manifest['schema']['data']}): {restored.keys} Redis keys, "
             f"{manifest['counts']['memories']} memories into {plan.memory_target}, "
             f"{len(plan.files)} file(s){''.join(f'; {s.name} → {t}' for s, t in plan.files.items())}."]
    if restored.expired:
        lines.append(f"{restored.expired} key(s) had expired since the backup and were left out.")
    for migration in done["migrations"]:
        lines.append(f"Migrated the stored data to schema version {migration.version}: {migration.summary}.")
    _, secrets_here = exported(settings)
    if manifest["secrets_left_out"]:
        lines.append("Secrets are not in a backup; set these before starting Deputy: " + ", ".join(
            f"{name} ({'set here' if name in secrets_here else 'not set here'})" for name in manifest["secrets_left_out"]))
    backup_settings = json.loads((plan.folder / SETTINGS).read_text(encoding="utf-8"))
    changed = differences(backup_settings, exported(settings)[0])
    if changed:
        lines.append("Settings that differ from the backup's (set them here where the old value should hold):")
        lines += [f"  {name}: backup {was}, here {now}" for name, was, now in changed]
    return [*lines, *plan.notes, "Then start Deputy: deputy up"]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _deputy_version() -> str:
    try:
        return version("deputy")
    except PackageNotFoundError:
        return "unknown"


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw
