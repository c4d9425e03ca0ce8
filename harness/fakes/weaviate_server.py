"""A local Weaviate that speaks the wire protocol the v4 client uses: REST (aiohttp, here) for meta,
readiness, schema and tenants, and gRPC (harness/fakes/weaviate_grpc.py: the weaviate.v1 services
from the stubs shipped in the weaviate-client package) for Search, BatchObjects, BatchDelete,
Aggregate, TenantsGet and health.

Objects are really stored (harness/fakes/weaviate_data.py) so searches, filters, deletes and counts
answer like a server would. Every request is recorded in `requests` so tests can assert what
was sent, and `reject` makes the server refuse chosen objects in a batch, as Weaviate does
with a per-object error."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Callable

import grpc
from aiohttp import web

from harness.fakes.threaded_app import ThreadedApp

from harness.fakes.weaviate_data import CLASS_NAME, TENANT_NAME, FakeClass, Recorded, Rejector, Stored, WeaviateError
from harness.fakes.weaviate_grpc import grpc_server

VERSION = "1.32.4"
BODY = web.RequestKey("body", object)


class FakeWeaviate:
    def __init__(self, api_key: str | None = None, version: str = VERSION, max_delete: int = 10_000) -> None:
        self.api_key = api_key
        self.version = version
        # QUERY_MAXIMUM_RESULTS: one batch delete removes at most this many objects
        self.max_delete = max_delete
        self.classes: dict[str, FakeClass] = {}
        self.requests: list[Recorded] = []
        self.rejectors: list[Rejector] = []
        # request name ("POST /v1/schema") -> what happens just before the server handles it, once
        self.interleaved: dict[str, Callable[[FakeWeaviate], None]] = {}
        self.lock = threading.RLock()
        self.http_port = 0
        self.grpc_port = 0
        self._grpc: grpc.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- what tests use

    def reject(self, rejector: Rejector) -> None:
        self.rejectors.append(rejector)

    def before(self, name: str, event: Callable[["FakeWeaviate"], None]) -> None:
        """Run `event` (e.g. another worker's write) just before the next `name` request is handled."""
        self.interleaved[name] = event

    def calls(self, name: str) -> list[Recorded]:
        return [r for r in self.requests if r.name == name]

    def objects(self, collection: str, tenant: str) -> dict[str, Stored]:
        with self.lock:
            return dict(self.classes[collection].objects.get(tenant, {}))

    def set_tenant_status(self, collection: str, tenant: str, status: str) -> None:
        with self.lock:
            self.classes[collection].tenants[tenant] = status

    # --- REST

    def authorized(self, headers: dict[str, str]) -> bool:
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
        if request.path not in open_paths and not self.authorized(headers):
            return _rest_error(401, "anonymous access not enabled, please provide an auth scheme such as OIDC or API key")
        request[BODY] = body
        event = self.interleaved.pop(f"{request.method} {request.path}", None)
        if event is not None:
            # off the event loop, so the event may itself call this server (as another client would)
            await asyncio.get_running_loop().run_in_executor(None, event, self)
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

    def find_class(self, name: str) -> FakeClass | None:
        return self.classes.get(name[:1].upper() + name[1:])

    def _class(self, request: web.Request) -> FakeClass:
        found = self.find_class(request.match_info["cls"])
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

    # --- lifecycle

    def start(self, http_port: int = 0, grpc_port: int = 0) -> "FakeWeaviate":
        """Serve REST and gRPC, on free ports by default (a test of a Weaviate that comes up late names its ports)."""
        self._http = ThreadedApp([
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
        ], middlewares=[self._rest_middleware], client_max_size=64 * 1024 * 1024)
        self.http_port = self._http.start(http_port)

        server = grpc_server(self)
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        server.start()
        self._grpc = server
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(0)
        self._http.stop()


def _rest_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": [{"message": message}]}, status=status)


def _rest_status(status: str | None) -> str:
    return {"HOT": "ACTIVE", "COLD": "INACTIVE", None: "ACTIVE"}.get(status, status or "ACTIVE")
