"""How memories map onto Weaviate: the collection's properties, tenant names for workspaces,
object ids for item ids, filters for SearchFilters, and objects back to MemoryItems."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from weaviate.classes.config import DataType, Property, Tokenization
from weaviate.classes.query import Filter, FilterReturn

from memory.store import MemoryItem, SearchFilter

COLLECTION = "DeputyMemory"
VECTOR = "default"
# our item ids are free-form; Weaviate wants UUIDs, so each id maps to a stable uuid5 and
# re-adding the same item overwrites it instead of duplicating it
_ID_NAMESPACE = uuid.UUID("5b0e7f64-3d5c-4b61-9a0e-6f1d2c8a9e41")
_TENANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tenant_name(workspace: str) -> str:
    """The tenant a workspace's memories live in (Weaviate allows [A-Za-z0-9_-], 64 chars)."""
    if _TENANT_NAME.match(workspace):
        return workspace
    digest = hashlib.sha1(workspace.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', workspace)[:50]}-{digest}"


def object_id(item_id: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, item_id)


def properties() -> list[Property]:
    # exact-match fields are not tokenised, so a project "sales-eu" never matches "sales"
    def exact(name: str) -> Property:
        return Property(name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False)

    return [
        Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
        exact("item_id"),
        exact("project"),
        exact("source"),
        exact("author"),
        exact("trust"),
        Property(name="created_at", data_type=DataType.NUMBER, index_range_filters=True),
        # str -> str metadata, kept as JSON: readable back, never searched
        Property(name="meta", data_type=DataType.TEXT, index_filterable=False, index_searchable=False),
    ]


def to_filter(where: SearchFilter | None) -> FilterReturn | None:
    """The Weaviate filter for a SearchFilter (None when it filters nothing)."""
    if where is None:
        return None
    parts: list[FilterReturn] = []
    if where.projects:
        parts.append(Filter.by_property("project").contains_any(list(where.projects)))
    if where.sources:
        parts.append(Filter.by_property("source").contains_any(list(where.sources)))
    if where.exclude_projects:
        parts.append(Filter.by_property("project").contains_none(list(where.exclude_projects)))
    if where.since is not None:
        parts.append(Filter.by_property("created_at").greater_or_equal(float(where.since)))
    if where.until is not None:
        parts.append(Filter.by_property("created_at").less_than(float(where.until)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)


def matches_nothing(where: SearchFilter | None) -> bool:
    # an empty allow-list admits nothing (Weaviate itself rejects filters on empty lists)
    return where is not None and (where.projects == [] or where.sources == [])


def to_properties(item: MemoryItem) -> dict[str, Any]:
    return {
        "text": item.text,
        "item_id": item.id,
        "project": item.project,
        "source": item.source,
        "author": item.author,
        "trust": item.trust,
        "created_at": float(item.created_at),
        "meta": json.dumps(item.meta, sort_keys=True),
    }


def to_item(workspace: str, props: dict[str, Any]) -> MemoryItem:
    return MemoryItem(
        id=str(props["item_id"]),
        workspace=workspace,
        text=str(props.get("text") or ""),
        project=str(props.get("project") or "inbox"),
        source=str(props.get("source") or "remember"),
        author=str(props.get("author") or ""),
        created_at=float(props.get("created_at") or 0.0),
        trust="untrusted" if props.get("trust") == "untrusted" else "operator",
        meta=json.loads(props["meta"]) if props.get("meta") else {},
    )
