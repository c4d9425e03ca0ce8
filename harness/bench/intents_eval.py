"""`deputy eval intents`: the local classifier on CLINC150 (with out-of-scope) and HWU64, and the
product's own recogniser on operator messages.

  deputy eval intents --clinc FILE [--min-oos-recall R] [--minilm-only]
  deputy eval intents --hwu FILE [--test-folds 9,10] [--minilm-only]
  deputy eval intents --operator FILE [--minilm-only] [--misses]

CLINC: trains on `train`, uses `oos_train` as known out-of-scope phrases, and reports in-scope
accuracy (an in-scope query rejected as out-of-scope counts as wrong), out-of-scope recall and
AUROC on `test` + `oos_test` with the threshold chosen on `val` + `oos_val`. A file without a test
split is scored on `val`, with each half's threshold chosen on the other half, so the threshold
never sees the queries it is scored on. HWU: micro-F1 over the test folds, each fold trained on
every row of the other folds. Operator: the built-in intents as a worker recognises them, threshold
and clarification included (harness/bench/operator_intents.py)."""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.intents.classifier import IntentClassifier, Params
from agents.intents.features import IntentFeatures, MemoEmbedder, classifier_params
from agents.intents.recognizers import larger_embedder
from harness.bench import operator_intents
from kernel.settings import Settings
from memory.embedding_cache import CachedEmbedder
from memory.embeddings import Embedder, MiniLmEmbedder


# default --min-oos-recall: with both sentence models the confidence separates out-of-scope well
# enough (AUROC .990) that asking val for 88% costs 0.2 points of in-scope accuracy on CLINC dev;
# with MiniLM only (AUROC .985) 82% is where in-scope accuracy stays above 96
MIN_OOS_RECALL_TWO_MODELS = 0.88
MIN_OOS_RECALL = 0.82


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy eval intents", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clinc", type=Path, help="CLINC150 JSON (data_full.json format)")
    source.add_argument("--hwu", type=Path, help="HWU64 semicolon CSV with a test_fold column")
    source.add_argument("--operator", type=Path, help='JSON lines {"text", "intent"} scored with the built-in intents, '
                        "as the worker recognises them (label out_of_scope: must not act)")
    parser.add_argument("--misses", action="store_true", help="operator: list each message recognised wrongly")
    parser.add_argument("--test-folds", help="HWU: only these test folds, e.g. 9,10 (default: every fold present)")
    # above the 80% a deployment wants: 100 oos_val queries pin the threshold's recall only to within a
    # few points, and the margin keeps the operating point on the right side of 80. How much margin
    # costs how much in-scope accuracy depends on the features, so the default does too
    # (MIN_OOS_RECALL*; docs/intents.md has the sweep)
    parser.add_argument("--min-oos-recall", type=float,
                        help="CLINC: the threshold is the one with the best in-scope accuracy whose out-of-scope recall on val "
                             "is at least this (default 0.88 with both sentence models, 0.82 with MiniLM only)")
    parser.add_argument("--no-embeddings", action="store_true", help="TF-IDF only (no sentence models)")
    parser.add_argument("--minilm-only", action="store_true", help="MiniLM without all-mpnet-base-v2 (as INTENT_MPNET=false)")
    parser.add_argument("--no-cascade", action="store_true",
                        help="operator: every message read by both models, not only those MiniLM is unsure of (as before the cascade)")
    parser.add_argument("--cache", type=Path, help="keep sentence vectors in this SQLite file across runs (train_s then leaves out embedding)")
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args(argv)
    path = args.clinc or args.hwu or args.operator
    if not path.exists():
        parser.error(f"{path} does not exist")
    return args


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    args = _parse(argv)
    if args.operator:
        return operator_intents.score(settings, args.operator, args.minilm_only, args.no_embeddings, args.misses,
                                      args.no_cascade)
    embedder = None
    features = None
    if not args.no_embeddings:
        minilm = MiniLmEmbedder()
        extra = None if args.minilm_only else larger_embedder(settings, minilm)
        features = IntentFeatures(minilm, extra=extra)
        model: Embedder = CachedEmbedder(features, args.cache) if args.cache else features
        embedder = MemoEmbedder(model)
    params = classifier_params(features)
    if args.clinc:
        two_models = features is not None and len(features.models) > 1
        min_recall = args.min_oos_recall
        if min_recall is None:
            min_recall = MIN_OOS_RECALL_TWO_MODELS if two_models else MIN_OOS_RECALL
        return clinc(args.clinc, embedder, min_recall, args.latency_samples, params)
    folds = [int(f) for f in args.test_folds.split(",")] if args.test_folds else None
    return hwu(args.hwu, embedder, folds, args.latency_samples, params)


