"""`deputy bench memory`: the embedded store's insert rate, search latency and search quality at
10k and 100k items, and the local embedding model's throughput, in one run.

The corpus is synthetic (harness/bench/memory_corpus.py): short notes whose words follow a Zipf-like
distribution, reported in `corpus`. Questions are drawn like an operator asks them, each about
one note; `found_in_top10` is the share whose note comes back in the first 10 hits. Search latency
is the store's own (vector + keyword + fusion + loading the hits): query vectors are embedded
beforehand and the model's time is reported apart (`query_embed_ms_p50`). Timed questions are not
the warm-up questions. In the 100k store, the first `--notes` notes have their own vectors; the
others' texts are their own but their vectors are a real note's vector plus noise (embedding 100k
notes here would take half an hour), so questions are only asked about notes with real vectors."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.bench.memory_corpus import Note, notes, questions, word_stats
from harness.bench.memory_embedding import embedding, locomo
from kernel.settings import Settings

WARM_UP = 100


class Precomputed:
    """Answers from vectors computed earlier, so store timings exclude the model."""

    def __init__(self, name: str, dim: int, vectors: dict[str, np.ndarray]) -> None:
        self.name, self.dim, self.vectors = name, dim, vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy bench memory", description=__doc__)
    parser.add_argument("--notes", type=int, default=10_000, help="notes with their own vectors: the small store (default 10000)")
    parser.add_argument("--large", type=int, default=100_000, help="items in the large store (default 100000; 0 skips it)")
    parser.add_argument("--queries", type=int, default=1_000, help="questions timed per store size and mode (default 1000)")
    parser.add_argument("--cache", type=Path, help="embedding cache (default DATA_DIR/bench-vectors.sqlite3; reruns take seconds)")
    parser.add_argument("--dir", type=Path, help="where the store files go (default a temporary folder)")
    parser.add_argument("--threads", type=int, default=0,
                        help="onnxruntime threads for the throughput figure (default 0: one per core, as numpy's BLAS uses)")
    parser.add_argument("--no-locomo", action="store_true", help="leave out LoCoMo dev recall with the new vectors")
    parser.add_argument("--embedding-only", action="store_true", help="the model's figures only, no store")
    return parser.parse_args(argv)


def _percentiles(times: list[float], name: str) -> dict[str, float]:
    return {f"{name}_p50_ms": round(float(np.percentile(times, 50)), 2), f"{name}_p99_ms": round(float(np.percentile(times, 99)), 2)}


def _measure(store: Any, asked: list[tuple[str, int]], warm: list[tuple[str, int]], ids: Sequence[str]) -> dict[str, Any]:
    """Latency per mode over `asked` (after warming up on other questions), and how often the note
    a question is about comes back in the top 10. The modes take turns on each question, in a
    rotating order, so none is favoured by caches or by the machine's load at the time."""
    modes = ("hybrid", "vector", "keyword")
    for question, _ in warm:
        for mode in modes:
            store.search("bench", question, limit=10, mode=mode)
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    found = dict.fromkeys(modes, 0)
    for n, (question, target) in enumerate(asked):
        for mode in modes[n % 3:] + modes[:n % 3]:
            started = time.perf_counter()
            hits = store.search("bench", question, limit=10, mode=mode)
            times[mode].append((time.perf_counter() - started) * 1000)
            found[mode] += ids[target] in {h.item.id for h in hits}
    out: dict[str, Any] = {}
    for mode in modes:
        out.update(_percentiles(times[mode], "search" if mode == "hybrid" else mode))
        out[f"found_in_top10_{mode}"] = round(100 * found[mode] / len(asked), 1)
    return out


def _vector_agreement(store: Any, matrix: np.ndarray, ids: Sequence[str], queries: np.ndarray) -> float:
    """Share of the exact 10 nearest (brute force over every vector) that the store's vector search returns."""
    agree = 0
    for q in queries:
        exact = {ids[i] for i in np.argsort(-(matrix @ q))[:10]}
        agree += len(exact & {h.item.id for h in store.vector_search("bench", q, limit=10)})
    return round(100 * agree / (10 * len(queries)), 1)


def _fill(store: Any, corpus: Sequence[Note], now: float, batch: int) -> float:
    from memory.store import MemoryItem

    started = time.perf_counter()
    for start in range(0, len(corpus), batch):
        store.add([MemoryItem(id=f"n{i}", workspace="bench", text=corpus[i].text, created_at=now - i * 30)
                   for i in range(start, min(start + batch, len(corpus)))])
    return time.perf_counter() - started


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    from memory.embedding_cache import CachedEmbedder
    from memory.sqlite_store import SqliteStore

    args = _parse(argv)
    corpus = notes(max(args.notes, args.large))
    model, result = embedding(settings, corpus, args.threads)
    if not args.no_locomo:
        result["locomo"] = locomo(settings, model)
    if args.embedding_only:
        return result
    asked = questions(corpus[:args.notes], args.queries)
    warm = questions(corpus[:args.notes], WARM_UP, seed=99)

    cached = CachedEmbedder(model, args.cache or settings.data_dir / "bench-vectors.sqlite3")
    real = [n.text for n in corpus[:args.notes]]
    table = dict(zip(real, cached.embed(real)))
    query_texts = [q for q, _ in asked + warm]
    table.update(zip(query_texts, cached.embed(query_texts)))
    cached.close()
    texts_per_s = result["embed_texts_per_s"]
    now = time.time()
    ids = [f"n{i}" for i in range(len(corpus))]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        with SqliteStore(Path(tmp) / "small.sqlite3", Precomputed(model.name, model.dim, table)) as small:
            insert_s = _fill(small, corpus[:args.notes], now, 500)
            result["insert_per_s"] = round(args.notes / insert_s, 1)
            # ingestion = the model's time plus the store's: the target is within 2x the model alone
            model_s = args.notes / texts_per_s
            result["ingest_vs_embed_ratio"] = round((model_s + insert_s) / model_s, 2)
            result["at_10k"] = _measure(small, asked, warm, ids)

        if args.large:
            rng = np.random.default_rng(11)
            base = np.stack([table[t] for t in real])
            large_table = dict(table)
            for i in range(args.notes, args.large):
                noisy = base[i % args.notes] + rng.normal(0, 0.02, model.dim).astype(np.float32)
                large_table[corpus[i].text] = noisy / np.linalg.norm(noisy)
            with SqliteStore(Path(tmp) / "large.sqlite3", Precomputed(model.name, model.dim, large_table)) as large:
                large_s = _fill(large, corpus[:args.large], now, 2_000)
                result["insert_per_s_100k"] = round(args.large / large_s, 1)
                result["at_100k"] = _measure(large, asked, warm, ids)
                matrix = np.stack([large_table[n.text] for n in corpus[:args.large]])
                sample_q = np.stack([table[q] for q, _ in asked[:200]])
                result["at_100k"]["vector_top10_agreement_with_exact"] = _vector_agreement(large, matrix, ids, sample_q)
                result["items_large"] = large.count("bench")
                result["vector_search_100k"] = "exact" if args.large <= large.exact_below else "sign-bit scan + exact re-rank"
        result["corpus"] = word_stats([n.text for n in corpus[:args.large or args.notes]])
    result.update(notes_with_own_vectors=args.notes, queries_timed=args.queries, warm_up_queries=WARM_UP)
    return result
