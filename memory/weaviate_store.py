"""Semantic memory in Weaviate: one multi-tenant collection, one tenant per workspace.

Vectors come from our own Embedder (the collection has no vectorizer); search is Weaviate's
hybrid query (BM25 on the text + vector similarity, fused by relative score)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import weaviate
from weaviate.classes.config import Configure
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, FilterReturn, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant, TenantActivityStatus
from weaviate.collections import Collection
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateBaseError, WeaviateInsertManyAllFailedError

from memory.embedder import Embedder
from memory.store import Closing, Hit, MemoryItem, SearchFilter
from memory.weaviate_connect import WeaviateUnavailable, connect
from memory.weaviate_schema import (
    COLLECTION,
    VECTOR,
    matches_nothing,
    object_id,
    properties,
    tenant_name,
    to_filter,
    to_item,
    to_properties,
)

__all__ = ["ImportFailed", "ImportReport", "WeaviateStore", "WeaviateUnavailable", "connect"]

_READY_STATUSES = {TenantActivityStatus.ACTIVE, TenantActivityStatus.HOT}
# a filter with thousands of ids is slow to parse server-side; deletes go in slices
_IDS_PER_DELETE = 500


@dataclass(frozen=True)
class ImportReport:
    """What a batch import did: ids stored, and for each rejected item id, Weaviate's reason."""

    added: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class ImportFailed(RuntimeError):
    """Some items were rejected; the others were stored. `report` has both."""

    def __init__(self, report: ImportReport) -> None:
        first = next(iter(report.failed.items()))
        super().__init__(
            f"{len(report.failed)} of {len(report.added) + len(report.failed)} memories were not stored "
            f"(first: {first[0]}: {first[1]}); the other {len(report.added)} were"
        )
        self.report = report


