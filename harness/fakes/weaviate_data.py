"""The database behind the local Weaviate (harness/fakes/weaviate_server.py): collections with
tenants and objects, filter evaluation on the wire's Filters message, and hybrid ranking.

It follows Weaviate's rules where they change what a client sees: multi-tenant collections need a
tenant on every request, unknown tenants and properties are errors, property types and vector
lengths are checked per object, hybrid search fuses BM25 and cosine scores by relative score
(or by rank), and one batch delete removes at most `max_delete` objects."""
from __future__ import annotations

import fnmatch
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from weaviate.proto.v1 import base_pb2, base_search_pb2

F = base_pb2.Filters
TENANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CLASS_NAME = re.compile(r"^[A-Z][_0-9A-Za-z]*$")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
# each half of a hybrid query ranks this many candidates before fusion, as Weaviate does
HYBRID_CANDIDATES = 100


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


class WeaviateError(Exception):
    """An error Weaviate would answer with (422 over REST, a status over gRPC)."""


@dataclass
class Stored:
    uuid: str
    properties: dict[str, Any]
    vectors: dict[str, list[float]]
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class FakeClass:
    config: dict[str, Any]
    # tenant name -> activity status ("ACTIVE", "INACTIVE", ...); "" holds a single-tenant class
    tenants: dict[str, str] = field(default_factory=dict)
    objects: dict[str, dict[str, Stored]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.config["class"])

    @property
    def multi_tenant(self) -> bool:
        return bool(self.config.get("multiTenancyConfig", {}).get("enabled"))

    def prop(self, name: str) -> dict[str, Any]:
        for prop in self.config.get("properties", []):
            if prop["name"] == name:
                return prop
        raise WeaviateError(f"no such prop with name '{name}' found in class '{self.name}' in the schema")

    def shard(self, tenant: str) -> dict[str, Stored]:
        if not self.multi_tenant:
            if tenant:
                raise WeaviateError(f"class {self.name} does not have multi-tenancy enabled, but request was with tenant")
            return self.objects.setdefault("", {})
        if not tenant:
            raise WeaviateError(f"class {self.name} has multi-tenancy enabled, but request was without tenant")
        if tenant not in self.tenants:
            raise WeaviateError(f'tenant not found: "{tenant}"')
        if self.tenants[tenant] not in ("ACTIVE", "HOT"):
            raise WeaviateError(f"tenant not active: {tenant!r} is {self.tenants[tenant]}")
        return self.objects.setdefault(tenant, {})

    # --- writes

    def check_object(self, tenant: str, properties: dict[str, Any], vectors: dict[str, list[float]]) -> None:
        for name, value in properties.items():
            data_type = self.prop(name)["dataType"][0]
            if data_type == "text" and not isinstance(value, str):
                raise WeaviateError(f"invalid text property '{name}' on class '{self.name}': not a string, but {type(value).__name__}")
            if data_type in ("number", "int") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise WeaviateError(f"invalid {data_type} property '{name}' on class '{self.name}': requires a number")
        configured = set(self.config.get("vectorConfig", {}))
        for name, vector in vectors.items():
            if configured and name not in configured:
                raise WeaviateError(f"collection {self.name} does not have configured vector '{name}'")
            for other in self.shard(tenant).values():
                existing = other.vectors.get(name)
                if existing is not None and len(existing) != len(vector):
                    raise WeaviateError(
                        f"new node has a vector with length {len(vector)}. Existing nodes have vectors with length {len(existing)}"
                    )
                if existing is not None:
                    break

    # --- reads

    def matching(self, tenant: str, where: base_pb2.Filters | None) -> list[Stored]:
        objects = list(self.shard(tenant).values())
        if where is None:
            return objects
        return [obj for obj in objects if self.matches(where, obj)]

    def matches(self, f: base_pb2.Filters, obj: Stored) -> bool:
        if f.operator == F.OPERATOR_AND:
            return all(self.matches(sub, obj) for sub in f.filters)
        if f.operator == F.OPERATOR_OR:
            return any(self.matches(sub, obj) for sub in f.filters)
        if f.operator == F.OPERATOR_NOT:
            return not self.matches(f.filters[0], obj)
        path = f.target.property if f.HasField("target") else (f.on[0] if f.on else "")
        if path in ("_id", "id"):
            actual: Any = obj.uuid
        else:
            prop = self.prop(path)
            if prop.get("indexFilterable") is False:
                raise WeaviateError(f"Filtering by property '{path}' requires inverted index. Is `indexFilterable` option of property '{path}' enabled?")
            actual = obj.properties.get(path)
        return _compare(f, actual)

    def bm25(self, candidates: Sequence[Stored], query: str, properties: Sequence[str]) -> dict[str, float]:
        props = list(properties) or [
            p["name"] for p in self.config.get("properties", [])
            if p["dataType"][0] == "text" and p.get("indexSearchable", True)
        ]
        terms = _tokens(query)
        if not terms or not candidates:
            return {}
        docs = {obj.uuid: Counter(t for p in props for t in _tokens(str(obj.properties.get(p) or ""))) for obj in candidates}
        avg_len = sum(sum(c.values()) for c in docs.values()) / len(docs) or 1.0
        n = len(docs)
        scores: dict[str, float] = {}
        for term in set(terms):
            df = sum(1 for c in docs.values() if term in c)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for uid, counts in docs.items():
                tf = counts.get(term, 0)
                if tf:
                    length = sum(counts.values())
                    scores[uid] = scores.get(uid, 0.0) + idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg_len))
        return scores

    def vector_similarity(self, candidates: Sequence[Stored], query: list[float], target: str) -> dict[str, float]:
        norm_q = math.sqrt(sum(v * v for v in query)) or 1.0
        scores: dict[str, float] = {}
        for obj in candidates:
            vector = obj.vectors.get(target)
            if vector is None:
                continue
            if len(vector) != len(query):
                raise WeaviateError(f"vector search: knn search: distance between entrypoint and query node: vector lengths don't match: {len(vector)} vs {len(query)}")
            norm_v = math.sqrt(sum(v * v for v in vector)) or 1.0
            scores[obj.uuid] = sum(a * b for a, b in zip(query, vector)) / (norm_q * norm_v)
        return scores

    def hybrid(self, tenant: str, hybrid: base_search_pb2.Hybrid, query_vector: list[float] | None, target: str,
               where: base_pb2.Filters | None) -> list[tuple[Stored, float]]:
        candidates = self.matching(tenant, where)
        by_id = {obj.uuid: obj for obj in candidates}
        alpha = hybrid.alpha_param if hybrid.use_alpha_param else hybrid.alpha
        keyword = _top(self.bm25(candidates, hybrid.query, hybrid.properties))
        vector = _top(self.vector_similarity(candidates, query_vector, target)) if query_vector else {}
        fused: dict[str, float] = {}
        ranked = hybrid.fusion_type == base_search_pb2.Hybrid.FusionType.FUSION_TYPE_RANKED
        for weight, scores in ((alpha, vector), (1.0 - alpha, keyword)):
            if weight <= 0 or not scores:
                continue
            if ranked:
                for rank, uid in enumerate(sorted(scores, key=lambda u: -scores[u])):
                    fused[uid] = fused.get(uid, 0.0) + weight / (60 + rank)
            else:
                low, high = min(scores.values()), max(scores.values())
                for uid, score in scores.items():
                    normalised = (score - low) / (high - low) if high > low else 1.0
                    fused[uid] = fused.get(uid, 0.0) + weight * normalised
        order = sorted(fused, key=lambda u: (-fused[u], u))
        return [(by_id[uid], fused[uid]) for uid in order]


