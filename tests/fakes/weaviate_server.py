"""A local Weaviate that speaks the wire protocol the v4 client uses: REST (aiohttp) for meta,
readiness, schema and tenants, and gRPC (the weaviate.v1 services from the stubs shipped in the
weaviate-client package) for Search, BatchObjects, BatchDelete, Aggregate, TenantsGet and health.

Objects are really stored (tests/fakes/weaviate_data.py) so searches, filters, deletes and counts
answer like a server would. Every request is recorded in `requests` so tests can assert what
was sent, and `reject` makes the server refuse chosen objects in a batch, as Weaviate does
with a per-object error."""
from __future__ import annotations

import asyncio
import json
import struct
import threading
import uuid as uuid_lib
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable

import grpc
from aiohttp import web
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

from tests.fakes.weaviate_data import CLASS_NAME, TENANT_NAME, FakeClass, Stored, WeaviateError

VERSION = "1.32.4"
BODY = web.RequestKey("body", object)
_STATUS_TO_GRPC = {
    "ACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE,
    "HOT": tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE,
    "INACTIVE": tenants_pb2.TENANT_ACTIVITY_STATUS_INACTIVE,
    "COLD": tenants_pb2.TENANT_ACTIVITY_STATUS_INACTIVE,
    "OFFLOADED": tenants_pb2.TENANT_ACTIVITY_STATUS_OFFLOADED,
}


@dataclass(frozen=True)
class Recorded:
    # "rest" or "grpc"
    kind: str
    # "POST /v1/schema" or the gRPC method name ("BatchObjects")
    name: str
    # the JSON body, or the decoded protobuf request
    body: Any
    # HTTP headers, or gRPC metadata
    headers: dict[str, str]


# an object's class, tenant and properties -> an error message to reject it with, or None
Rejector = Callable[[str, str, dict[str, Any]], "str | None"]


