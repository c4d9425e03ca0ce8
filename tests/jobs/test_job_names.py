"""Every job name Redis may hold (kernel/job_names.py) still runs: each is queued the way Deputy queues it
(the gateway, the agent, reminders, spend requests, cron, `deputy ingest`), and a real worker carries it out."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents.budget import SpendRequest
from agents.intents.commands import parse_command
from agents.plan import Origin, Plan, Step
from agents.reminders import Draft
from jobs.cron import CRON, build_scheduler
from jobs.queues import BACKGROUND, INTERACTIVE
from jobs.registry import JOBS
from jobs.runtime import Runtime, job_queues, open_runtime
from jobs.worker import run_burst
from kernel import job_names
from kernel.messages import Decision, Inbound, Reply
from kernel.outbox import STREAM
from kernel.settings import load_settings
from memory.events import EventLog
from memory.tasks import TaskStore
from memory.workspaces import Workspaces
from tests.integrations.test_imap import mail
from tests.jobs.work import wait
from tests.memory.contract import item

WS = "default"
COVERED: set[str] = set()


def runs(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a test as queueing and running these job names."""
    COVERED.update(names)
    return lambda test: test


def test_every_job_name_is_registered_and_run_below():
    names = {value for key, value in vars(job_names).items() if key.isupper()}
    assert names == set(JOBS) == COVERED


# --- helpers

@pytest.fixture
def rt(settings, redis):  # type: ignore[no-untyped-def]
    """The producers' side: what the gateway, the agent and the routine skills queue work with."""
    with open_runtime(load_settings(), redis) as runtime:
        yield runtime


def as_the_gateway(redis: Redis, job: str, payload: dict[str, Any], trace_id: str) -> None:
    """bot/gateway.py's enqueue: the interactive queue, the trace id as job id, the failure callback."""
    job_queues(load_settings(), redis).enqueue(job, {"trace_id": trace_id, **payload}, job_id=trace_id, queue=INTERACTIVE,
                                               on_failure=job_names.REPORT_FAILURE)


def message(text: str, event_id: str = "e1") -> dict[str, Any]:
    inbound = Inbound(channel="console", event_id=event_id, user_id="operator", thread_id="t1", text=text)
    intent = parse_command(text)
    return {"inbound": inbound.model_dump(mode="json"), "intent": intent.model_dump(mode="json") if intent else {}}


def finished(redis: Redis, job_id: str) -> Job:
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    return job


def replies(redis: Redis) -> dict[str, Reply]:
    found = (Reply.model_validate_json(fields[b"reply"]) for _, fields in redis.xrange(STREAM))
    return {r.reply_id: r for r in found}


def kinds(redis: Redis, trace_id: str) -> list[str]:
    return [e.kind for e in EventLog(redis, WS).timeline(trace_id)]


def titles(redis: Redis) -> list[str]:
    return [t.title for t in TaskStore(redis, WS).list()]


def cron_tick(redis: Redis, func: Callable[..., Any]) -> None:
    """What `deputy cron` does at start-up, for one periodic job: queue it now."""
    assert len(build_scheduler(redis, load_settings(), periodic=[p for p in CRON if p.func is func]).enqueue_jobs()) == 1


# --- the gateway

@runs(job_names.HANDLE_MESSAGE)
def test_a_message_from_the_gateway(settings, redis):
    as_the_gateway(redis, job_names.HANDLE_MESSAGE, message("/task add Call the bank"), "m1")
    run_burst(redis)
    assert finished(redis, "m1").return_value() == {"trace_id": "m1", "ok": True}
    assert titles(redis) == ["Call the bank"] and "m1.reply" in replies(redis)


@runs(job_names.HANDLE_DECISION)
def test_a_button_click_from_the_gateway(settings, redis):
    task = TaskStore(redis, WS).add("Call the bank")
    click = Decision(channel="console", event_id="c1", user_id="operator", thread_id="t1", action="task.done", value=str(task.id))
    as_the_gateway(redis, job_names.HANDLE_DECISION, {"decision": click.model_dump(mode="json")}, "d1")
    run_burst(redis)
    finished(redis, "d1")
    assert TaskStore(redis, WS).list() == [] and "d1.decision" in replies(redis)


@runs(job_names.REPORT_FAILURE)
def test_a_failed_message_is_reported_in_its_thread(settings, redis):
    payload = message("/task add Call the bank")
    payload["intent"] = {"no": "name"}  # a job that fails every attempt
    as_the_gateway(redis, job_names.HANDLE_MESSAGE, payload, "f1")
    run_burst(redis)
    assert "job.failed" in kinds(redis, "f1")
    assert replies(redis)["f1.failed"].text.startswith("Sorry, I could not finish that.")


# --- spend requests

@runs(job_names.HANDLE_MESSAGE)
def test_an_approved_spend_request_runs_its_message_again(rt: Runtime, redis):
    budgets = rt.budgets
    request = SpendRequest(id="s1", run_id="m0", project="inbox", model="m", scope="daily", estimate=1, spent=1, cap=1, extra=10,
                           day=budgets.ledger.today().isoformat(), resume_func=job_names.HANDLE_MESSAGE,
                           resume_payload=message("/task add Call the bank"))
    redis.set(budgets.keys("spend_request", request.id), request.model_dump_json())
    assert budgets.decide(request.id, approve=True, by="operator")[1]
    run_burst(redis)
    assert titles(redis) == ["Call the bank"]


