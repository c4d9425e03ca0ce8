"""A request that needs a connector this configuration lacks: what Deputy would have done, the settings that enable
it, and keeping the request as a draft or a task; /help lists what works now."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.intents.commands import COMMANDS
from agents.plan import Origin
from agents.planner import Planner
from agents.playbooks import Playbook
from agents.setups import SETUPS
from kernel.messages import Intent
from kernel.settings import Settings, env_name
from memory.events import EventLog
from memory.tasks import TaskStore
from tests.bot.conftest import logged_in_deputy

EMAIL = "/email ana@acme.io Contract | Hi Ana, the signed copy is attached."


@pytest.fixture
def bare_settings(redis_url, monkeypatch):  # type: ignore[no-untyped-def]
    """No SMTP, no CalDAV, no model: only Deputy's own state."""
    from kernel.settings import load_settings

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("JOB_RETRY_BACKOFF", "0")
    return load_settings()


@pytest.fixture
async def bare(bare_settings, redis):  # type: ignore[no-untyped-def]
    async with logged_in_deputy(bare_settings, redis) as deputy:
        yield deputy


async def click(deputy, button: dict, client_id: str) -> dict:
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                           "client_id": client_id})
    assert resp.status == 202
    await deputy.work()
    return (await deputy.messages())[-1]


def button(card: dict, label: str) -> dict:
    return next(b for b in card["buttons"] if b["label"] == label)


async def reply_to(deputy, text: str) -> dict:
    await deputy.say(text)
    await deputy.work()
    return (await deputy.messages())[-1]


async def test_an_email_without_smtp_names_the_settings_and_can_be_kept_as_a_draft(bare, bare_settings):
    hint = await reply_to(bare, EMAIL)
    assert "I would send “Contract” to ana@acme.io, but email is not set up" in hint["text"]
    assert "SMTP_HOST and SMTP_FROM" in hint["text"] and "README → Connectors" in hint["text"]
    card = hint["card"]
    assert card["title"] == "Not set up: email"
    assert [b["label"] for b in card["buttons"]] == ["Keep as draft", "Keep as a task"]
    missing = [e for e in EventLog(bare.redis, bare_settings.workspace).timeline(hint["trace_id"]) if e.kind == "setup.missing"]
    assert [e.data["capability"] for e in missing] == ["email.send"]

    kept = await click(bare, button(card, "Keep as draft"), "keep-1")
    assert kept["card"]["title"] == "Draft email"
    fields = {f["label"]: f["value"] for f in kept["card"]["fields"]}
    assert fields["To"] == "ana@acme.io" and fields["Subject"] == "Contract" and fields["Written by"] == "you"
    assert "the signed copy is attached" in kept["card"]["preview"]
    assert [b["label"] for b in kept["card"]["buttons"]] == ["Send", "Discard"]

    # the request is kept once: a second click (either button) keeps nothing more
    await click(bare, button(card, "Keep as a task"), "keep-2")
    shown = {m["text"]: m["card"] for m in await bare.messages()}
    assert shown["Already kept as a draft."]["resolution"] == "Kept as a draft"
    assert TaskStore(bare.redis, bare_settings.workspace).list() == []
    # Send on the draft, with email still not set up: the hint again, and the draft stays open for later
    still = await click(bare, button(kept["card"], "Send"), "send-1")
    assert "email is not set up" in still["text"] and "SMTP_HOST" in still["text"]


async def test_keep_as_a_task_adds_a_task_titled_with_what_deputy_would_have_done(bare, bare_settings):
    hint = await reply_to(bare, EMAIL)
    kept = await click(bare, button(hint["card"], "Keep as a task"), "task-1")
    tasks = TaskStore(bare.redis, bare_settings.workspace).list()
    assert [t.title for t in tasks] == ["Send “Contract” to ana@acme.io"]
    assert kept["text"] == f"Kept as task #{tasks[0].id}: Send “Contract” to ana@acme.io"


async def test_a_goal_for_the_model_without_one_names_openai_base_url(bare):
    hint = await reply_to(bare, "/do find a time with Ana next week")
    assert "a language model is not set up" in hint["text"] and "OPENAI_BASE_URL" in hint["text"]
    assert [b["label"] for b in hint["card"]["buttons"]] == ["Keep as a task"]


