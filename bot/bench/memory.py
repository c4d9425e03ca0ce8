"""`deputy bench memory`: the embedded store's insert rate and search latency at 10k and 100k items,
and the local embedding model's throughput, in one run.

Search latency is the store's own (vector + keyword + fusion + loading the hits); query vectors
are embedded beforehand and reported apart, as `query_embed_ms_p50`. The 100k store reuses the
10k real note vectors with small noise (and numbered texts), so the run takes minutes, not an hour."""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.settings import Settings

NAMES = ["Anna", "Bob", "Priya", "Chen", "Maria", "Omar", "Lena", "Kofi", "Yuki", "Sam", "Ines", "Tom"]
COMPANIES = ["Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Acme", "Soylent", "Vandelay", "Wonka"]
TOPICS = ["the invoice", "the renewal", "the contract", "the launch", "the budget", "the hiring plan", "the website",
          "the tax return", "the trade fair", "the newsletter", "the pricing page", "the onboarding call"]
VERBS = ["prefers to discuss", "asked about", "will send", "is waiting for", "approved", "wants changes to",
         "complained about", "needs a reminder about", "signed off on", "has questions on"]
WHEN = ["on Monday", "next week", "before Friday", "after lunch", "in March", "by the end of the month", "tomorrow",
        "this quarter", "after the holidays", "on the 15th"]
QUERIES = ["who is waiting for the invoice", "what did Globex ask about the renewal", "when is the contract due",
           "which client complained about pricing", "what does Anna prefer", "anything about the tax return",
           "who approved the budget", "what changes to the website", "trade fair plans", "onboarding call with Initech"]


def notes(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(f"{rng.choice(NAMES)} from {rng.choice(COMPANIES)} {rng.choice(VERBS)} {rng.choice(TOPICS)} "
                   f"{rng.choice(WHEN)} (ref {i})")
    return out


class Precomputed:
    """Answers from vectors computed earlier, so store timings exclude the model."""

    def __init__(self, name: str, dim: int, vectors: dict[str, np.ndarray]) -> None:
        self.name, self.dim, self.vectors = name, dim, vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy bench memory", description=__doc__)
    parser.add_argument("--notes", type=int, default=10_000, help="real notes embedded and inserted (default 10000)")
    parser.add_argument("--large", type=int, default=100_000, help="items in the large store (default 100000; 0 skips it)")
    parser.add_argument("--queries", type=int, default=300, help="searches timed per store size")
    parser.add_argument("--dir", type=Path, help="where the store files go (default a temporary folder)")
    return parser.parse_args(argv)


def _time_searches(store: Any, workspace: str, queries: list[str], rounds: int) -> list[float]:
    for q in queries:  # warm the page cache and statements
        store.search(workspace, q, limit=10)
    times = []
    for i in range(rounds):
        q = queries[i % len(queries)]
        started = time.perf_counter()
        store.search(workspace, q, limit=10)
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    from memory.embeddings import MiniLmEmbedder
    from memory.sqlite_store import SqliteStore
    from memory.store import MemoryItem

    args = _parse(argv)
    model = MiniLmEmbedder()
    model.embed(["warm up"])
    texts = notes(args.notes)
    queries = QUERIES + [f"{random.Random(i).choice(NAMES)} and {random.Random(i + 1).choice(TOPICS)}" for i in range(40)]

    started = time.perf_counter()
    vectors = model.embed(texts)
    embed_s = time.perf_counter() - started
    one = []
    for q in queries[:30]:
        t = time.perf_counter()
        model.embed([q])
        one.append((time.perf_counter() - t) * 1000)
    table = dict(zip(texts, vectors))
    table.update(zip(queries, model.embed(queries)))
    result: dict[str, Any] = {
        "embed_texts_per_s": round(len(texts) / embed_s, 1),
        "embed_seconds_10k": round(embed_s * 10_000 / len(texts), 1),
        "query_embed_ms_p50": round(statistics.median(one), 2),
    }
    now = time.time()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        small = SqliteStore(Path(tmp) / "small.sqlite3", Precomputed(model.name, model.dim, table))
        items = [MemoryItem(id=f"n{i}", workspace="bench", text=t, created_at=now - i * 60) for i, t in enumerate(texts)]
        started = time.perf_counter()
        for start in range(0, len(items), 500):
            small.add(items[start:start + 500])
        insert_s = time.perf_counter() - started
        result["insert_per_s"] = round(len(items) / insert_s, 1)
        # ingestion = the model's time plus the store's: the target is within 2x the model alone
        result["ingest_vs_embed_ratio"] = round((embed_s + insert_s) / embed_s, 2)
        times = _time_searches(small, "bench", queries, args.queries)
        result["search_p50_ms_10k"] = round(_pct(times, 50), 2)
        result["search_p99_ms_10k"] = round(_pct(times, 99), 2)
        small.close()

        if args.large:
            rng = np.random.default_rng(11)
            base = np.stack([table[t] for t in texts])
            large_table = dict(table)
            large = SqliteStore(Path(tmp) / "large.sqlite3", Precomputed(model.name, model.dim, large_table))
            started = time.perf_counter()
            for start in range(0, args.large, 2_000):
                batch = []
                for i in range(start, min(start + 2_000, args.large)):
                    src = i % len(texts)
                    text = texts[src] if i < len(texts) else f"{texts[src]} #{i}"
                    if text not in large_table:
                        noisy = base[src] + rng.normal(0, 0.02, model.dim).astype(np.float32)
                        large_table[text] = noisy / np.linalg.norm(noisy)
                    batch.append(MemoryItem(id=f"l{i}", workspace="bench", text=text, created_at=now - i * 30))
                large.add(batch)
            large_s = time.perf_counter() - started
            result["insert_per_s_100k"] = round(args.large / large_s, 1)
            times = _time_searches(large, "bench", queries, args.queries)
            result["search_p50_ms_100k"] = round(_pct(times, 50), 2)
            result["search_p99_ms_100k"] = round(_pct(times, 99), 2)
            result["items_large"] = large.count("bench")
            result["vector_search"] = "exact" if args.large <= large.exact_below else "binary-quantised scan + exact re-rank"
            large.close()
    result.update(notes=len(texts), queries_timed=args.queries)
    return result