# --- the agent: a run, and a run resumed after its approval

@runs(job_names.RUN_PLAN, job_names.RESUME_RUN)
def test_a_run_and_its_resumption_after_an_approval(settings, redis, tmp_path: Path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: deny\ncapabilities:\n  tasks.create: {autonomy: approve}\n", encoding="utf-8")
    monkeypatch.setenv("POLICY_FILE", str(policy))
    plan = Plan(run_id="r1", trace_id="tr1", workspace=WS, goal="Add a task", request="add a task", intent="task", source="llm",
                steps=(Step(index=0, capability="tasks.create", args={"title": "Call the bank"}),),
                origin=Origin(channel="console", thread_id="t1", actor="operator"), allowed=("tasks.create",))
    with open_runtime(load_settings(), redis) as rt:
        assert rt.agent.runs.save(plan)
        rt.agent.enqueue(job_names.RUN_PLAN, {"run_id": "r1"}, "run-r1")
        run_burst(redis)
        assert finished(redis, "run-r1").return_value() == {"run_id": "r1", "ok": True}
        [approval] = rt.agent.approvals.pending()
        assert replies(redis)["r1.run"].card is not None and titles(redis) == []
        rt.agent.decide(approval.id, "operator", "approved", "tr2")
        run_burst(redis)
    assert finished(redis, f"resume-{approval.id}").return_value() == {"run_id": "r1", "ok": True}
    assert titles(redis) == ["Call the bank"] and f"r1.resume-{approval.id}" in replies(redis)


# --- reminders

@runs(job_names.FIRE_REMINDER)
def test_a_reminder_fires_when_due(rt: Runtime, redis):
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    reminder = rt.reminders.add(Draft(what="water the plants", due=due), "console", "t1", {}, created_by="operator", trace_id="rem1")
    job_id = f"reminder-{reminder.id}-0"
    assert wait(lambda: job_id in ScheduledJobRegistry("default", connection=redis).get_jobs_to_schedule(), 5)
    run_burst(redis)
    assert "reminder.fired" in kinds(redis, "rem1")
    assert [r.text for r in replies(redis).values()] == ["⏰ Reminder: water the plants"]


# --- cron

@runs(job_names.DIGEST_TICK)
def test_the_digest_tick(settings, redis, monkeypatch):
    from jobs.digest_jobs import digest_tick

    monkeypatch.setenv("DIGEST_TIME", "00:00")  # due all day
    cron_tick(redis, digest_tick)
    run_burst(redis)
    [sent] = EventLog(redis, WS).recent(10, kinds=["digest.sent"])
    assert sent.data["channels"] == ["console"]


@runs(job_names.INBOX_TICK)
def test_the_inbox_tick(settings, redis, imap, monkeypatch):  # noqa: F811
    from jobs.inbox_jobs import inbox_tick

    for name, value in {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(imap.port), "IMAP_SECURITY": "none", "IMAP_USERNAME": "me",
                        "IMAP_PASSWORD": "inbox-pass", "INBOX_TRIAGE_EVERY_MIN": "15"}.items():
        monkeypatch.setenv(name, value)
    imap.deliver(mail("Bob Client <bob@client.example>", "Quote for the new logo?", "Hi, can you send a quote?"))
    cron_tick(redis, inbox_tick)
    run_burst(redis)
    assert titles(redis) == ["Reply to Bob Client: Quote for the new logo?"]


@runs(job_names.SWEEP_RETENTION)
def test_the_retention_sweep(rt: Runtime, redis):
    from jobs.ingest import sweep_retention

    old = datetime.now(timezone.utc) - timedelta(days=40)
    rt.memory.store.add([item("old", "Quote sent to Globex", workspace=WS, project="sales", created_at=old.timestamp())])
    Workspaces(redis).set_retention(WS, "sales", 30)
    cron_tick(redis, sweep_retention)
    run_burst(redis)
    assert rt.memory.store.count(WS) == 0
    [expired] = EventLog(redis, WS).recent(10, kinds=["memory.expired"])
    assert expired.data["deleted"] == {"sqlite": 1}


# --- `deputy ingest`, and the queue benchmark

@runs(job_names.INGEST_FILE)
def test_a_file_to_ingest(settings, redis, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("Bob at Initech pays late.", encoding="utf-8")
    payload = {"workspace": WS, "path": str(docs / "note.md"), "root": str(docs), "project": "inbox", "trusted": False,
               "trace_id": "i1"}
    job_queues(load_settings(), redis).enqueue(job_names.INGEST_FILE, payload, job_id="ingest-1", queue=BACKGROUND)
    run_burst(redis)
    assert kinds(redis, "i1") == ["memory.ingested"]


@runs(job_names.PING)
def test_a_ping(settings, redis):
    job_queues(load_settings(), redis).enqueue(job_names.PING, {"i": 7}, job_id="ping-1")
    run_burst(redis)
    assert finished(redis, "ping-1").return_value() == {"i": 7}
