"""The gRPC half of the local Weaviate: the weaviate.v1.Weaviate service (from the stubs shipped in
the weaviate-client package) and the health check, over the state FakeWeaviate keeps."""
from __future__ import annotations

import struct
import uuid as uuid_lib
from concurrent import futures
from typing import TYPE_CHECKING, Any, Callable

import grpc
from google.protobuf import json_format
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from harness.fakes.weaviate_data import FakeClass, Recorded, Stored, WeaviateError

if TYPE_CHECKING:
    from harness.fakes.weaviate_server import FakeWeaviate

_STATUS_TO_GRPC = {
    "ACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE,
    "HOT": tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE,
    "INACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_INACTIVE,
    "COLD": tenants_pb2.TENANT_ACTIVITY_STATUS_INACTIVE,
    "OFFLOADED": tenants_pb2.TENANT_ACTIVITY_STATUS_OFFLOADED,
}


def grpc_server(server: "FakeWeaviate") -> grpc.Server:
    """A gRPC server over `server`'s state; the caller binds a port and starts it."""
    serving = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = WeaviateService(server)
    weaviate_pb2_grpc.add_WeaviateServicer_to_server(servicer, serving)
    # the client checks health with Weaviate's own copy of the grpc.health.v1 messages
    serving.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.health,
            request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
            response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
        ),
    })])
    return serving


class WeaviateService(weaviate_pb2_grpc.WeaviateServicer):
    """Each method records the call, checks the API key, runs under the server's lock and turns a
    WeaviateError into a gRPC status, as Weaviate does."""

    def __init__(self, server: "FakeWeaviate") -> None:
        self.server = server

    def _grpc_call(self, name: str, request: Any, context: grpc.ServicerContext, work: Callable[[], Any]) -> Any:
        metadata = {k: v for k, v in context.invocation_metadata()}
        self.server.requests.append(Recorded("grpc", name, request, metadata))
        if not self.server.authorized(metadata):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "anonymous access not enabled")
        try:
            with self.server.lock:
                return work()
        except WeaviateError as err:
            context.abort(grpc.StatusCode.UNKNOWN, str(err))

    def _grpc_class(self, name: str) -> FakeClass:
        found = self.server.find_class(name)
        if found is None:
            raise WeaviateError(f"could not find class {name} in schema")
        return found

    def Search(self, request: search_get_pb2.SearchRequest, context: grpc.ServicerContext) -> search_get_pb2.SearchReply:
        def work() -> search_get_pb2.SearchReply:
            cls = self._grpc_class(request.collection)
            where = request.filters if request.HasField("filters") else None
            if request.HasField("hybrid_search"):
                hybrid = request.hybrid_search
                target = _target_vector(cls, hybrid.target_vectors or hybrid.targets.target_vectors)
                ranked = cls.hybrid(request.tenant, hybrid, _query_vector(hybrid, target), target, where)
            else:
                # a plain fetch lists objects in id order, as Weaviate does; `after` is the iterator's cursor
                ranked = sorted(((obj, 0.0) for obj in cls.matching(request.tenant, where) if obj.uuid > request.after),
                                key=lambda pair: pair[0].uuid)
            limit = request.limit or 10
            page = ranked[request.offset:request.offset + limit]
            wanted = set(request.properties.non_ref_properties) if request.HasField("properties") and not request.properties.return_all_nonref_properties else None
            return search_get_pb2.SearchReply(took=0.001, results=[_result(cls, obj, score, wanted, request.metadata) for obj, score in page])

        return self._grpc_call("Search", request, context, work)

    def BatchObjects(self, request: batch_pb2.BatchObjectsRequest, context: grpc.ServicerContext) -> batch_pb2.BatchObjectsReply:
        def work() -> batch_pb2.BatchObjectsReply:
            errors = []
            for index, obj in enumerate(request.objects):
                try:
                    self._store(obj)
                except WeaviateError as err:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error=str(err)))
            return batch_pb2.BatchObjectsReply(took=0.001, errors=errors)

        return self._grpc_call("BatchObjects", request, context, work)

    def _store(self, obj: batch_pb2.BatchObject) -> None:
        cls = self._grpc_class(obj.collection)
        properties = json_format.MessageToDict(obj.properties.non_ref_properties) if obj.properties.HasField("non_ref_properties") else {}
        for array in obj.properties.text_array_properties:
            properties[array.prop_name] = list(array.values)
        vectors: dict[str, list[float]] = {}
        if obj.vector_bytes:
            vectors["default"] = _floats(obj.vector_bytes)
        elif obj.vector:
            vectors["default"] = list(obj.vector)
        for named in obj.vectors:
            vectors[named.name or "default"] = _floats(named.vector_bytes)
        shard = cls.shard(obj.tenant)
        cls.check_object(obj.tenant, properties, vectors)
        for rejector in self.server.rejectors:
            reason = rejector(cls.name, obj.tenant, properties)
            if reason:
                raise WeaviateError(reason)
        shard[obj.uuid] = Stored(obj.uuid, properties, vectors)

    def BatchDelete(self, request: batch_delete_pb2.BatchDeleteRequest, context: grpc.ServicerContext) -> batch_delete_pb2.BatchDeleteReply:
        def work() -> batch_delete_pb2.BatchDeleteReply:
            cls = self._grpc_class(request.collection)
            if not request.HasField("filters"):
                raise WeaviateError("batch delete needs a filter")
            matched = cls.matching(request.tenant, request.filters)[: self.server.max_delete]
            if not request.dry_run:
                shard = cls.shard(request.tenant)
                for obj in matched:
                    shard.pop(obj.uuid, None)
            objects = [batch_delete_pb2.BatchDeleteObject(uuid=uuid_lib.UUID(o.uuid).bytes, successful=True) for o in matched] if request.verbose else []
            done = 0 if request.dry_run else len(matched)
            return batch_delete_pb2.BatchDeleteReply(took=0.001, matches=len(matched), successful=done, failed=0, objects=objects)

        return self._grpc_call("BatchDelete", request, context, work)

    def Aggregate(self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext) -> aggregate_pb2.AggregateReply:
        def work() -> aggregate_pb2.AggregateReply:
            cls = self._grpc_class(request.collection)
            matched = cls.matching(request.tenant, request.filters if request.HasField("filters") else None)
            return aggregate_pb2.AggregateReply(
                took=0.001, single_result=aggregate_pb2.AggregateReply.Single(objects_count=len(matched))
            )

        return self._grpc_call("Aggregate", request, context, work)

    def TenantsGet(self, request: tenants_pb2.TenantsGetRequest, context: grpc.ServicerContext) -> tenants_pb2.TenantsGetReply:
        def work() -> tenants_pb2.TenantsGetReply:
            cls = self._grpc_class(request.collection)
            if not cls.multi_tenant:
                raise WeaviateError(f"multi-tenancy is not enabled for class {cls.name!r}")
            names = list(request.names.values) if request.HasField("names") else list(cls.tenants)
            return tenants_pb2.TenantsGetReply(took=0.001, tenants=[
                tenants_pb2.Tenant(name=n, activity_status=_STATUS_TO_GRPC[cls.tenants[n]]) for n in names if n in cls.tenants
            ])

        return self._grpc_call("TenantsGet", request, context, work)

    def health(self, request: health_weaviate_pb2.WeaviateHealthCheckRequest, context: grpc.ServicerContext) -> health_weaviate_pb2.WeaviateHealthCheckResponse:
        self.server.requests.append(Recorded("grpc", "Health", request, {}))
        return health_weaviate_pb2.WeaviateHealthCheckResponse(status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING)