async def test_a_meeting_without_a_calendar_names_caldav_url_and_can_be_kept_as_a_task(bare, bare_settings):
    hint = await reply_to(bare, "schedule a call with Ana next Tuesday at 3pm")
    assert "calendar is not set up" in hint["text"] and "CALDAV_URL" in hint["text"]
    kept = await click(bare, button(hint["card"], "Keep as a task"), "task-1")
    [task] = TaskStore(bare.redis, bare_settings.workspace).list()
    assert task.title.startswith("Put “") and task.title.endswith("” in your calendar") and kept["text"].startswith("Kept as task")


async def test_with_smtp_the_same_email_gets_the_approval_card(deputy, smtp):
    card = (await reply_to(deputy, EMAIL))["card"]
    assert [b["action"] for b in card["buttons"]] == ["approval.approve", "approval.reject"]
    assert smtp.messages == []


async def test_help_without_calendar_or_email_lists_them_as_not_set_up(bare):
    text = (await reply_to(bare, "/help"))["text"]
    assert "/remember Ana prefers calls after 10am" in text and "/task add send the invoice #billing" in text
    not_set_up = text.split("Not set up yet:", 1)[1]
    assert "(set CALDAV_URL, CALDAV_USERNAME, CALDAV_PASSWORD)" in not_set_up and "email for /email, /followup (set SMTP_HOST, SMTP_FROM)" in not_set_up
    assert "/email ana@acme.io" not in text
    assert len(text.splitlines()) <= 12


async def test_help_with_calendar_and_email_lists_their_examples(settings, redis, monkeypatch):
    from kernel.settings import load_settings

    monkeypatch.setenv("CALDAV_URL", "http://127.0.0.1:9/dav/")
    async with logged_in_deputy(load_settings(), redis) as deputy:
        text = (await reply_to(deputy, "/help"))["text"]
    assert "CALDAV_URL" not in text and "email for /email" not in text
    for command in COMMANDS:
        if command.needs.startswith(("calendar.", "email.send")):
            assert command.example in text, command.name


async def test_help_for_one_command_gives_its_usage(bare):
    text = (await reply_to(bare, "/help task"))["text"]
    assert text.startswith("/task — your to-do list") and "Usage: /task add TITLE" in text


def test_every_setting_a_hint_names_is_read_by_deputy_and_its_readme_section_exists():
    read = {env_name((group, name))[0] for group, info in Settings.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            for name in info.annotation.model_fields}
    named = {name for setup in SETUPS for name in (*setup.required, *setup.optional)}
    assert named <= read, sorted(named - read)
    headings = {line.lstrip("#").strip() for line in (Path(__file__).parents[2] / "README.md").read_text().splitlines()
                if line.startswith("## ")}
    assert {setup.section for setup in SETUPS} <= headings


def test_a_model_plan_with_none_of_its_capabilities_configured_names_their_settings():
    book = Playbook(name="notify", description="tell the CRM", allowed=("webhook.post",))
    planner = Planner({"notify": book}, {}, llm=object())  # type: ignore[arg-type]
    origin = Origin(channel="console", thread_id="t1", actor="operator")
    problem, _ = planner.plan(Intent(name="notify", text="tell the crm"), "r1", "t1", "default", origin)
    assert "set OUTBOUND_WEBHOOKS (README → Connectors" in problem.reason


@pytest.mark.parametrize("goal, needs", [
    ("email ana@acme.io that the invoice is paid", ["email"]), ("Please send an email to Ana", ["email"]),
    ("write to Bo about Friday", ["email"]), ("schedule a call with Ana", ["calendar"]),
    ("put lunch with Ana on my calendar", ["calendar"]),
    # only how a goal opens counts: these merely mention email or a meeting
    ("add a task to answer Ana's email", []), ("find my notes about the meeting", []), ("let Ana know", [])])
def test_a_goal_plainly_needs_a_family_only_by_how_it_opens(goal, needs):
    from agents.setups import needed_by

    assert [s.family for s in needed_by(goal)] == needs