class FakeWeaviate:
    def __init__(self, api_key: str | None = None, version: str = VERSION, max_delete: int = 10_000) -> None:
        self.api_key = api_key
        self.version = version
        # QUERY_MAXIMUM_RESULTS: one batch delete removes at most this many objects
        self.max_delete = max_delete
        self.classes: dict[str, FakeClass] = {}
        self.requests: list[Recorded] = []
        self.rejectors: list[Rejector] = []
        self.lock = threading.RLock()
        self.http_port = 0
        self.grpc_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- what tests use

    def reject(self, rejector: Rejector) -> None:
        self.rejectors.append(rejector)

    def calls(self, name: str) -> list[Recorded]:
        return [r for r in self.requests if r.name == name]

    def objects(self, collection: str, tenant: str) -> dict[str, Stored]:
        with self.lock:
            return dict(self.classes[collection].objects.get(tenant, {}))

    def set_tenant_status(self, collection: str, tenant: str, status: str) -> None:
        with self.lock:
            self.classes[collection].tenants[tenant] = status

    # --- REST

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        return auth == f"Bearer {self.api_key}"

    @web.middleware
    async def _rest_middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        headers = dict(request.headers)
        self.requests.append(Recorded("rest", f"{request.method} {request.path}", body, headers))
        open_paths = ("/v1/.well-known/ready", "/v1/.well-known/live", "/v1/.well-known/openid-configuration")
        if request.path not in open_paths and not self._authorized(headers):
            return _rest_error(401, "anonymous access not enabled, please provide an auth scheme such as OIDC or API key")
        request[BODY] = body
        try:
            with self.lock:
                return await handler(request)
        except WeaviateError as err:
            return _rest_error(422, str(err))

    async def _meta(self, request: web.Request) -> web.Response:
        return web.json_response({"hostname": "http://[::]:8080", "version": self.version, "modules": {}, "grpcMaxMessageSize": 104858000})

    async def _ok(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _no_oidc(self, request: web.Request) -> web.Response:
        return web.json_response({"error": [{"message": "OIDC is not configured"}]}, status=404)

    async def _schema(self, request: web.Request) -> web.Response:
        return web.json_response({"classes": [c.config for c in self.classes.values()]})

    async def _create_class(self, request: web.Request) -> web.Response:
        config = dict(request[BODY])
        name = str(config.get("class", ""))
        if not CLASS_NAME.match(name):
            raise WeaviateError(f"'{name}' is not a valid class name")
        if name in self.classes:
            raise WeaviateError(f'class name "{name}" already exists')
        for prop in config.get("properties", []):
            prop.setdefault("indexFilterable", True)
            prop.setdefault("indexSearchable", prop["dataType"][0] == "text")
        config.setdefault("multiTenancyConfig", {"enabled": False})
        self.classes[name] = FakeClass(config)
        return web.json_response(config)

    def _class(self, request: web.Request) -> FakeClass:
        name = request.match_info["cls"]
        found = self.classes.get(name[:1].upper() + name[1:])
        if found is None:
            raise web.HTTPNotFound()
        return found

    async def _get_class(self, request: web.Request) -> web.Response:
        return web.json_response(self._class(request).config)

    async def _delete_class(self, request: web.Request) -> web.Response:
        self.classes.pop(self._class(request).name, None)
        return web.json_response({})

    async def _tenants(self, request: web.Request) -> web.Response:
        cls = self._class(request)
        return web.json_response([{"name": n, "activityStatus": s} for n, s in cls.tenants.items()])

    async def _create_tenants(self, request: web.Request) -> web.Response:
        cls = self._class(request)
        if not cls.multi_tenant:
            raise WeaviateError(f"multi-tenancy is not enabled for class {cls.name!r}")
        wanted = request[BODY] or []
        for tenant in wanted:
            if not TENANT_NAME.match(tenant.get("name", "")):
                raise WeaviateError(f"tenant name {tenant.get('name')!r} should match {TENANT_NAME.pattern}")
            if tenant["name"] in cls.tenants:
                raise WeaviateError(f"tenant {tenant['name']!r} already exists")
        for tenant in wanted:
            cls.tenants[tenant["name"]] = _rest_status(tenant.get("activityStatus"))
        return web.json_response(wanted)

    async def _update_tenants(self, request: web.Request) -> web.Response:
        cls = self._class(request)
        for tenant in request[BODY] or []:
            if tenant["name"] not in cls.tenants:
                raise WeaviateError(f'tenant not found: "{tenant["name"]}"')
            cls.tenants[tenant["name"]] = _rest_status(tenant.get("activityStatus"))
        return web.json_response(request[BODY])

    async def _tenant_exists(self, request: web.Request) -> web.Response:
        cls = self._class(request)
        return web.Response(status=200 if request.match_info["tenant"] in cls.tenants else 404)

    # --- gRPC (each method: record, check auth, run under the lock, map errors to a status)

    def _grpc_call(self, name: str, request: Any, context: grpc.ServicerContext, work: Callable[[], Any]) -> Any:
        metadata = {k: v for k, v in context.invocation_metadata()}
        self.requests.append(Recorded("grpc", name, request, metadata))
        if not self._authorized(metadata):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "anonymous access not enabled")
        try:
            with self.lock:
                return work()
        except WeaviateError as err:
            context.abort(grpc.StatusCode.UNKNOWN, str(err))

    def _grpc_class(self, name: str) -> FakeClass:
        found = self.classes.get(name[:1].upper() + name[1:])
        if found is None:
            raise WeaviateError(f"could not find class {name} in schema")
        return found

    def search(self, request: search_get_pb2.SearchRequest, context: grpc.ServicerContext) -> search_get_pb2.SearchReply:
        def work() -> search_get_pb2.SearchReply:
            cls = self._grpc_class(request.collection)
            where = request.filters if request.HasField("filters") else None
            if request.HasField("hybrid_search"):
                hybrid = request.hybrid_search
                target = _target_vector(cls, hybrid.target_vectors or hybrid.targets.target_vectors)
                ranked = cls.hybrid(request.tenant, hybrid, _query_vector(hybrid, target), target, where)
            else:
                ranked = [(obj, 0.0) for obj in cls.matching(request.tenant, where)]
            limit = request.limit or 10
            page = ranked[request.offset:request.offset + limit]
            wanted = set(request.properties.non_ref_properties) if request.HasField("properties") and not request.properties.return_all_nonref_properties else None
            return search_get_pb2.SearchReply(took=0.001, results=[_result(cls, obj, score, wanted, request.metadata) for obj, score in page])

        return self._grpc_call("Search", request, context, work)

    def batch_objects(self, request: batch_pb2.BatchObjectsRequest, context: grpc.ServicerContext) -> batch_pb2.BatchObjectsReply:
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
        for rejector in self.rejectors:
            reason = rejector(cls.name, obj.tenant, properties)
            if reason:
                raise WeaviateError(reason)
        shard[obj.uuid] = Stored(obj.uuid, properties, vectors)

    def batch_delete(self, request: batch_delete_pb2.BatchDeleteRequest, context: grpc.ServicerContext) -> batch_delete_pb2.BatchDeleteReply:
        def work() -> batch_delete_pb2.BatchDeleteReply:
            cls = self._grpc_class(request.collection)
            if not request.HasField("filters"):
                raise WeaviateError("batch delete needs a filter")
            matched = cls.matching(request.tenant, request.filters)[: self.max_delete]
            if not request.dry_run:
                shard = cls.shard(request.tenant)
                for obj in matched:
                    shard.pop(obj.uuid, None)
            objects = [batch_delete_pb2.BatchDeleteObject(uuid=uuid_lib.UUID(o.uuid).bytes, successful=True) for o in matched] if request.verbose else []
            done = 0 if request.dry_run else len(matched)
            return batch_delete_pb2.BatchDeleteReply(took=0.001, matches=len(matched), successful=done, failed=0, objects=objects)

        return self._grpc_call("BatchDelete", request, context, work)

    def aggregate(self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext) -> aggregate_pb2.AggregateReply:
        def work() -> aggregate_pb2.AggregateReply:
            cls = self._grpc_class(request.collection)
            matched = cls.matching(request.tenant, request.filters if request.HasField("filters") else None)
            return aggregate_pb2.AggregateReply(
                took=0.001, single_result=aggregate_pb2.AggregateReply.Single(objects_count=len(matched))
            )

        return self._grpc_call("Aggregate", request, context, work)

    def tenants_get(self, request: tenants_pb2.TenantsGetRequest, context: grpc.ServicerContext) -> tenants_pb2.TenantsGetReply:
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
        self.requests.append(Recorded("grpc", "Health", request, {}))
        return health_weaviate_pb2.WeaviateHealthCheckResponse(status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING)

    # --- lifecycle

    def start(self) -> "FakeWeaviate":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(middlewares=[self._rest_middleware], client_max_size=64 * 1024 * 1024)
            app.add_routes([
                web.get("/v1/meta", self._meta),
                web.get("/v1/.well-known/ready", self._ok),
                web.get("/v1/.well-known/live", self._ok),
                web.get("/v1/.well-known/openid-configuration", self._no_oidc),
                web.get("/v1/schema", self._schema),
                web.post("/v1/schema", self._create_class),
                web.get("/v1/schema/{cls}", self._get_class),
                web.delete("/v1/schema/{cls}", self._delete_class),
                web.get("/v1/schema/{cls}/tenants", self._tenants),
                web.post("/v1/schema/{cls}/tenants", self._create_tenants),
                web.put("/v1/schema/{cls}/tenants", self._update_tenants),
                web.head("/v1/schema/{cls}/tenants/{tenant}", self._tenant_exists),
            ])
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = weaviate_pb2_grpc.WeaviateServicer()
        servicer.Search = self.search  # type: ignore[method-assign]
        servicer.BatchObjects = self.batch_objects  # type: ignore[method-assign]
        servicer.BatchDelete = self.batch_delete  # type: ignore[method-assign]
        servicer.Aggregate = self.aggregate  # type: ignore[method-assign]
        servicer.TenantsGet = self.tenants_get  # type: ignore[method-assign]
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(servicer, server)
        # the client checks health with Weaviate's own copy of grpc.health.v1 messages
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.health,
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
            ),
        })])
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(0)
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)


def _rest_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": [{"message": message}]}, status=status)


def _rest_status(status: str | None) -> str:
    return {"HOT": "ACTIVE", "COLD": "INACTIVE", None: "ACTIVE"}.get(status, status or "ACTIVE")


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