def _floats(raw: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _target_vector(cls: FakeClass, targets: Any) -> str:
    configured = list(cls.config.get("vectorConfig", {})) or ["default"]
    names = list(targets)
    if not names and len(configured) > 1:
        raise WeaviateError("multiple vectors configured: a target vector is required")
    target = names[0] if names else configured[0]
    if target not in configured:
        raise WeaviateError(f"target vector {target!r} does not exist in collection {cls.name}")
    return target


def _query_vector(hybrid: Any, target: str) -> list[float] | None:
    if hybrid.vector_bytes:
        return _floats(hybrid.vector_bytes)
    if hybrid.vector:
        return list(hybrid.vector)
    if hybrid.vectors:
        return _floats(hybrid.vectors[0].vector_bytes)
    if not hybrid.HasField("near_vector"):
        return None
    near = hybrid.near_vector
    for entry in near.vector_for_targets:
        if entry.name == target:
            return _floats(entry.vectors[0].vector_bytes if entry.vectors else entry.vector_bytes)
    if target in near.vector_per_target:
        return _floats(near.vector_per_target[target])
    if near.vectors:
        return _floats(near.vectors[0].vector_bytes)
    return _floats(near.vector_bytes) if near.vector_bytes else None


def _value(cls: FakeClass, name: str, value: Any) -> properties_pb2.Value:
    if value is None:
        return properties_pb2.Value(null_value=0)
    data_type = cls.prop(name)["dataType"][0]
    if data_type == "number":
        return properties_pb2.Value(number_value=float(value))
    if data_type == "int":
        return properties_pb2.Value(int_value=int(value))
    if data_type == "boolean":
        return properties_pb2.Value(bool_value=bool(value))
    if data_type == "text[]":
        return properties_pb2.Value(list_value=properties_pb2.ListValue(text_values=properties_pb2.TextValues(values=value)))
    return properties_pb2.Value(text_value=str(value))


def _result(cls: FakeClass, obj: Stored, score: float, wanted: set[str] | None,
            metadata: search_get_pb2.MetadataRequest) -> search_get_pb2.SearchResult:
    fields = {k: _value(cls, k, v) for k, v in obj.properties.items() if wanted is None or k in wanted}
    meta = search_get_pb2.MetadataResult(
        id=obj.uuid, id_as_bytes=uuid_lib.UUID(obj.uuid).bytes, score=score, score_present=metadata.score,
        creation_time_unix=obj.created_ms, creation_time_unix_present=metadata.creation_time_unix,
        vectors=[
            base_pb2.Vectors(name=n, vector_bytes=struct.pack(f"<{len(v)}f", *v), type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32)
            for n, v in obj.vectors.items() if n in metadata.vectors
        ],
    )
    return search_get_pb2.SearchResult(
        properties=search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields=fields), target_collection=cls.name),
        metadata=meta,
    )
