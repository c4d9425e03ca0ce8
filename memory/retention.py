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
        raise NothingToForget("say what to forget: TEXT, --id ID, --source SOURCE or --project PROJECT")
    where = SearchFilter(sources=[source] if source else None, projects=[project] if project else None)
    deleted = {
        name: backend.delete(workspace, ids=list(ids) if ids else None, where=where if (source or project) else None)
        for name, backend in backends.items()
    }
    compact(backends)
    events.record(trace_id or f"forget-{uuid.uuid4().hex[:12]}", "memory.forgotten", actor=actor,
                  ids=list(ids or []), source=source, project=project, deleted=deleted)
    return deleted


def apply_retention(
    backends: Mapping[str, MemoryStore], workspaces: Workspaces, workspace: str, events: EventLog, now: float | None = None,
    default_days: int | None = None,
) -> dict[str, int]:
    """Delete memories older than their project's retention_days (set in chat), or than `default_days`
    (MEMORY_RETENTION_DAYS) for a project that sets none; returns deletions per project ("*": the default's)."""
    now = time.time() if now is None else now
    projects = workspaces.projects(workspace)
    rules = [(p.name, p.retention_days, SearchFilter(projects=[p.name], until=now - p.retention_days * DAY))
             for p in projects if p.retention_days is not None]
    if default_days is not None:
        own = [p.name for p in projects if p.retention_days is not None]
        rules.append(("*", default_days, SearchFilter(exclude_projects=own or None, until=now - default_days * DAY)))
    out: dict[str, int] = {}
    for name, days, where in rules:
        deleted = {store: backend.delete(workspace, where=where) for store, backend in backends.items()}
        out[name] = total = sum(deleted.values())
        if total:
            events.record(f"retention-{uuid.uuid4().hex[:12]}", "memory.expired", actor="cron", project=name,
                          retention_days=days, before=where.until, deleted=deleted)
    if any(out.values()):
        compact(backends)
    return out


def compact(backends: Mapping[str, MemoryStore]) -> None:
    """Backends that keep deleted bytes until told (the embedded SQLite file) drop them now."""
    for backend in backends.values():
        squeeze = getattr(backend, "compact", None)
        if squeeze is not None:
            squeeze()
