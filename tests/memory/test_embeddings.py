from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from memory.embedding_cache import CachedEmbedder
from memory.embedding_openai import EmbeddingUnavailable, OpenAiEmbedder
from memory.embeddings import MiniLmEmbedder

REFERENCE = Path(__file__).parent / "fixtures" / "minilm_reference.json"


@pytest.fixture(scope="module")
def minilm() -> MiniLmEmbedder:
    return MiniLmEmbedder()


class Counting:
    """Passes through to a real embedder and records what it was asked to embed."""

    def __init__(self, inner: MiniLmEmbedder | OpenAiEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.calls: list[list[str]] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return self.inner.embed(texts)


@pytest.mark.parametrize(("runtime", "floor"), [("onnx", 0.99), ("numpy", 0.999)])
def test_minilm_matches_sentence_transformers_reference(runtime: str, floor: float) -> None:
    # reference rows: sentence-transformers + torch on the same weights (includes a text past 256 tokens);
    # the numpy encoder is fp32 like them, the product's onnxruntime graph has 8-bit weights
    ref = json.loads(REFERENCE.read_text())
    got = MiniLmEmbedder(runtime=runtime).embed(ref["texts"])  # type: ignore[arg-type]
    want = np.asarray(ref["vectors"], dtype=np.float32)
    assert got.shape == (len(ref["texts"]), 384) and got.dtype == np.float32
    cosines = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert cosines.min() >= floor, cosines
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors(minilm: MiniLmEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about invoices and clients", "mid length note here"] * 3
    together = minilm.embed(texts)
    alone = np.stack([minilm.embed([t])[0] for t in texts[:3]])
    assert np.allclose(together[:3], alone, atol=1e-5)
    assert np.allclose(together[:3], together[3:6], atol=1e-6)


def test_layer_features_come_from_the_same_pass_and_stay_unit_length(minilm: MiniLmEmbedder) -> None:
    texts = ["remind me to call ana on friday", "what's the weather", "x"]
    last = minilm.embed_layers(texts, (-1,))
    assert np.allclose(last, minilm.embed(texts), atol=1e-6)  # the last layer alone is the sentence vector
    four = minilm.embed_layers(texts, (-4, -3, -2, -1))
    assert four.shape == (3, 4 * minilm.dim)
    assert np.allclose(np.linalg.norm(four, axis=1), 1.0, atol=1e-5)
    assert np.allclose(four[:, 3 * minilm.dim:] * 2, last, atol=1e-6)  # each block normalised, then scaled by 1/sqrt(4)
    assert not np.allclose(four[:, :minilm.dim] * 2, last, atol=1e-3)  # earlier layers say something else
    assert minilm.embed_layers([], (-1, -2)).shape == (0, 2 * minilm.dim)


def test_similar_texts_are_closer_than_unrelated(minilm: MiniLmEmbedder) -> None:
    a, b, c = minilm.embed(["The invoice is overdue", "The bill has not been paid yet", "My cat likes to sleep in the sun"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_empty_input_gives_empty_matrix(minilm: MiniLmEmbedder) -> None:
    assert minilm.embed([]).shape == (0, 384)


def test_embed_is_thread_safe(minilm: MiniLmEmbedder) -> None:
    texts = [f"note number {i} about project {i % 5}" for i in range(24)]
    expected = minilm.embed(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = minilm.embed(texts)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        assert np.allclose(got, expected, atol=1e-5)


def test_first_use_loads_once_from_several_threads() -> None:
    fresh = MiniLmEmbedder()
    out: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: out.append(fresh.embed(["hello"]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 3 and all(np.allclose(o, out[0]) for o in out)


def test_openai_embedder_batches_keeps_order_and_normalises(openai_server) -> None:  # type: ignore[no-untyped-def]
    embedder = OpenAiEmbedder(openai_server.base_url, "sk-test", "text-embedding-3-small", batch_size=2)
    texts = ["alpha", "beta", "gamma", "alpha"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 8) and embedder.dim == 8
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[3]) and not np.allclose(vectors[0], vectors[1])
    bodies = [r["body"] for r in openai_server.requests]
    assert [b["input"] for b in bodies] == [["alpha", "beta"], ["gamma", "alpha"]]
    assert all(b["model"] == "text-embedding-3-small" for b in bodies)
    assert openai_server.requests[0]["headers"]["Authorization"] == "Bearer sk-test"


def test_openai_embedder_unreachable_is_reported() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAiEmbedder(f"http://127.0.0.1:{port}/v1", None, "m", max_retries=0, timeout_s=2)
    with pytest.raises(EmbeddingUnavailable, match="embeddings endpoint failed"):
        embedder.embed(["x"])


def test_cache_never_embeds_the_same_text_twice(minilm: MiniLmEmbedder, tmp_path: Path) -> None:
    inner = Counting(minilm)
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite3")
    first = cached.embed(["alpha note", "beta note", "alpha note"])
    second = cached.embed(["beta note", "gamma note"])
    assert inner.calls == [["alpha note", "beta note"], ["gamma note"]]
    assert np.allclose(first[1], second[0]) and np.allclose(first[0], first[2])
    assert np.allclose(second[1], minilm.embed(["gamma note"])[0], atol=1e-6)
    cached.close()

    # the cache outlives the process that filled it
    reopened_inner = Counting(minilm)
    reopened = CachedEmbedder(reopened_inner, tmp_path / "cache.sqlite3")
    assert np.allclose(reopened.embed(["alpha note"])[0], first[0])
    assert reopened_inner.calls == []


def test_cache_keeps_models_apart(minilm: MiniLmEmbedder, openai_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cache.sqlite3"
    CachedEmbedder(minilm, path).embed(["same text"])
    remote = Counting(OpenAiEmbedder(openai_server.base_url, None, "m"))
    vector = CachedEmbedder(remote, path).embed(["same text"])
    assert vector.shape == (1, 8) and remote.calls[-1] == ["same text"]
