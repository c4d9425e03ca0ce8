"""Replay: a planned run is recorded (model request and answer, inputs, plan; secrets masked), and `deputy replay`
carries it out again on the record with no model call and no email; after a policy change it names the first step
that goes another way, and a run whose input was forgotten says so instead of diverging."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from agents.plan import Origin
from agents.recording import Recordings
from bot.replay_cli import run_replay
from jobs.agent_wiring import build_agent
from jobs.queues import JobQueues
from jobs.replay_wiring import replay_trace
from jobs.runtime import make_llm
from kernel.messages import Intent
from kernel.settings import load_settings
from memory.events import EventLog
from memory.facts import FactStore
from memory.forgetting import Forgetting
from memory.notes import NoteStore
from memory.tasks import TaskStore
from tests.agents.test_provenance import obey

ORIGIN = Origin(channel="console", thread_id="t-replay", actor="operator")
ANA = "ana@client.example"
GOAL = f"Email {ANA} that the Lisbon invoice is paid"
SEND = obey({"name": "email.send", "arguments": {"to": [ANA], "subject": "Lisbon invoice", "body": "Paid today. Thanks!"}})


def approved_run(agent: Any, trace: str, goal: str = GOAL) -> None:
    """/do GOAL planned by the model into one email.send, approved by the operator and sent."""
    outcome = agent.start(Intent(name="do", text=goal, slots={"goal": goal}), ORIGIN, trace)
    assert outcome.card is not None, outcome.text
    [approval] = [a for a in agent.approvals.pending() if a.trace_id == trace]
    agent.decide(approval.id, "operator", "approved", f"{trace}-click")
    assert agent.run(approval.run_id).ok


def deny_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: deny\ncapabilities:\n  email.send: {autonomy: deny}\n", encoding="utf-8")
    monkeypatch.setenv("POLICY_FILE", str(policy))
    return load_settings()


def cli(settings: Any, trace: str, *flags: str) -> int:
    """`deputy replay TRACE [flags]` as the command runs it (main() would also set up logging for the process)."""
    return run_replay(argparse.Namespace(trace_id=trace, dry_run="--dry-run" in flags, json="--json" in flags), settings)


def scratch_keys(redis: Redis) -> list[bytes]:
    return list(redis.scan_iter(match="dp:replay-*"))


def test_a_run_is_recorded_and_replays_with_no_model_call_and_no_email(agent, openai_server, smtp, redis, settings):
    openai_server.answer(SEND)
    approved_run(agent, "rp-same")
    recording = Recordings(redis, settings.workspace).get("rp-same")
    assert recording is not None and recording.intent.text == GOAL and [c.purpose for c in recording.calls] == ["plan"]
    assert "email__send" in recording.calls[0].tools and recording.calls[0].answer.tool_calls[0].name == "email__send"
    assert [s.capability for s in recording.steps] == ["email.send"] and recording.source == "llm"
    asked, sent = len(openai_server.requests), len(smtp.messages)

    report = replay_trace(settings, redis, "rp-same")

    assert report.status == "reproduced", report
    assert report.steps[0]["recorded"] == report.steps[0]["now"] == {
        "capability": "email.send", "decision": "approve", "risk": report.steps[0]["recorded"]["risk"], "status": "done",
        "approval": "approved"}
    assert (report.answers_used, report.answers_recorded) == (1, 1)
    assert len(openai_server.requests) == asked and len(smtp.messages) == sent  # no model call, no email
    assert scratch_keys(redis) == []


def test_after_email_send_is_denied_the_replay_names_step_1(agent, openai_server, smtp, redis, settings, tmp_path,
                                                            monkeypatch, capsys):
    openai_server.answer(SEND)
    approved_run(agent, "rp-deny")
    denying = deny_email(tmp_path, monkeypatch)

    for dry_run in (False, True):
        report = replay_trace(denying, redis, "rp-deny", dry_run=dry_run)
        assert report.status == "diverged" and report.divergence is not None
        assert (report.divergence.step, report.divergence.capability) == (1, "email.send")
        assert str(report.divergence) == "step 1 email.send: recorded approve → now deny (the policy does not allow email.send)"

    assert cli(denying, "rp-deny") == 1  # non-zero for CI
    shown = capsys.readouterr().out
    assert "diverges at step 1 email.send: recorded approve → now deny" in shown and "no model was called" in shown
    assert len(smtp.messages) == 1 and scratch_keys(redis) == []


def test_a_forgotten_input_makes_replay_say_inputs_forgotten_not_diverged(agent, openai_server, redis, settings):
    openai_server.answer(SEND)
    approved_run(agent, "rp-forgot")
    ws = settings.workspace
    events = EventLog(redis, ws)
    Forgetting(NoteStore(redis, ws), FactStore(redis, ws), TaskStore(redis, ws), {}, events).forget("Lisbon invoice", "operator")
    assert b"Lisbon" not in (redis.get(f"dp:{ws}:replay:rp-forgot") or b"")

    report = replay_trace(settings, redis, "rp-forgot")

    assert report.status == "inputs_forgotten" and report.divergence is None
    assert "the request" in report.forgotten and "model request 1" in report.forgotten, report.forgotten
    assert cli(settings, "rp-forgot") == 3


def test_secrets_are_masked_in_the_recording_and_the_run_still_replays(openai_server, smtp, redis, settings, monkeypatch):
    secret = "portal-key-7Q2W9E4R"
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # a configured secret is masked wherever it is quoted
    configured = load_settings()
    openai_server.answer(SEND)
    approved_run(build_agent(configured, redis, make_llm(configured, redis), JobQueues(redis, 0)), "rp-secret",
                 goal=f"Email {ANA} the key {secret} for the portal")

    raw = redis.get(f"dp:{settings.workspace}:replay:rp-secret").decode()
    assert secret not in raw and "***" in raw
    assert json.loads(raw)["calls"][0]["messages"][1]["content"] == f"Goal: Email {ANA} the key *** for the portal"
    assert replay_trace(configured, redis, "rp-secret").status == "reproduced"


def test_a_planner_that_asks_the_model_something_else_diverges_at_that_call(agent, openai_server, redis, settings):
    openai_server.answer(SEND)
    approved_run(agent, "rp-prompt")
    key = f"dp:{settings.workspace}:replay:rp-prompt"
    recorded = json.loads(redis.get(key))
    # as if the planner's instructions had been different when the run was planned
    recorded["calls"][0]["messages"][0]["content"] = "An older system prompt."
    redis.set(key, json.dumps(recorded))

    report = replay_trace(settings, redis, "rp-prompt")

    assert report.status == "diverged" and str(report.divergence) == (
        "model call 1 (plan): the planner now asks the model something else: message 1 (system) differs")


def test_a_run_with_no_recording_says_so(redis, settings, capsys):
    assert replay_trace(settings, redis, "nothing-here").status == "no_recording"
    assert cli(settings, "nothing-here", "--json") == 2
    assert json.loads(capsys.readouterr().out)["status"] == "no_recording"
