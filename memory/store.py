"""Semantic memory: the MemoryStore protocol every backend implements (embedded SQLite, Weaviate)."""
from __future__ import annotations

from typing import Literal, Protocol, Self, Sequence

from pydantic import BaseModel, Field

Trust = Literal["operator", "untrusted"]


class MemoryItem(BaseModel):
    """One remembered piece of text and where it came from."""

    id: str
    workspace: str
    text: str
    project: str = "inbox"
    # remember, conversation, file:<path>, email, webhook, ...
    source: str = "remember"
    author: str = ""
    created_at: float
    # text from anyone but the operator is untrusted: data, never instructions
    trust: Trust = "operator"
    meta: dict[str, str] = Field(default_factory=dict)


class SearchFilter(BaseModel):
    projects: list[str] | None = None
    sources: list[str] | None = None
    since: float | None = None
    until: float | None = None
    # every project but these (retention's default leaves the projects that set their own)
    exclude_projects: list[str] | None = None


class Hit(BaseModel):
    item: MemoryItem
    score: float


class Closing:
    """A store used in a `with` block closes itself on leaving it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryStore(Protocol):
    """Hybrid (vector + keyword, fused) memory, scoped by workspace."""

    def add(self, items: Sequence[MemoryItem]) -> list[str]: ...

    def search(self, workspace: str, query: str, limit: int = 10, where: SearchFilter | None = None) -> list[Hit]: ...

    def delete(self, workspace: str, ids: Sequence[str] | None = None, where: SearchFilter | None = None) -> int: ...

    def count(self, workspace: str, where: SearchFilter | None = None) -> int: ...