# --- CLINC150

def choose_threshold(correct: np.ndarray, in_conf: np.ndarray, oos_conf: np.ndarray, min_recall: float) -> float:
    """The threshold with the best in-scope accuracy among those rejecting >= min_recall of out-of-scope."""
    candidates = np.unique(np.concatenate([in_conf, oos_conf, [np.inf]]))
    best_t, best_acc = float(candidates[-1]), -1.0
    for t in candidates:
        if np.mean(oos_conf < t) >= min_recall:
            acc = float(np.mean(correct & (in_conf >= t)))
            if acc > best_acc:
                best_t, best_acc = float(t), acc
    return best_t


def auroc(in_conf: np.ndarray, oos_conf: np.ndarray) -> float:
    """P(an in-scope query is more confident than an out-of-scope one), ties counting half."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([in_conf, oos_conf]))
    n_in, n_out = len(in_conf), len(oos_conf)
    return float((ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def clinc(path: Path, embedder: MemoEmbedder | None, min_recall: float, latency_samples: int,
          params: Params | None = None) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    train = data["train"]
    started = time.perf_counter()
    model = IntentClassifier(embedder, params).fit([t for t, _ in train], [label for _, label in train], [t for t, _ in data.get("oos_train", [])])
    train_s = time.perf_counter() - started

    def score(in_key: str, oos_key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ins, oos = data[in_key], data[oos_key]
        s_in = model.scores([t for t, _ in ins])
        s_out = model.scores([t for t, _ in oos])
        return s_in.labels == np.array([label for _, label in ins]), s_in.confidence, s_out.confidence

    val = score("val", "oos_val")
    if "test" in data and "oos_test" in data:
        split = "test"
        threshold = choose_threshold(*val, min_recall)
        correct, in_conf, oos_conf = score("test", "oos_test")
        accepted, rejected = correct & (in_conf >= threshold), oos_conf < threshold
        thresholds: list[float] = [threshold]
    else:
        split = "val (threshold cross-fitted on halves)"
        correct, in_conf, oos_conf = val
        accepted, rejected, thresholds = _cross_fitted(correct, in_conf, oos_conf, min_recall)
    queries = [t for t, _ in data.get("test", data["val"])][:latency_samples]
    p50, p99 = _latency(model, queries)
    return {
        "data": str(path),
        "split": split,
        "classes": len(model.classes),
        "train_examples": len(train),
        "in_scope_accuracy": round(100 * float(np.mean(accepted)), 2),
        "oos_recall": round(100 * float(np.mean(rejected)), 2),
        "oos_auroc": round(auroc(in_conf, oos_conf), 4),
        "accuracy_without_rejection": round(100 * float(np.mean(correct)), 2),
        "threshold": [round(t, 4) for t in thresholds],
        "min_oos_recall_on_val": min_recall,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "train_s": round(train_s, 2),
        "embeddings": _describe(embedder),
    }


def _describe(embedder: MemoEmbedder | None) -> str:
    if embedder is None:
        return "none (TF-IDF only)"
    return embedder.name + (" (vectors from cache)" if isinstance(embedder.inner, CachedEmbedder) else "")


def _cross_fitted(correct: np.ndarray, in_conf: np.ndarray, oos_conf: np.ndarray, min_recall: float) -> tuple[np.ndarray, np.ndarray, list[float]]:
    # alternate rows: CLINC lists queries grouped by intent, so every half holds every intent
    accepted = np.zeros(len(in_conf), dtype=bool)
    rejected = np.zeros(len(oos_conf), dtype=bool)
    thresholds = []
    for half in (0, 1):
        fit_in, fit_out = np.arange(len(in_conf)) % 2 != half, np.arange(len(oos_conf)) % 2 != half
        t = choose_threshold(correct[fit_in], in_conf[fit_in], oos_conf[fit_out], min_recall)
        accepted[~fit_in] = correct[~fit_in] & (in_conf[~fit_in] >= t)
        rejected[~fit_out] = oos_conf[~fit_out] < t
        thresholds.append(t)
    return accepted, rejected, thresholds


# --- HWU64

def read_hwu(path: Path) -> list[tuple[str, str, int]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    if not rows or "test_fold" not in rows[0]:
        raise SystemExit(f"{path} has no test_fold column: expected the HWU64 cross-validation CSV")
    return [(r["answer_from_anno"].strip(), f"{r['scenario']}_{r['intent']}", int(r["test_fold"])) for r in rows]


def hwu(path: Path, embedder: MemoEmbedder | None, test_folds: list[int] | None, latency_samples: int,
        params: Params | None = None) -> dict[str, Any]:
    rows = read_hwu(path)
    present = sorted({fold for _, _, fold in rows})
    folds = test_folds or present
    missing = [f for f in folds if f not in present]
    if missing:
        raise SystemExit(f"folds {missing} are not in {path} (it has {present})")
    hits = total = 0
    per_fold: dict[str, float] = {}
    train_times = []
    model = None
    for fold in folds:
        train = [(t, label) for t, label, f in rows if f != fold]
        test = [(t, label) for t, label, f in rows if f == fold]
        started = time.perf_counter()
        model = IntentClassifier(embedder, params).fit([t for t, _ in train], [label for _, label in train])
        train_times.append(time.perf_counter() - started)
        predicted = model.scores([t for t, _ in test]).labels
        right = int(np.sum(predicted == np.array([label for _, label in test])))
        per_fold[str(fold)] = round(right / len(test), 4)
        hits, total = hits + right, total + len(test)
    assert model is not None
    p50, p99 = _latency(model, [t for t, _, f in rows if f == folds[-1]][:latency_samples])
    accuracies = list(per_fold.values())
    return {
        "data": str(path),
        "test_folds": folds,
        "classes": len(model.classes),
        # the classifier always answers, so micro precision = recall = F1 = accuracy
        "f1": round(hits / total, 4),
        "f1_fold_mean": round(float(np.mean(accuracies)), 4),
        "f1_fold_std": round(float(np.std(accuracies)), 4),
        "per_fold": per_fold,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        # per fold; the first fold also pays for embedding every text once
        "train_s": round(float(np.mean(train_times)), 2),
        "embed_s": round(embedder.seconds, 2) if embedder else 0.0,
        "embeddings": _describe(embedder),
    }


def _latency(model: IntentClassifier, queries: list[str]) -> tuple[float, float]:
    """Per utterance, one at a time as the worker sees them: embed + both experts + neighbours."""
    embedder = model.embedder
    if isinstance(embedder, MemoEmbedder):
        # time the model itself, not a memo or cache lookup
        inner = embedder.inner
        model.embedder = inner.inner if isinstance(inner, CachedEmbedder) else inner
    try:
        times = []
        for text in queries:
            started = time.perf_counter()
            model.rank(text)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        model.embedder = embedder
    return round(float(np.percentile(times, 50)), 2), round(float(np.percentile(times, 99)), 2)
