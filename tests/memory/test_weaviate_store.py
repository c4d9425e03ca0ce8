"""The Weaviate backend, driven through the real weaviate-client against a local server that speaks
Weaviate's REST and gRPC wire protocol (harness/fakes/weaviate_server.py).

Behaviour tests also run against a real Weaviate when WEAVIATE_URL is set (each in a collection of
its own, dropped afterwards); tests that read the recorded requests need the local server."""
from __future__ import annotations

import hashlib
import struct
import uuid
from typing import Iterator, Sequence

import numpy as np
import pytest

from kernel.settings import load_settings
from memory.embeddings import Embedder, MiniLmEmbedder
from memory.store import MemoryItem, SearchFilter
from memory.weaviate_connect import WeaviateUnavailable, connect
from memory.weaviate_schema import object_id, tenant_name
from memory.weaviate_store import ImportFailed, WeaviateStore
from harness.fakes.weaviate_server import FakeWeaviate
from tests.memory.contract import MemoryStoreContract

# read before the autouse clean_env fixture empties WEAVIATE_* for each test
_REAL = load_settings()
NOW = 1_750_000_000.0


class WordEmbedder:
    """Hashed bag of words: texts sharing words get close vectors, so the vector half of hybrid
    search behaves like a (weak) semantic model without loading one."""

    name = "test-words"
    dim = 64

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.strip(".,!?").encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def item(id: str, text: str, workspace: str = "acme", **fields: object) -> MemoryItem:
    return MemoryItem(id=id, workspace=workspace, text=text, created_at=fields.pop("created_at", NOW), **fields)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[FakeWeaviate]:
    fake = FakeWeaviate(api_key="test-key").start()
    yield fake
    fake.stop()


@pytest.fixture
def embedder() -> WordEmbedder:
    return WordEmbedder()


@pytest.fixture
def store(server: FakeWeaviate, embedder: WordEmbedder) -> Iterator[WeaviateStore]:
    with WeaviateStore.open(server.url, embedder, api_key="test-key", grpc_port=server.grpc_port) as opened:
        yield opened


@pytest.fixture(params=["local", "real"])
def any_store(request: pytest.FixtureRequest, embedder: WordEmbedder) -> Iterator[WeaviateStore]:
    """The backend on the local wire-level server, and on a real Weaviate when WEAVIATE_URL is set."""
    yield from _open(request, embedder)


def _open(request: pytest.FixtureRequest, embedder: Embedder) -> Iterator[WeaviateStore]:
    if request.param == "local":
        fake = FakeWeaviate().start()
        request.addfinalizer(fake.stop)
        with WeaviateStore.open(fake.url, embedder, grpc_port=fake.grpc_port) as opened:
            yield opened
        return
    if not _REAL.weaviate.url:
        pytest.skip("set WEAVIATE_URL (and WEAVIATE_GRPC_PORT, WEAVIATE_API_KEY) to run against a real Weaviate")
    real = _REAL.weaviate
    key = real.api_key.get_secret_value() if real.api_key else None
    collection = f"DeputyTest{uuid.uuid4().hex[:12]}"
    with WeaviateStore.open(real.url, embedder, key, real.grpc_port, real.grpc_host, collection) as opened:
        try:
            yield opened
        finally:
            opened.client.collections.delete(collection)


# --- the contract every backend passes, on every server


class TestWeaviateContract(MemoryStoreContract):
    @pytest.fixture(params=["local", "real"])
    def store(self, request: pytest.FixtureRequest, embedder: MiniLmEmbedder) -> Iterator[WeaviateStore]:
        yield from _open(request, embedder)


# --- behaviour, on every server


def test_search_finds_what_was_added_with_its_metadata(any_store: WeaviateStore) -> None:
    any_store.add([
        item("n1", "Invoice 42 for Acme is due on Friday", project="sales", source="file:/notes/acme.md",
             author="ana", trust="untrusted", meta={"page": "3"}),
        item("n2", "Call the dentist about the appointment"),
        item("n3", "Buy oat milk and coffee beans"),
    ])
    hits = any_store.search("acme", "when is the acme invoice due", limit=2)
    assert hits[0].item == item("n1", "Invoice 42 for Acme is due on Friday", project="sales", source="file:/notes/acme.md",
                                author="ana", trust="untrusted", meta={"page": "3"})
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score


