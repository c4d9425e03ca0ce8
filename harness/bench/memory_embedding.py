"""The embedding part of `deputy bench memory`: the local model's throughput on the product's runtime
(onnxruntime, int8) and on the previous one (the numpy encoder, fp32), measured in turns in the same
run; how close the new vectors are to the previous ones (the reference); and LoCoMo dev recall with
the new vectors, when the file is there."""
from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any, Sequence

import numpy as np

from harness.bench.memory_corpus import Note
from harness.bench.memory_eval import default_locomo, evaluate, parse
from kernel.settings import Settings
from memory.embedding_cache import CachedEmbedder
from memory.embeddings import MiniLmEmbedder
from memory.onnx_graph import BLOCK

SAMPLE = 256
ROUNDS = 3  # each runtime embeds the sample this many times, taking turns; the median is reported
QUERIES = 30


def embedding(settings: Settings, corpus: Sequence[Note], threads: int) -> tuple[Any, dict[str, Any]]:
    """The product's MiniLM (on `threads` onnxruntime threads, 0: one per core) and the figures."""
    cache = settings.intent.model_cache_dir
    runs = {
        "onnx": MiniLmEmbedder(cache_dir=cache, threads=threads),
        "onnx_one_thread": MiniLmEmbedder(cache_dir=cache, threads=1),
        "numpy": MiniLmEmbedder(runtime="numpy"),
    }
    for model in runs.values():
        model.embed(["warm up"])
    sample = [f"{n.text} ({i})" for i, n in enumerate(corpus[:SAMPLE])]
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(ROUNDS):
        order = list(runs) if turn % 2 == 0 else list(runs)[::-1]
        for name in order:
            started = time.perf_counter()
            runs[name].embed(sample)
            rates[name].append(len(sample) / (time.perf_counter() - started))
    new, before = runs["onnx"], runs["numpy"]
    cosines = (new.embed(sample) * before.embed(sample)).sum(axis=1)
    rate = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    result: dict[str, Any] = {
        "embed_runtime": f"onnxruntime, int8 weights (MatMulNBits 8-bit, blocks of {BLOCK})",
        "embed_threads": threads or os.cpu_count(),
        "embed_texts_per_s": rate["onnx"],
        "embed_texts_per_s_one_thread": rate["onnx_one_thread"],
        "embed_texts_per_s_before": rate["numpy"],
        "embed_speedup": round(rate["onnx"] / rate["numpy"], 2),
        "embed_seconds_10k": round(10_000 / rate["onnx"], 1),
        "cosine_to_reference_min": round(float(cosines.min()), 5),
        "cosine_to_reference_mean": round(float(cosines.mean()), 5),
        "query_embed_ms_p50": _query_ms(runs["onnx_one_thread"], sample),
        "query_embed_ms_p50_before": _query_ms(before, sample),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    return new, result


def _query_ms(model: Any, texts: Sequence[str]) -> float:
    times = []
    for text in texts[:QUERIES]:
        started = time.perf_counter()
        model.embed([text.split(" (")[0]])
        times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 2)


def locomo(settings: Settings, model: Any) -> dict[str, Any]:
    """LoCoMo dev recall with `model`'s vectors (no cache: every vector is the new runtime's), or why not."""
    path = default_locomo()
    if path is None:
        return {"skipped": "no ../shared/eval/locomo/locomo_dev.json"}
    embedder = CachedEmbedder(model, None)
    try:
        found = evaluate(json.loads(path.read_text()), embedder, parse([]))
    finally:
        embedder.close()
    return {key: found[key] for key in ("recall_at_5", "recall_at_10", "recall_at_25", "questions", "seconds")}
