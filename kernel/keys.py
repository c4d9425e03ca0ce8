"""Redis key names: every key Deputy writes is namespaced by workspace."""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

PREFIX = "dp"


@dataclass(frozen=True)
class Keys:
    workspace: str
    prefix: str = PREFIX

    def __post_init__(self) -> None:
        if not self.workspace or ":" in self.workspace or " " in self.workspace:
            raise ValueError(f"workspace name {self.workspace!r} must be non-empty, without ':' or spaces")

    def __call__(self, *parts: str | int) -> str:
        return ":".join((self.prefix, self.workspace, *map(str, parts)))

    @classmethod
    def global_(cls, *parts: str | int) -> str:
        return ":".join((PREFIX, "_", *map(str, parts)))


class WorkspaceStore:
    """What keeps one workspace's state in Redis: the connection, and `keys` to name its keys."""

    def __init__(self, redis: Redis, workspace: str) -> None:
        self.redis = redis
        self.keys = Keys(workspace)


# the workspace a Redis database serves: rq's queues and the outbox are per database, not per workspace
OWNER = Keys.global_("workspace")


def claim_database(redis: Redis, workspace: str) -> str | None:
    """Mark this database as `workspace`'s; the other workspace's name when it already serves one (two Deputys
    on one database would run each other's jobs and deliver each other's replies)."""
    if redis.set(OWNER, workspace, nx=True):
        return None
    owner = redis.get(OWNER)
    owner_name = owner.decode() if isinstance(owner, bytes) else str(owner)
    return None if owner_name == workspace else owner_name


def shared_database_message(redis_url: str, workspace: str, owner: str) -> str:
    return (f"deputy: the Redis database at {redis_url} already serves workspace '{owner}'. Deputy's job queues and "
            f"outbox are per database, so workspace '{workspace}' needs a database of its own: give it another REDIS_URL "
            f"(another db number, e.g. redis://127.0.0.1:6379/1). If '{owner}' is gone for good and this database is to "
            f"serve '{workspace}' now, delete the key {OWNER} in it.")
