"""`deputy bench intents`: the figures it reports, on a tiny file and without sentence models (seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench.intents import run
from kernel.settings import load_settings

FIELDS = {"startup_s", "first_answer_s", "p50_ms", "p99_ms", "worker_pss_mb", "large_model_share", "in_scope_accuracy",
          "oos_not_acted", "clarified", "load_avg"}


def test_per_message_figures_and_the_shape_of_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str):
    for key, value in {"INTENT_EMBEDDINGS": "false", "MODEL_CACHE_DIR": str(tmp_path / "models"), "REDIS_URL": redis_url}.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "operator.jsonl"
    lines = [{"text": "add a task to renew the domain", "intent": "add_task"}, {"text": "tell me a joke", "intent": "out_of_scope"}]
    path.write_text("\n".join(map(json.dumps, lines)) + "\n")
    result = run(load_settings(), ["--data", str(path), "--passes", "3", "--no-up"])
    assert FIELDS <= set(result) and json.loads(json.dumps(result)) == result
    assert result["messages_timed"] == 6 and 0 < result["p50_ms"] <= result["p99_ms"]
    assert (result["in_scope_accuracy"], result["oos_not_acted"], result["large_model_share"]) == (100.0, 100.0, 0.0)
    assert result["startup_s"] is None and result["worker_pss_mb"] is None  # --no-up: no `deputy up` started
    assert len(result["load_avg"]) == 2
