"""Workspaces and their projects."""
from __future__ import annotations

import time

from pydantic import BaseModel
from redis import Redis

from kernel.keys import Keys


class Project(BaseModel):
    name: str
    created_at: float
    # days to keep semantic memories of this project; None keeps them
    retention_days: int | None = None


class Workspaces:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def ensure(self, workspace: str) -> None:
        Keys(workspace)  # validates the name
        self.redis.sadd(Keys.global_("workspaces"), workspace)

    def all(self) -> list[str]:
        return sorted(w.decode() if isinstance(w, bytes) else w for w in self.redis.smembers(Keys.global_("workspaces")))

    def add_project(self, workspace: str, name: str, retention_days: int | None = None) -> Project:
        self.ensure(workspace)
        project = Project(name=name.strip().lower(), created_at=time.time(), retention_days=retention_days)
        if not project.name:
            raise ValueError("a project needs a name")
        self.redis.hsetnx(Keys(workspace)("projects"), project.name, project.model_dump_json())
        return self.project(workspace, project.name) or project

    def set_retention(self, workspace: str, name: str, retention_days: int | None) -> Project:
        project = self.project(workspace, name) or self.add_project(workspace, name)
        updated = project.model_copy(update={"retention_days": retention_days})
        self.redis.hset(Keys(workspace)("projects"), updated.name, updated.model_dump_json())
        return updated

    def project(self, workspace: str, name: str) -> Project | None:
        raw = self.redis.hget(Keys(workspace)("projects"), name.strip().lower())
        return Project.model_validate_json(raw) if raw else None

    def projects(self, workspace: str) -> list[Project]:
        rows = self.redis.hvals(Keys(workspace)("projects"))
        return sorted((Project.model_validate_json(r) for r in rows), key=lambda p: p.name)