def _top(scores: dict[str, float]) -> dict[str, float]:
    best = sorted(scores, key=lambda u: -scores[u])[:HYBRID_CANDIDATES]
    return {uid: scores[uid] for uid in best}


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in WORD.findall(text)]


def _expected(f: base_pb2.Filters) -> Any:
    kind = f.WhichOneof("test_value")
    if kind is None:
        raise WeaviateError("filter has no value")
    value = getattr(f, kind)
    if kind.endswith("_array"):
        return list(value.values)
    return value


def _compare(f: base_pb2.Filters, actual: Any) -> bool:
    expected = _expected(f)
    op = f.operator
    values = actual if isinstance(actual, list) else [actual]
    if op == F.OPERATOR_IS_NULL:
        return (actual is None) == bool(expected)
    if op == F.OPERATOR_CONTAINS_ANY:
        return any(v in expected for v in values if v is not None)
    if op == F.OPERATOR_CONTAINS_ALL:
        return all(e in values for e in expected)
    if op == F.OPERATOR_CONTAINS_NONE:
        return not any(v in expected for v in values if v is not None)
    if actual is None:
        return op == F.OPERATOR_NOT_EQUAL
    if op == F.OPERATOR_EQUAL:
        return actual == expected
    if op == F.OPERATOR_NOT_EQUAL:
        return actual != expected
    if op == F.OPERATOR_LIKE:
        return fnmatch.fnmatchcase(str(actual), str(expected))
    if op == F.OPERATOR_GREATER_THAN:
        return actual > expected
    if op == F.OPERATOR_GREATER_THAN_EQUAL:
        return actual >= expected
    if op == F.OPERATOR_LESS_THAN:
        return actual < expected
    if op == F.OPERATOR_LESS_THAN_EQUAL:
        return actual <= expected
    raise WeaviateError(f"unsupported filter operator {F.Operator.Name(op)}")
