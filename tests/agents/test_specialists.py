"""Specialists: every built-in intent, playbook and capability has its place; a plan belongs to one specialist,
may use only what it may, and says so on its card and in its trace; a specialist's rules only ever ask more."""
from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel
from redis import Redis

from agents.approval_cards import approval_card
from agents.intents.commands import COMMANDS
from agents.intents.registry import load_registry
from agents.plan import Origin
from agents.planner import Planner
from agents.playbooks import load_playbooks
from agents.policy import CapabilityRule, load_policy
from agents.risk import assess
from agents.specialists import SPECIALISTS, route
from integrations.capability import Capability, RetryPolicy, RiskClass
from integrations.registry import build_capabilities
from jobs.agent_wiring import build_agent
from jobs.queues import JobQueues
from jobs.runtime import make_llm
from kernel.messages import Intent
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings, ImapSettings, SmtpSettings, WebhookSettings, WebhookTarget
from memory.events import EventLog
from tests.agents.test_provenance import obey

ORIGIN = Origin(channel="console", thread_id="t1", actor="operator")
BUILT_IN_INTENTS = {spec.name for spec in load_registry()} | {command.name for command in COMMANDS}


def owners(name: str, field: str) -> list[str]:
    return [s.name for s in SPECIALISTS if name in getattr(s, field)]


@pytest.mark.parametrize("intent", sorted(BUILT_IN_INTENTS))
def test_every_built_in_intent_belongs_to_exactly_one_specialist(intent):
    assert len(owners(intent, "intents")) == 1, (intent, owners(intent, "intents"))


@pytest.mark.parametrize("playbook", sorted(load_playbooks()))
def test_every_playbook_belongs_to_one_specialist_that_may_use_what_it_uses(playbook):
    [owner] = owners(playbook, "playbooks")
    book = load_playbooks()[playbook]
    assert route(playbook, book.allowed).name == owner
    specialist = next(s for s in SPECIALISTS if s.name == owner)
    assert [c for c in book.allowed if not specialist.may(c)] == [], f"{owner} may not use all '{playbook}' uses"


def test_the_specialists_name_only_intents_and_playbooks_that_exist():
    assert {i for s in SPECIALISTS for i in s.intents} <= BUILT_IN_INTENTS
    assert {p for s in SPECIALISTS for p in s.playbooks} <= set(load_playbooks())
    assert len({s.name for s in SPECIALISTS}) == len(SPECIALISTS)


def test_every_capability_deputy_can_have_is_some_specialists(redis: Redis):
    everything = build_capabilities(Settings(
        workspace="default", smtp=SmtpSettings(host="127.0.0.1", sender="me@studio.example"),
        imap=ImapSettings(host="127.0.0.1", username="me", password="pw"), caldav=CalDavSettings(url="http://127.0.0.1:9/cal"),
        webhooks=WebhookSettings(outbound={"crm": WebhookTarget(url="http://127.0.0.1:9/hook")})), redis)
    assert sorted(c for c in everything if not any(s.may(c) for s in SPECIALISTS)) == []


def test_an_operators_own_capability_intent_goes_to_the_specialist_that_may_use_it():
    assert route("deal_board", ("crm.deal.list",)).name == "sales"
    assert route("refund_order", ("payments.nobody_has_this",)).name == "desk"


def test_a_playbook_plan_names_its_specialist_and_its_allow_list(capabilities):
    planner = Planner(load_playbooks(), capabilities)
    plan, _ = planner.plan(Intent(name="schedule", slots={"title": "Call", "start": "2030-01-02T10:00", "end": "2030-01-02T10:30"}),
                           "r1", "t1", "default", ORIGIN)
    assert plan.specialist == "calendar" and "email.send" not in plan.allowed and "calendar.create" in plan.allowed


@pytest.fixture
def calendar_agent(settings, redis, openai_server, monkeypatch):  # type: ignore[no-untyped-def]
    """The worker's agent with a calendar configured (never reached: the plans here stop before acting)."""
    from kernel.settings import load_settings

    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("CALDAV_URL", "http://127.0.0.1:9/cal")
    s = load_settings()
    return build_agent(s, redis, make_llm(s, redis), JobQueues(redis, 0))


