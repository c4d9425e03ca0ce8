"""The transformer encoder forward pass in numpy (inference only): BERT's post-LayerNorm layers,
shared by the local sentence models (memory/embeddings.py MiniLM, memory/mpnet.py MPNet)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

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


def relative_buckets(length: int, buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """MPNet's (T5's) bucket of each (query, key) offset: exact for near tokens, log-spaced for far ones,
    half the buckets for keys after the query and half for keys before it."""
    offset = np.arange(length)[None, :] - np.arange(length)[:, None]  # key position - query position
    n = -offset
    half = buckets // 2
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    far = exact + (np.log(np.maximum(n, 1) / exact) / math.log(max_distance / exact) * (half - exact)).astype(np.int64)
    return out + np.where(n < exact, n, np.minimum(far, half - 1))


# where a layer keeps its attention weights: query, key, value, output projection, attention LayerNorm
BERT_ATTENTION = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm")


class EncoderLayer:
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


class BertEncoder:
    """The encoder forward pass of a BERT model (inference only). A variant (memory/mpnet.py) names its
    attention weights in `attention`, and overrides `check`, `load_embeddings`, `embed_tokens` and
    `position_bias`; the rest is shared."""

    attention: tuple[str, ...] = BERT_ATTENTION

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file

        config = json.loads((model_dir / "config.json").read_text())
        self.check(config, model_dir)
        w = load_file(str(model_dir / "model.safetensors"))
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])
        self.word = w["embeddings.word_embeddings.weight"].astype(np.float32)
        self.position = w["embeddings.position_embeddings.weight"].astype(np.float32)
        self.ln = (w["embeddings.LayerNorm.weight"].astype(np.float32), w["embeddings.LayerNorm.bias"].astype(np.float32))
        self.load_embeddings(config, w)
        self.layers = [EncoderLayer(w, f"encoder.layer.{i}", self.heads, self.attention)
                       for i in range(int(config["num_hidden_layers"]))]

    def check(self, config: dict[str, Any], model_dir: Path) -> None:
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"unsupported BERT variant in {model_dir}: {config}")

    def load_embeddings(self, config: dict[str, Any], w: dict[str, np.ndarray]) -> None:
        """What the variant adds to word and position embeddings."""
        # sentence embedding models are called with token type 0 only
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0].astype(np.float32)

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        """Word + absolute position (+ token type) embeddings, before their LayerNorm."""
        return self.word[ids] + self.position[:ids.shape[1]] + self.token_type0

    def position_bias(self, length: int) -> np.ndarray | None:
        """An attention bias by relative position, shape (1, heads, length, length); BERT has none."""
        return None

    @property
    def depth(self) -> int:
        """How many token states `states` yields: the embeddings', then each layer's."""
        return len(self.layers) + 1

    def pool(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Each depth's token states mean-pooled over the attention mask, shape (batch, depth, hidden)."""
        weights = (mask / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)).astype(np.float32)[:, :, None]
        return np.stack([(states * weights).sum(axis=1) for states in self.states(ids, mask)], axis=1)

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
