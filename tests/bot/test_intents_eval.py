"""`deputy eval intents`: the protocol (which split is scored, where the threshold comes from) and the JSON fields."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.bench.intents_eval import MIN_OOS_RECALL, MIN_OOS_RECALL_TWO_MODELS, auroc, choose_threshold, run

TOPICS = {
    "weather": ["will it rain {}", "weather forecast for {}", "is it sunny in {}", "how cold is it in {}"],
    "flights": ["book a flight to {}", "find flights to {}", "cheap tickets to {}", "fly me to {}"],
    "hotels": ["book a hotel in {}", "find a room in {}", "hotels near {}", "reserve a stay in {}"],
}
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "quito", "dakar", "perth", "sofia", "riga", "baku"]
OOS = ["tell me a joke", "what is love", "sing a song", "who am i", "how do magnets work", "play some jazz",
       "what is the meaning of life", "recommend a movie", "how tall is everest", "order a pizza"]


def _pairs(cities: list[str]) -> list[list[str]]:
    return [[t.format(c), label] for label, templates in TOPICS.items() for t in templates for c in cities]


def test_clinc_format_scores_test_with_a_threshold_chosen_on_val(tmp_path: Path, settings):
    data = {
        "train": _pairs(CITIES[:6]), "val": _pairs(CITIES[6:9]), "test": _pairs(CITIES[9:]),
        "oos_train": [[t, "oos"] for t in OOS[:3]], "oos_val": [[t, "oos"] for t in OOS[3:6]],
        "oos_test": [[t, "oos"] for t in OOS[6:]],
    }
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps(data))
    result = run(settings, ["--clinc", str(path), "--no-embeddings", "--latency-samples", "5"])
    assert result["split"] == "test" and result["classes"] == 3 and len(result["threshold"]) == 1
    # the three topics share no words: every test query is ranked right, every out-of-scope one below every in-scope one
    assert result["accuracy_without_rejection"] == 100.0 and result["oos_auroc"] == 1.0
    # so the threshold chosen on val rejects all of the unseen out-of-scope queries, at the cost of a few in-scope ones
    assert result["oos_recall"] == 100.0 and 50 < result["in_scope_accuracy"] <= result["accuracy_without_rejection"]
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"]


def test_without_a_test_split_val_is_scored_with_cross_fitted_thresholds(tmp_path: Path, settings):
    data = {"train": _pairs(CITIES[:8]), "val": _pairs(CITIES[8:]), "oos_val": [[t, "oos"] for t in OOS]}
    path = tmp_path / "clinc_dev.json"
    path.write_text(json.dumps(data))
    result = run(settings, ["--clinc", str(path), "--no-embeddings", "--latency-samples", "5"])
    assert result["split"].startswith("val") and len(result["threshold"]) == 2
    assert result["min_oos_recall_on_val"] == MIN_OOS_RECALL != MIN_OOS_RECALL_TWO_MODELS  # no sentence models: the single-model floor
    chosen = run(settings, ["--clinc", str(path), "--no-embeddings", "--latency-samples", "5", "--min-oos-recall", "0.5"])
    assert chosen["min_oos_recall_on_val"] == 0.5


def test_hwu_folds_and_missing_folds(tmp_path: Path, settings):
    rows = ["answerid;test_fold;scenario;intent;answer_annotation;answer_from_anno;answer_from_user"]
    for i, (text, label) in enumerate(_pairs(CITIES)):
        scenario, _, intent = (label + "_query").partition("_")
        rows.append(f"{i};{i % 3 + 1};{scenario};{intent};{text};{text};{text}")
    path = tmp_path / "hwu.csv"
    path.write_text("\n".join(rows) + "\n")
    result = run(settings, ["--hwu", str(path), "--no-embeddings", "--test-folds", "2,3", "--latency-samples", "5"])
    assert result["test_folds"] == [2, 3] and set(result["per_fold"]) == {"2", "3"}
    # trained on the other folds each time, the separable topics are recognised in every held-out fold
    assert result["f1"] == 1.0 and result["per_fold"] == {"2": 1.0, "3": 1.0}
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"]
    with pytest.raises(SystemExit, match="folds \\[9\\] are not in"):
        run(settings, ["--hwu", str(path), "--no-embeddings", "--test-folds", "9"])


def test_threshold_meets_the_recall_floor_with_the_best_accuracy():
    correct = np.array([True, True, True, False])
    in_conf = np.array([0.9, 0.8, 0.3, 0.95])
    oos_conf = np.array([0.1, 0.2, 0.35, 0.85])
    t = choose_threshold(correct, in_conf, oos_conf, min_recall=0.75)
    assert np.mean(oos_conf < t) >= 0.75
    assert t == pytest.approx(0.8)  # rejects 0.1, 0.2, 0.35; keeps the two confident right answers


def test_auroc_is_the_probability_in_scope_ranks_above_out_of_scope():
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5



# --- operator messages: the product's own recogniser

OPERATOR_KEYS = {"n", "in_scope_accuracy", "oos_not_acted", "clarified", "per_intent", "confusions",
                 "latency_ms_p50", "latency_ms_p99"}


def test_operator_file_is_scored_as_the_worker_recognises_it(tmp_path: Path, settings):
    lines = [{"text": "add a task to renew the domain", "intent": "add_task"},
             {"text": "show my open tasks", "intent": "list_tasks"},
             {"text": "remind me to call ana tomorrow at 9am", "intent": "remind"},
             {"text": "tell me a joke", "intent": "out_of_scope"},
             {"text": "zzqx vlorp", "intent": "out_of_scope"}]
    path = tmp_path / "operator.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run(settings, ["--operator", str(path), "--no-embeddings", "--misses"])
    assert OPERATOR_KEYS <= set(result) and result["n"] == 5 and result["threshold"] == settings.intent.threshold
    # scored on the intent matched, not on the skill it runs (add_task and list_tasks both run `task`)
    assert set(result["per_intent"]) >= {"add_task", "list_tasks", "remind"}
    assert all(0 <= result[k] <= 100 for k in ("in_scope_accuracy", "oos_not_acted", "clarified"))
    # each message acted on wrongly or not acted on is listed once, under what Deputy did instead
    assert all(m["got"] != m["intent"] for m in result["misses"])
    assert len(result["misses"]) == sum(result["confusions"].values())
    # phrases it learned from are recognised
    assert result["per_intent"]["add_task"]["recall"] == 1.0 and result["per_intent"]["remind"]["recall"] == 1.0


def test_operator_file_must_be_labelled_json_lines(tmp_path: Path, settings):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hi"}\n')
    with pytest.raises(SystemExit, match="bad.jsonl:1"):
        run(settings, ["--operator", str(path), "--no-embeddings"])


def test_operator_dev_set_meets_the_targets(shared_eval: Path, settings):
    """The built-in intents on the operator dev messages, as a worker without all-mpnet-base-v2 sees them."""
    result = run(settings, ["--operator", str(shared_eval / "operator" / "operator_intents_dev.jsonl"), "--minilm-only"])
    assert result["in_scope_accuracy"] >= 90, result["confusions"]
    assert result["oos_not_acted"] >= 90, result["confusions"]