class WeaviateStore(Closing):
    """MemoryStore on Weaviate. Pass a connected client (see `connect`) and the Embedder."""

    def __init__(self, client: weaviate.WeaviateClient, embedder: Embedder, collection: str = COLLECTION,
                 alpha: float = 0.5, batch_size: int = 200) -> None:
        self.client = client
        self.embedder = embedder
        self.name = collection
        # 0 is keyword only, 1 vector only
        self.alpha = alpha
        self.batch_size = batch_size
        self._collection: Collection | None = None
        self._tenants: set[str] = set()

    @classmethod
    def open(cls, url: str, embedder: Embedder, api_key: str | None = None, grpc_port: int = 50051,
             grpc_host: str | None = None, collection: str = COLLECTION) -> "WeaviateStore":
        """Connect to the Weaviate at `url` and use (creating on first write) `collection` there."""
        return cls(connect(url, api_key, grpc_port, grpc_host), embedder, collection)

    def close(self) -> None:
        self.client.close()

    # --- MemoryStore

    def add(self, items: Sequence[MemoryItem]) -> list[str]:
        report = self.import_items(items)
        if report.failed:
            raise ImportFailed(report)
        return report.added

    def search(self, workspace: str, query: str, limit: int = 10, where: SearchFilter | None = None) -> list[Hit]:
        if limit <= 0 or matches_nothing(where):
            return []
        tenant = self._existing_tenant(workspace)
        if tenant is None:
            return []
        vector = [float(v) for v in self.embedder.embed([query])[0]]
        try:
            result = self._use().with_tenant(tenant).query.hybrid(
                query=query,
                vector={VECTOR: vector},
                target_vector=VECTOR,
                query_properties=["text"],
                alpha=self.alpha,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                limit=limit,
                filters=to_filter(where),
                return_metadata=MetadataQuery(score=True),
            )
        except WeaviateBaseError as err:
            raise self._failed("search", workspace, err) from err
        return [
            Hit(item=to_item(workspace, obj.properties), score=float(obj.metadata.score or 0.0))
            for obj in result.objects
        ]

    def delete(self, workspace: str, ids: Sequence[str] | None = None, where: SearchFilter | None = None) -> int:
        """Delete by ids, by filter, or both (an item must match both); neither deletes nothing."""
        if matches_nothing(where):
            return 0
        tenant = self._existing_tenant(workspace)
        if tenant is None:
            return 0
        condition = to_filter(where)
        if ids is not None:
            unique = sorted(set(ids))
            deleted = 0
            for start in range(0, len(unique), _IDS_PER_DELETE):
                by_id = Filter.by_id().contains_any([object_id(i) for i in unique[start:start + _IDS_PER_DELETE]])
                deleted += self._delete_matching(workspace, tenant, by_id if condition is None else Filter.all_of([by_id, condition]))
            return deleted
        if condition is None:
            return 0
        return self._delete_matching(workspace, tenant, condition)

    def count(self, workspace: str, where: SearchFilter | None = None) -> int:
        if matches_nothing(where):
            return 0
        tenant = self._existing_tenant(workspace)
        if tenant is None:
            return 0
        try:
            result = self._use().with_tenant(tenant).aggregate.over_all(total_count=True, filters=to_filter(where))
        except WeaviateBaseError as err:
            raise self._failed("count", workspace, err) from err
        return int(result.total_count or 0)

    def matching(self, workspace: str, test: Callable[[str], bool]) -> list[MemoryItem]:
        """Every item of the workspace whose text passes `test` (a full scan: for forgetting)."""
        tenant = self._existing_tenant(workspace)
        if tenant is None:
            return []
        try:
            items = [to_item(workspace, o.properties) for o in self._use().with_tenant(tenant).iterator()]
        except WeaviateBaseError as err:
            raise self._failed("read", workspace, err) from err
        return [i for i in items if test(i.text)]

    # --- batch import

    def import_items(self, items: Sequence[MemoryItem]) -> ImportReport:
        """Store items in batches; a rejected item is reported and the others are still stored."""
        # the same id twice in one call: the last version wins, as it would across calls
        latest = {(item.workspace, item.id): item for item in items}
        report = ImportReport()
        by_workspace: dict[str, list[MemoryItem]] = {}
        for item in latest.values():
            by_workspace.setdefault(item.workspace, []).append(item)
        for workspace, group in by_workspace.items():
            tenant = self._ensure_tenant(workspace)
            for chunk in _chunks(group, self.batch_size):
                self._import_chunk(tenant, chunk, report)
        return report

    def _import_chunk(self, tenant: str, chunk: list[MemoryItem], report: ImportReport) -> None:
        vectors = self.embedder.embed([item.text for item in chunk])
        objects = [
            DataObject(properties=to_properties(item), uuid=object_id(item.id), vector={VECTOR: [float(v) for v in vector]})
            for item, vector in zip(chunk, vectors)
        ]
        try:
            result = self._use().with_tenant(tenant).data.insert_many(objects)
        except WeaviateInsertManyAllFailedError as err:
            # the client raises when every object failed; each one still gets its reason
            for item in chunk:
                report.failed[item.id] = err.message
            return
        except WeaviateBaseError as err:
            raise self._failed("store memories in", chunk[0].workspace, err) from err
        for index, item in enumerate(chunk):
            error = result.errors.get(index)
            if error is None:
                report.added.append(item.id)
            else:
                report.failed[item.id] = error.message

    # --- schema and tenants

    def _use(self) -> Collection:
        if self._collection is not None:
            return self._collection
        collections = self.client.collections
        try:
            if not collections.exists(self.name):
                try:
                    collections.create(
                        self.name,
                        description="Deputy semantic memory: one tenant per workspace",
                        properties=properties(),
                        vector_config=Configure.Vectors.self_provided(name=VECTOR),
                        multi_tenancy_config=Configure.multi_tenancy(enabled=True),
                    )
                except UnexpectedStatusCodeError as err:
                    # another worker created it between our check and our create
                    if not collections.exists(self.name):
                        raise WeaviateUnavailable(f"could not create the Weaviate collection {self.name}: {err}") from err
        except WeaviateUnavailable:
            raise
        except WeaviateBaseError as err:
            raise WeaviateUnavailable(f"Weaviate refused the schema check for {self.name} ({err}); check WEAVIATE_URL and WEAVIATE_API_KEY") from err
        self._collection = collections.use(self.name)
        return self._collection

    def _existing_tenant(self, workspace: str) -> str | None:
        name = tenant_name(workspace)
        if name in self._tenants:
            return name
        try:
            found = self._use().tenants.get_by_names([name])
        except WeaviateBaseError as err:
            raise self._failed("look up the tenant of", workspace, err) from err
        tenant = found.get(name)
        if tenant is None:
            return None
        if tenant.activity_status not in _READY_STATUSES:
            # an offloaded or cold workspace is woken up rather than reported empty
            self._use().tenants.update(Tenant(name=name, activity_status=TenantActivityStatus.ACTIVE))
        self._tenants.add(name)
        return name

    def _ensure_tenant(self, workspace: str) -> str:
        name = self._existing_tenant(workspace)
        if name is not None:
            return name
        name = tenant_name(workspace)
        try:
            self._use().tenants.create(Tenant(name=name))
        except UnexpectedStatusCodeError as err:
            # created concurrently by another worker is fine; anything else is not
            if self._existing_tenant(workspace) is None:
                raise self._failed("create the tenant of", workspace, err) from err
        self._tenants.add(name)
        return name

    def _delete_matching(self, workspace: str, tenant: str, condition: FilterReturn) -> int:
        deleted = 0
        data = self._use().with_tenant(tenant).data
        # one call deletes at most the server's QUERY_MAXIMUM_RESULTS objects (a limit we cannot
        # read), so repeat until a call deletes nothing
        while True:
            try:
                result = data.delete_many(where=condition)
            except WeaviateBaseError as err:
                raise self._failed("delete from", workspace, err) from err
            deleted += result.successful
            if result.successful == 0:
                return deleted

    def _failed(self, action: str, workspace: str, err: WeaviateBaseError) -> WeaviateUnavailable:
        # REST worked (we got this far) but gRPC did not: almost always the gRPC port or host
        hint = " (Weaviate's gRPC port did not answer: check WEAVIATE_GRPC_PORT and WEAVIATE_GRPC_HOST)" if "UNAVAILABLE" in str(err) else ""
        return WeaviateUnavailable(f"could not {action} workspace {workspace!r} in Weaviate collection {self.name}{hint}: {err}")


def _chunks(items: list[MemoryItem], size: int) -> Iterator[list[MemoryItem]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