def test_a_workspace_never_sees_another_workspaces_memories(any_store: WeaviateStore) -> None:
    any_store.add([item("a1", "The launch date is March 3", workspace="acme")])
    any_store.add([item("b1", "The launch date is June 9", workspace="globex")])

    assert [h.item.id for h in any_store.search("acme", "launch date")] == ["a1"]
    assert [h.item.id for h in any_store.search("globex", "launch date")] == ["b1"]
    assert any_store.search("initech", "launch date") == []
    # deleting acme's id from globex's workspace leaves acme's memory alone
    assert any_store.delete("globex", ids=["a1"]) == 0
    assert any_store.count("acme") == 1


def test_filters_by_project_source_and_time(any_store: WeaviateStore) -> None:
    any_store.add([
        item("p1", "quarterly revenue report", project="finance", source="remember", created_at=NOW - 3000),
        item("p2", "quarterly revenue forecast", project="finance", source="email", created_at=NOW - 2000),
        item("p3", "quarterly hiring plan", project="people", source="remember", created_at=NOW - 1000),
    ])

    def ids(where: SearchFilter) -> set[str]:
        return {h.item.id for h in any_store.search("acme", "quarterly revenue", where=where)}

    assert ids(SearchFilter(projects=["finance"])) == {"p1", "p2"}
    assert ids(SearchFilter(sources=["remember"])) == {"p1", "p3"}
    assert ids(SearchFilter(projects=["finance"], sources=["email"])) == {"p2"}
    assert ids(SearchFilter(since=NOW - 2000)) == {"p2", "p3"}
    assert ids(SearchFilter(until=NOW - 2000)) == {"p1"}
    assert ids(SearchFilter(projects=[])) == set()
    assert any_store.count("acme", SearchFilter(projects=["finance", "people"])) == 3
    assert any_store.count("acme", SearchFilter(since=NOW - 1500)) == 1


def test_adding_the_same_id_again_replaces_it(any_store: WeaviateStore) -> None:
    any_store.add([item("x", "the wifi password is tulip")])
    any_store.add([item("x", "the wifi password is orchid"), item("x", "the wifi password is cactus")])

    assert any_store.count("acme") == 1
    assert any_store.search("acme", "wifi password")[0].item.text == "the wifi password is cactus"


def test_delete_by_ids_by_filter_and_both(any_store: WeaviateStore) -> None:
    any_store.add([item(f"d{i}", f"note number {i}", project="a" if i < 4 else "b") for i in range(8)])

    assert any_store.delete("acme", ids=["d0", "d1", "missing"]) == 2
    assert any_store.delete("acme", ids=["d2", "d5"], where=SearchFilter(projects=["a"])) == 1
    # d5 is in project b, so only d2 matched both
    assert any_store.delete("acme", where=SearchFilter(projects=["b"])) == 4
    assert [h.item.id for h in any_store.search("acme", "note number", limit=10)] == ["d3"]
    assert any_store.delete("acme") == 0
    assert any_store.count("acme") == 1


# --- what goes over the wire, on the local server


def test_first_write_creates_a_multi_tenant_collection_with_our_own_vectors(server: FakeWeaviate, store: WeaviateStore) -> None:
    store.add([item("s1", "hello")])

    [created] = server.calls("POST /v1/schema")
    schema = created.body
    assert schema["class"] == "DeputyMemory"
    assert schema["multiTenancyConfig"]["enabled"] is True
    assert schema["vectorConfig"]["default"]["vectorizer"] == {"none": {}}
    props = {p["name"]: p for p in schema["properties"]}
    assert set(props) == {"text", "item_id", "project", "source", "author", "trust", "created_at", "meta"}
    assert props["project"]["tokenization"] == "field" and props["created_at"]["dataType"] == ["number"]

    # a second process finds the collection and the tenant and creates neither again
    with WeaviateStore.open(server.url, WordEmbedder(), api_key="test-key", grpc_port=server.grpc_port) as other:
        other.add([item("s2", "again")])
    assert len(server.calls("POST /v1/schema")) == 1
    assert len(server.calls("POST /v1/schema/DeputyMemory/tenants")) == 1
    assert server.objects("DeputyMemory", "acme").keys() == {str(object_id("s1")), str(object_id("s2"))}


