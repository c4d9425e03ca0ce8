"""Connecting to Weaviate: REST readiness and the gRPC port checked up front, with errors that
name the setting to fix."""
from __future__ import annotations

from urllib.parse import urlparse

import grpc
import weaviate
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.exceptions import WeaviateBaseError
from weaviate.proto.v1 import health_weaviate_pb2


class WeaviateUnavailable(RuntimeError):
    """Weaviate could not be reached or refused us; the message says what to check."""


def connect(url: str, api_key: str | None = None, grpc_port: int = 50051, grpc_host: str | None = None,
            timeout_s: float = 30.0) -> weaviate.WeaviateClient:
    """A connected client for the Weaviate at `url` (REST) and its gRPC port.

    The client's own init checks are skipped on purpose (they also query PyPI for a newer
    client, which workers must not do); readiness and the gRPC port are checked here instead."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise WeaviateUnavailable(f"WEAVIATE_URL {url!r} has no host; use e.g. http://127.0.0.1:8080")
    secure = parsed.scheme == "https"
    try:
        client = weaviate.connect_to_custom(
            http_host=parsed.hostname,
            http_port=parsed.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=grpc_host or parsed.hostname,
            grpc_port=grpc_port,
            grpc_secure=secure,
            auth_credentials=Auth.api_key(api_key) if api_key else None,
            additional_config=AdditionalConfig(timeout=Timeout(init=timeout_s, query=timeout_s, insert=timeout_s)),
            skip_init_checks=True,
        )
    except WeaviateBaseError as err:
        raise WeaviateUnavailable(
            f"Weaviate at {url} did not answer ({err}); check WEAVIATE_URL and WEAVIATE_API_KEY, "
            "or unset WEAVIATE_URL to use the embedded store"
        ) from err
    if not client.is_ready():
        client.close()
        raise WeaviateUnavailable(f"Weaviate at {url} is not ready (GET /v1/.well-known/ready failed); is it still starting?")
    # checked here because the client retries a dead gRPC port for about a minute per call
    grpc_address = f"{grpc_host or parsed.hostname}:{grpc_port}"
    try:
        serving = _check_grpc(grpc_address, secure, min(timeout_s, 10.0))
    except grpc.RpcError as err:
        client.close()
        raise WeaviateUnavailable(
            f"Weaviate at {url} answers, but its gRPC port {grpc_address} does not ({err.code().name}); "  # type: ignore[attr-defined]
            "set WEAVIATE_GRPC_PORT (and WEAVIATE_GRPC_HOST if gRPC is served elsewhere)"
        ) from err
    if not serving:
        client.close()
        raise WeaviateUnavailable(f"Weaviate at {url} reports its gRPC service as not serving; is it still starting?")
    return client


def _check_grpc(address: str, secure: bool, timeout_s: float) -> bool:
    channel = grpc.secure_channel(address, grpc.ssl_channel_credentials()) if secure else grpc.insecure_channel(address)
    with channel:
        # Weaviate's health service, called the way the client's own start-up check calls it
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_weaviate_pb2.WeaviateHealthCheckRequest.SerializeToString,
            response_deserializer=health_weaviate_pb2.WeaviateHealthCheckResponse.FromString,
        )
        reply = check(health_weaviate_pb2.WeaviateHealthCheckRequest(), timeout=timeout_s)
    return bool(reply.status == health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING)
