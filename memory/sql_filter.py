"""A SearchFilter as SQL conditions on the items table's columns."""
from __future__ import annotations

from typing import Any

from memory.store import SearchFilter


def matches_nothing(where: SearchFilter | None) -> bool:
    # an empty allow-list admits nothing
    return where is not None and (where.projects == [] or where.sources == [])


def conditions(where: SearchFilter | None, prefix: str = "") -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, each led by AND) for a filter on columns of `prefix`."""
    sql: list[str] = []
    args: list[Any] = []
    if where is None:
        return "", args
    if where.projects:
        sql.append(f"{prefix}project IN ({','.join('?' * len(where.projects))})")
        args += where.projects
    if where.sources:
        sql.append(f"{prefix}source IN ({','.join('?' * len(where.sources))})")
        args += where.sources
    if where.exclude_projects:
        sql.append(f"{prefix}project NOT IN ({','.join('?' * len(where.exclude_projects))})")
        args += where.exclude_projects
    if where.since is not None:
        sql.append(f"{prefix}created_at >= ?")
        args.append(float(where.since))
    if where.until is not None:
        sql.append(f"{prefix}created_at < ?")
        args.append(float(where.until))
    return "".join(f" AND {c}" for c in sql), args