def test_each_workspace_gets_its_own_tenant_on_first_write_only(server: FakeWeaviate, store: WeaviateStore) -> None:
    assert store.search("acme", "anything") == [] and store.count("acme") == 0
    assert server.calls("POST /v1/schema/DeputyMemory/tenants") == []

    store.add([item("t1", "one", workspace="acme"), item("t2", "two", workspace="acme.co")])
    created = [t["name"] for call in server.calls("POST /v1/schema/DeputyMemory/tenants") for t in call.body]
    assert created == ["acme", tenant_name("acme.co")]
    assert {o.tenant for call in server.calls("BatchObjects") for o in call.body.objects} == set(created)
    # names Weaviate would refuse are mapped, and close names stay apart
    assert tenant_name("acme.co") != tenant_name("acme-co") and tenant_name("acme.co").startswith("acme-co-")


def test_another_worker_creating_the_collection_or_tenant_first_is_fine(server: FakeWeaviate, store: WeaviateStore,
                                                                       embedder: WordEmbedder) -> None:
    # a second worker, on its own connection, creates the collection and the tenant just before ours does
    rival = WeaviateStore.open(server.url, embedder, api_key="test-key", grpc_port=server.grpc_port)
    server.before("POST /v1/schema", lambda s: rival.add([item("r1", "the rival's note")]))

    store.add([item("o1", "our note")])

    assert store.count("acme") == 2
    statuses = [r.name for r in server.requests if r.name in ("POST /v1/schema", "POST /v1/schema/DeputyMemory/tenants")]
    # the rival created both; our create of the collection was refused as existing, and we then found the tenant
    assert statuses.count("POST /v1/schema") == 2 and statuses.count("POST /v1/schema/DeputyMemory/tenants") == 1
    rival.close()


def test_a_tenant_created_between_our_check_and_our_create_is_used(server: FakeWeaviate, store: WeaviateStore) -> None:
    store.add([item("a0", "warm the collection", workspace="other")])
    other = connect(server.url, "test-key", server.grpc_port)
    server.before("POST /v1/schema/DeputyMemory/tenants", lambda s: other.collections.use("DeputyMemory").tenants.create("acme"))

    store.add([item("a1", "written after losing the race")])

    assert [h.item.id for h in store.search("acme", "losing the race")] == ["a1"]
    other.close()


def test_vectors_come_from_our_embedder_and_search_is_hybrid(server: FakeWeaviate, store: WeaviateStore, embedder: WordEmbedder) -> None:
    store.add([item("v1", "renew the domain before May"), item("v2", "pay the designer")])
    store.search("acme", "domain renewal", limit=3, where=SearchFilter(projects=["inbox"], since=NOW - 10))

    [batch] = server.calls("BatchObjects")
    sent = {o.properties.non_ref_properties.fields["item_id"].string_value: o.vectors[0] for o in batch.body.objects}
    assert sent["v1"].name == "default"
    assert np.allclose(struct.unpack("<64f", sent["v1"].vector_bytes), embedder.embed(["renew the domain before May"])[0])

    [search] = server.calls("Search")
    request = search.body
    assert request.tenant == "acme" and request.limit == 3
    hybrid = request.hybrid_search
    assert hybrid.query == "domain renewal" and list(hybrid.properties) == ["text"] and hybrid.alpha == 0.5
    query_vector = hybrid.near_vector.vector_for_targets[0].vectors[0].vector_bytes
    assert np.allclose(struct.unpack("<64f", query_vector), embedder.embed(["domain renewal"])[0])
    conditions = {f.target.property: f for f in request.filters.filters}
    assert list(conditions["project"].value_text_array.values) == ["inbox"]
    assert conditions["created_at"].value_number == NOW - 10


def test_a_rejected_object_is_reported_and_the_rest_are_stored(server: FakeWeaviate, store: WeaviateStore) -> None:
    server.reject(lambda cls, tenant, props: "text too long for the index" if "POISON" in props.get("text", "") else None)

    with pytest.raises(ImportFailed) as raised:
        store.add([item("ok1", "first fine note"), item("bad", "POISON pill"), item("ok2", "second fine note")])

    assert raised.value.report.added == ["ok1", "ok2"]
    assert raised.value.report.failed == {"bad": "text too long for the index"}
    assert "1 of 3 memories were not stored" in str(raised.value)
    assert store.count("acme") == 2
    assert {h.item.id for h in store.search("acme", "fine note")} == {"ok1", "ok2"}


