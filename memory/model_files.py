"""Prepared model files in MODEL_CACHE_DIR: each local sentence model's onnxruntime graph, built from
its safetensors weights and quantized once (by `deputy prepare` at install time, or on first use),
named by a key of what it was built from, written whole or not at all, once when processes race."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("deputy.memory")

# part of every graph's key: a change to the graph builder or its quantization rebuilds the graphs
GRAPH_VERSION = "bert-pooled-1/matmul-nbits-8-b32"
GRAPHS = "graphs"
# enough of model.safetensors to know it: its header (names, shapes, offsets) and its last bytes
SAMPLE = 1 << 20


def graph_key(model_dir: Path, version: str = GRAPH_VERSION) -> str:
    """What a prepared graph was built from: the builder's `version` (with its quantization), onnxruntime's
    (which quantizes and runs it), the model's config and a sample of its weights. Cheap: no weights are
    read in full."""
    import onnxruntime

    digest = hashlib.sha256(f"{version}\n{onnxruntime.__version__}\n".encode())
    digest.update((model_dir / "config.json").read_bytes())
    weights = model_dir / "model.safetensors"
    size = weights.stat().st_size
    digest.update(str(size).encode())
    with weights.open("rb") as handle:
        digest.update(handle.read(SAMPLE))
        handle.seek(max(0, size - SAMPLE))
        digest.update(handle.read(SAMPLE))
    return digest.hexdigest()[:16]


def graph_path(cache_dir: Path, name: str, model_dir: Path, version: str = GRAPH_VERSION) -> Path:
    return cache_dir / GRAPHS / f"{name}-{graph_key(model_dir, version)}.onnx"


def prepared_graph(cache_dir: Path, name: str, model_dir: Path, build: Callable[[Path], object],
                   version: str = GRAPH_VERSION) -> tuple[Path, bool]:
    """The graph of model `name` in `cache_dir`, and whether it was built just now: `build(model_dir)`
    gives the ONNX model when no graph of this key is there yet. Built under a file lock, so processes
    starting together build it once; written beside its final name and renamed, so a crash leaves no
    half graph; older graphs of the model are removed."""
    target = graph_path(cache_dir, name, model_dir, version)
    if target.is_file():
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent / f".{name}.lock"):
        if target.is_file():
            return target, False
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            import onnx

            onnx.save_model(build(model_dir), str(staging))  # type: ignore[arg-type]
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        for old in target.parent.glob(f"{name}-*.onnx"):
            if old != target:
                old.unlink(missing_ok=True)
    return target, True


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), held for the block, released if the process dies."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
