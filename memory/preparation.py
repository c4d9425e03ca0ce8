"""What `deputy prepare` does for the sentence models: all-mpnet-base-v2 unpacked from its pieces and
each local model's onnxruntime graph built, into MODEL_CACHE_DIR, so no message waits for either."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from memory.embeddings import LocalEmbedder, MiniLmEmbedder, ModelMissing, minilm_dir
from memory.mpnet import MPNET_NAME, MpnetEmbedder, mpnet_dir


@dataclass(frozen=True)
class Prepared:
    """One model file made ready (or found ready, or skipped with the reason)."""

    what: str
    path: Path | None
    seconds: float
    done_now: bool
    skipped: str = ""

    def line(self) -> str:
        if self.skipped:
            return f"{self.what}: skipped, {self.skipped}"
        state = f"prepared in {self.seconds:.1f} s" if self.done_now else "already prepared"
        return f"{self.what}: {state} ({self.path})"


def prepare_models(cache_dir: Path, mpnet: bool = True, mpnet_parts: list[Path] | None = None) -> list[Prepared]:
    """MiniLM's graph, then (with `mpnet`) all-mpnet-base-v2 unpacked (from `mpnet_parts`, else the
    installed pieces) and its graph; each step is skipped when done already, so running it again costs
    a few file checks. A model that is not installed is skipped with the reason (the product then runs
    without it, as it would anyway)."""
    steps: list[Prepared] = []
    try:
        steps.append(_graph(MiniLmEmbedder(cache_dir=cache_dir), minilm_dir()))
    except ModelMissing as err:
        steps.append(Prepared(MiniLmEmbedder.name, None, 0.0, False, skipped=str(err)))
    if not mpnet:
        return steps
    started = time.perf_counter()
    unpacked = (cache_dir / MPNET_NAME).is_dir()
    try:
        folder = mpnet_dir(cache_dir, mpnet_parts)
    except ModelMissing as err:
        steps.append(Prepared(MPNET_NAME, None, 0.0, False, skipped=str(err)))
        return steps
    steps.append(Prepared(f"{MPNET_NAME} unpacked", folder, time.perf_counter() - started, not unpacked))
    steps.append(_graph(MpnetEmbedder(cache_dir), folder))
    return steps


def _graph(model: LocalEmbedder, model_dir: Path) -> Prepared:
    started = time.perf_counter()
    ready = model.prepared_path(model_dir).is_file()
    path = model.prepare(model_dir)
    return Prepared(f"{model.name} graph", path, time.perf_counter() - started, not ready)
