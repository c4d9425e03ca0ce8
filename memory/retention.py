"""Forgetting: `deputy forget` (by id, source or project) and per-project retention, on every backend."""
from __future__ import annotations

import time
import uuid
from typing import Mapping, Sequence

from memory.events import EventLog
from memory.store import MemoryStore, SearchFilter
from memory.workspaces import Workspaces

DAY = 86_400.0


class NothingToForget(ValueError):
    """`forget` was called without saying what to forget."""


def forget(
    backends: Mapping[str, MemoryStore], events: EventLog, workspace: str, *, ids: Sequence[str] | None = None,
    source: str | None = None, project: str | None = None, actor: str = "operator", trace_id: str | None = None,
) -> dict[str, int]:
    """Delete matching memories from every backend and record one `memory.forgotten` event.

    Given several of ids, source and project, a memory must match all of them."""
    if not ids and not source and not project:
        raise NothingToForget("say what to forget: --id ID, --source SOURCE or --project PROJECT")
    where = SearchFilter(sources=[source] if source else None, projects=[project] if project else None)
    deleted = {
        name: backend.delete(workspace, ids=list(ids) if ids else None, where=where if (source or project) else None)
        for name, backend in backends.items()
    }
    events.record(trace_id or f"forget-{uuid.uuid4().hex[:12]}", "memory.forgotten", actor=actor,
                  ids=list(ids or []), source=source, project=project, deleted=deleted)
    return deleted


def apply_retention(
    backends: Mapping[str, MemoryStore], workspaces: Workspaces, workspace: str, events: EventLog, now: float | None = None,
) -> dict[str, int]:
    """Delete memories older than their project's retention_days; returns deletions per project."""
    now = time.time() if now is None else now
    out: dict[str, int] = {}
    for project in workspaces.projects(workspace):
        if project.retention_days is None:
            continue
        cutoff = now - project.retention_days * DAY
        where = SearchFilter(projects=[project.name], until=cutoff)
        deleted = {name: backend.delete(workspace, where=where) for name, backend in backends.items()}
        total = sum(deleted.values())
        out[project.name] = total
        if total:
            events.record(f"retention-{uuid.uuid4().hex[:12]}", "memory.expired", actor="cron", project=project.name,
                          retention_days=project.retention_days, before=cutoff, deleted=deleted)
    return out
