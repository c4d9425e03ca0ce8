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