def test_a_batch_where_every_object_fails_does_not_stop_the_next(server: FakeWeaviate, embedder: WordEmbedder) -> None:
    server.reject(lambda cls, tenant, props: "rejected" if props.get("project") == "bad" else None)
    with WeaviateStore(connect(server.url, "test-key", server.grpc_port), embedder, batch_size=2) as store:
        report = store.import_items([
            item("a", "x", project="bad"), item("b", "y", project="bad"),
            item("c", "z"), item("d", "w", project="bad"),
        ])
    assert report.added == ["c"]
    assert set(report.failed) == {"a", "b", "d"} and "rejected" in report.failed["a"]
    assert len(server.calls("BatchObjects")) == 2


def test_a_vector_of_the_wrong_size_is_refused_per_object(server: FakeWeaviate, store: WeaviateStore) -> None:
    store.add([item("v64", "stored with the 64 dimension model")])

    class Wider(WordEmbedder):
        dim = 96

    store.embedder = Wider()
    report = store.import_items([item("v96", "stored with a different model")])
    assert report.added == [] and "vector with length 96" in report.failed["v96"]


def test_large_deletes_repeat_until_nothing_matches(server: FakeWeaviate, store: WeaviateStore) -> None:
    server.max_delete = 3
    store.add([item(f"bulk{i}", f"bulk note {i}", project="old") for i in range(8)] + [item("keep", "keep me")])

    assert store.delete("acme", where=SearchFilter(projects=["old"])) == 8
    assert len(server.calls("BatchDelete")) == 4
    assert store.count("acme") == 1


def test_an_inactive_tenant_is_woken_up_not_reported_empty(server: FakeWeaviate, store: WeaviateStore, embedder: WordEmbedder) -> None:
    store.add([item("cold1", "archived contract with Initech")])
    server.set_tenant_status("DeputyMemory", "acme", "INACTIVE")

    with WeaviateStore.open(server.url, embedder, api_key="test-key", grpc_port=server.grpc_port) as fresh:
        assert [h.item.id for h in fresh.search("acme", "initech contract")] == ["cold1"]
    assert len(server.calls("PUT /v1/schema/DeputyMemory/tenants")) == 1
    assert server.classes["DeputyMemory"].tenants["acme"] == "ACTIVE"


def test_the_api_key_is_sent_on_rest_and_grpc(server: FakeWeaviate, store: WeaviateStore) -> None:
    store.add([item("k1", "secret handshake")])
    store.search("acme", "handshake")
    assert all(r.headers.get("Authorization") == "Bearer test-key" for r in server.requests if r.kind == "rest" and "well-known" not in r.name)
    data_calls = [r for r in server.requests if r.kind == "grpc" and r.name != "Health"]
    assert data_calls and all(r.headers.get("authorization") == "Bearer test-key" for r in data_calls)


def test_a_wrong_api_key_says_what_to_fix(server: FakeWeaviate) -> None:
    with pytest.raises(WeaviateUnavailable, match="WEAVIATE_API_KEY"):
        connect(server.url, "not-the-key", server.grpc_port)


def test_nothing_listening_says_what_to_fix() -> None:
    with pytest.raises(WeaviateUnavailable, match="WEAVIATE_URL"):
        connect("http://127.0.0.1:9", timeout_s=2)


def test_a_wrong_grpc_port_says_what_to_fix(server: FakeWeaviate) -> None:
    with pytest.raises(WeaviateUnavailable, match="WEAVIATE_GRPC_PORT"):
        connect(server.url, "test-key", grpc_port=9, timeout_s=1)


# --- with the real local model: the vector half finds paraphrases BM25 cannot


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    from memory.embeddings import MiniLmEmbedder, ModelMissing

    model = MiniLmEmbedder()
    try:
        model.embed(["warm up"])
    except ModelMissing as err:
        pytest.skip(str(err))
    return model


def test_hybrid_search_finds_a_paraphrase_with_no_shared_words(server: FakeWeaviate, minilm) -> None:  # type: ignore[no-untyped-def]
    with WeaviateStore.open(server.url, minilm, api_key="test-key", grpc_port=server.grpc_port) as store:
        store.add([
            item("car", "My automobile needs new tyres before winter"),
            item("cake", "Bake a lemon sponge for Saturday"),
            item("tax", "File the VAT return by the end of the quarter"),
        ])
        hits = store.search("acme", "vehicle maintenance", limit=3)
    assert hits[0].item.id == "car"