def test_the_calendar_specialist_may_not_send_email(calendar_agent, openai_server, smtp, redis, settings):
    openai_server.answer(obey(
        {"name": "calendar.create", "arguments": {"title": "Call with Ana", "start": "2030-01-04T10:00", "end": "2030-01-04T10:30"}},
        {"name": "email.send", "arguments": {"to": ["ana@acme.io"], "subject": "Friday", "body": "See you at 10."}}))
    goal = "book a call with Ana on Friday at 10"
    outcome = calendar_agent.start(Intent(name="calendar", text=goal, slots={"goal": goal}), ORIGIN, "cal-1")

    assert not outcome.ok and outcome.card is None
    assert "the calendar specialist may not send email" in outcome.text, outcome.text
    assert smtp.messages == []
    # the model was never offered email, and what it proposed anyway was refused, with the specialist named
    offered = {t["function"]["name"] for t in openai_server.requests[0]["body"]["tools"]}
    assert "calendar__create" in offered and "email__send" not in offered
    # planning leaves the choice of tools to the model (a named choice would force one; llama.cpp refuses
    # "required"), and its answer is bounded by planning's max_tokens
    assert "tool_choice" not in openai_server.requests[0]["body"] and openai_server.requests[0]["body"]["max_tokens"] == 800
    timeline = EventLog(redis, settings.workspace).timeline("cal-1")
    assert {e.data["specialist"] for e in timeline if e.kind == "plan.made"} == {"calendar"}
    [blocked] = [e for e in timeline if e.kind == "step.blocked"]
    assert blocked.data["specialist"] == "calendar" and blocked.data["capability"] == "email.send"
    assert not [e for e in timeline if e.kind == "step.done"]


def test_an_approval_card_names_the_specialist_asking(agent, smtp, redis, settings):
    outcome = agent.start(Intent(name="email", text="email ana@acme.io", slots={"to": "ana@acme.io", "subject": "Hi", "body": "Hello"}),
                          ORIGIN, "em-1")

    assert outcome.card is not None and smtp.messages == []
    assert {f.label: f.value for f in outcome.card.fields}["Specialist"] == "inbox"
    [assessed] = [e for e in EventLog(redis, settings.workspace).timeline("em-1") if e.kind == "step.assessed"]
    assert assessed.data["specialist"] == "inbox"
    approval = agent.approvals.for_step("run-em-1", 0)
    assert approval is not None and approval.specialist == "inbox"
    assert "Specialist" in {f.label for f in approval_card(approval).fields}


def refund() -> Capability:
    from pydantic import BaseModel

    class Args(BaseModel):
        amount: float = 0

    return Capability("payment.refund", "refund", Args, Args, RiskClass.FINANCIAL, True, False, None, "ledger", RetryPolicy(),
                      run=lambda a, c: a, amount_field="amount")


def test_the_money_specialist_asks_before_anything_moves_where_the_policy_alone_would_not():
    policy = load_policy().model_copy(update={
        "capabilities": {"payment.refund": CapabilityRule(autonomy="auto")}, "rules": (),
        "thresholds": load_policy().thresholds.model_copy(update={"approve": 100})})

    assert assess(refund(), "payment.refund", {"amount": 5}, policy).decision == "auto"
    assert assess(refund(), "payment.refund", {"amount": 5}, policy.with_specialist("desk")).decision == "auto"
    money = assess(refund(), "payment.refund", {"amount": 5}, policy.with_specialist("money"))
    assert money.decision == "approve" and "always" in money.why


def test_a_policy_file_that_names_no_specialist_rules_has_none(tmp_path):
    # the operator's own POLICY_FILE replaces the default one whole: its rules are the only ones
    own = tmp_path / "policy.yaml"
    own.write_text("thresholds: {approve: 100, deny: 101}\ncapabilities:\n  email.send: {autonomy: auto}\nrules: []\n")
    policy = load_policy(own)
    email = Capability("email.send", "send", BaseModel, BaseModel, RiskClass.EXTERNAL_WRITE, True, False, None, "ledger",
                       RetryPolicy(), run=lambda a, c: a, recipient_fields=("to",))
    assert assess(email, "email.send", {"to": ["new@else.example"]}, policy.with_specialist("inbox")).decision == "auto"
    default = load_policy()
    asked = assess(email, "email.send", {"to": ["new@else.example"]}, default.with_specialist("inbox"))
    assert asked.decision == "approve"


def test_deputy_capabilities_shows_each_specialist_and_what_it_may_use_here(settings, capsys):
    from bot.cli import main

    assert main(["capabilities", "--json"]) == 0
    specialists = {s["name"]: s for s in json.loads(capsys.readouterr().out)["specialists"]}
    assert list(specialists) == ["inbox", "calendar", "sales", "money", "desk"]
    inbox = {c["name"]: c["configured"] for c in specialists["inbox"]["capabilities"]}
    assert inbox["email.send"] is True and inbox["email.read_inbox"] is False  # SMTP is set up here, IMAP is not
    assert specialists["money"]["rules"] == ["always → approve"]
    assert main(["capabilities"]) == 0
    shown = capsys.readouterr().out
    assert "calendar  Your calendar: what is on it" in shown and "may: calendar.agenda*, calendar.find*" in shown
    # each effect names what undoes it, or says it cannot be undone; a read has nothing to undo
    assert re.search(r"tasks\.create +internal_write +yes +tasks\.restore ", shown)
    assert re.search(r"email\.send +external_write +yes +cannot ", shown) and re.search(r"tasks\.list +read +no +— ", shown)
