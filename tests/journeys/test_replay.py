"""Journey: `/do` planned by a (scripted) model sends an email once the operator approves it; `deputy replay TRACE`
carries that run out again with no model call and no email and finds nothing different; after email.send is
switched to deny it names step 1 email.send as the first divergence. Through the real gateway and worker, and the
command run as an operator runs it, against the same Redis and settings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.fakes.openai_server import ScriptedOpenAI
from tests.agents.test_provenance import obey
from tests.journeys.world import ClusterConfig
from tests.waiting import wait_for

ANA = "ana@client.example"


@pytest.fixture(scope="module")
def cluster_config(model: ScriptedOpenAI) -> ClusterConfig:
    return ClusterConfig(caldav=False, slack=False, telegram=False, env={"OPENAI_BASE_URL": model.base_url})


def deputy_replay(cluster: Any, trace: str, **env: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "bot.cli", "replay", trace, "--json"], env={**cluster.env(), **env},
                          cwd=cluster.folder, capture_output=True, text=True, timeout=60)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_replayed_email_run_reproduces_then_names_the_step_a_new_policy_denies(console, cluster, model, tmp_path: Path):
    model.answer(obey({"name": "email.send", "arguments": {"to": [ANA], "subject": "Lisbon invoice", "body": "Paid today."}}))
    card = console.ask(f"/do Email {ANA} that the Lisbon invoice is paid", where=lambda said: said.card is not None)
    assert card.card.labels == ["Approve", "Reject"], card
    console.click("Approve", on=card)
    wait_for(lambda: len(cluster.emails()) == 1, 30, what="the approved email")
    trace = card.raw["trace_id"]
    asked, sent = len(model.requests), len(cluster.emails())

    code, report = deputy_replay(cluster, trace)

    assert (code, report["status"], report["divergence"]) == (0, "reproduced", None), report
    assert [(s["now"]["capability"], s["now"]["decision"], s["now"]["status"], s["now"]["approval"]) for s in report["steps"]] == [
        ("email.send", "approve", "done", "approved")]
    assert len(model.requests) == asked and len(cluster.emails()) == sent  # no model call, no email

    policy = tmp_path / "policy.yaml"
    policy.write_text("default: deny\ncapabilities:\n  email.send: {autonomy: deny}\n", encoding="utf-8")
    code, report = deputy_replay(cluster, trace, POLICY_FILE=str(policy))

    divergence = report["divergence"]
    assert (code, report["status"]) == (1, "diverged"), report
    assert (divergence["step"], divergence["capability"], divergence["recorded"], divergence["now"]) == (1, "email.send", "approve", "deny")
    assert len(model.requests) == asked and len(cluster.emails()) == sent
