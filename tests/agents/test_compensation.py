"""Undo by compensation: a failed plan rolls back its earlier steps (newest first, once), a done run offers Undo,
an undo is a run of its own that changes the world once however often it is asked, and policy decides it."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from redis import Redis

from agents.agent import Agent
from agents.approvals import ApprovalStore
from agents.change_undo import offer_undo
from agents.executor import Executor
from agents.plan import Origin, Plan, Step
from agents.planner import Planner
from agents.policy import CapabilityRule, Policy, Rule, Thresholds, UndoRule
from agents.run_store import RunStore
from agents.skill_context import SkillContext
from agents.skills import DECISIONS, SKILLS
from agents.undo_cards import UNDO
from integrations.breaker import Breakers
from integrations.capability import Capability, EffectContext, PermanentError, RetryPolicy, RiskClass
from integrations.ledger import EffectLedger
from integrations.registry import build_capabilities
from kernel.messages import Intent
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings, SmtpSettings, WebhookSettings, WebhookTarget
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore
from memory.undo_log import UndoLog

WS = "ws"
ORIGIN = Origin(channel="console", thread_id="t1", actor="operator")


class Key(BaseModel):
    key: str


class Done(BaseModel):
    key: str


class World:
    """Capabilities whose effects are keys in Redis, and every call they got, in order."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.calls: list[str] = []

    def _cap(self, name: str, run: Any, reversible: bool, compensation: str | None = None, undo: Any = None,
             risk: RiskClass = RiskClass.INTERNAL_WRITE, summary: Any = None) -> Capability:
        return Capability(name, name, Key, Done, risk, side_effect=True, reversible=reversible, compensation=compensation,
                          idempotency="ledger", retry=RetryPolicy(attempts=1), run=run, undo=undo,
                          summary=summary or (lambda args, out: f"{name} {args['key']}."))

    def capabilities(self) -> dict[str, Capability]:
        def put(args: BaseModel, ctx: EffectContext) -> Done:
            self.calls.append(f"put {args.key}")  # type: ignore[attr-defined]
            self.redis.sadd("world", args.key)  # type: ignore[attr-defined]
            return Done(key=args.key)  # type: ignore[attr-defined]

        def take(args: BaseModel, ctx: EffectContext) -> Done:
            self.calls.append(f"take {args.key}")  # type: ignore[attr-defined]
            self.redis.srem("world", args.key)  # type: ignore[attr-defined]
            return Done(key=args.key)  # type: ignore[attr-defined]

        def fail(args: BaseModel, ctx: EffectContext) -> Done:
            self.calls.append("fail")
            raise PermanentError("422 the target refused it")

        return {
            "box.put": self._cap("box.put", put, True, "box.take", lambda args, out: {"key": out["key"]},
                                 summary=lambda args, out: f"Put {out['key']} in the box."),
            "box.take": self._cap("box.take", take, False, summary=lambda args, out: f"Took {out['key']} out of the box."),
            "mail.send": self._cap("mail.send", put, False, risk=RiskClass.EXTERNAL_WRITE,
                                   summary=lambda args, out: f"Sent {args['key']}."),
            "hook.post": self._cap("hook.post", fail, False, risk=RiskClass.EXTERNAL_WRITE),
        }

    def keys(self) -> set[str]:
        return {k.decode() for k in self.redis.smembers("world")}


def everything_auto(**rules: Any) -> Policy:
    names = ("box.put", "box.take", "mail.send", "hook.post")
    return Policy(capabilities={n: CapabilityRule(autonomy="auto") for n in names}, **{"thresholds": Thresholds(approve=100, deny=101), **rules})


def executor(redis: Redis, caps: dict[str, Capability], policy: Policy) -> Executor:
    return Executor(caps, policy, RunStore(redis, WS), ApprovalStore(redis, WS), EffectLedger(redis, WS), Breakers(redis, WS),
                    EventLog(redis, WS), deciders=("operator",), sleep=lambda s: None)


def plan(*steps: tuple[str, str], run_id: str = "run-tr1") -> Plan:
    return Plan(run_id=run_id, trace_id="tr1", workspace=WS, goal="test", intent="do", source="llm", origin=ORIGIN,
                steps=tuple(Step(index=i, capability=c, args={"key": k}) for i, (c, k) in enumerate(steps)))


def kinds(redis: Redis, trace: str = "tr1") -> list[str]:
    return [e.kind for e in EventLog(redis, WS).timeline(trace)]


def test_a_step_that_fails_for_good_rolls_back_the_earlier_ones_newest_first_once(redis: Redis) -> None:
    world = World(redis)
    ex = executor(redis, world.capabilities(), everything_auto())
    run = plan(("box.put", "a"), ("box.put", "b"), ("mail.send", "invoice"), ("hook.post", "x"))
    RunStore(redis, WS).save(run)
    report = ex.run(run.run_id, plan=run, results={})
    assert report.status == "failed"
    assert world.calls == ["put a", "put b", "put invoice", "fail", "take b", "take a"]
    assert world.keys() == {"invoice"}
    assert "So I undid what I had done before it:\n• Took b out of the box.\n• Took a out of the box." in report.message
    assert "I could not undo:\n• Sent invoice. — cannot be undone" in report.message
    assert kinds(redis).count("step.compensated") == 2 and kinds(redis).count("step.not_compensated") == 1
    # the job again, and the rollback again (a worker that died mid-way): the world changes no more
    assert ex.run(run.run_id).status == "failed"
    ex.saga.rollback(run, ex._done(run, RunStore(redis, WS).results(run.run_id)))
    assert world.calls == ["put a", "put b", "put invoice", "fail", "take b", "take a"]


def test_a_rollback_the_policy_does_not_allow_is_reported_not_done(redis: Redis) -> None:
    world = World(redis)
    ex = executor(redis, world.capabilities(), everything_auto(undo=UndoRule(autonomy="approve")))
    run = plan(("box.put", "a"), ("hook.post", "x"))
    RunStore(redis, WS).save(run)
    report = ex.run(run.run_id, plan=run, results={})
    assert world.calls == ["put a", "fail"] and world.keys() == {"a"}
    assert "Put a in the box. — the policy asks for your approval to undo it" in report.message


def agent(redis: Redis, policy: Policy, world: World, log: UndoLog | None = None) -> Agent:
    caps = world.capabilities()
    ex = executor(redis, caps, policy)
    return Agent(planner=Planner({}, caps), executor=ex, runs=ex.runs, approvals=ex.approvals, events=ex.events,
                 enqueue=lambda *a, **k: None, workspace=WS, undo=log or UndoLog(redis, WS), undo_window_s=900)


def done_run(a: Agent, run: Plan) -> Any:
    a.runs.save(run)
    return a.render(a.executor.run(run.run_id, plan=run, results={}))


def test_a_done_run_offers_undo_and_an_undo_changes_the_world_once(redis: Redis) -> None:
    world = World(redis)
    outcome = done_run(agent(redis, everything_auto(), world), plan(("box.put", "a"), ("mail.send", "note")))
    # calendar.cancel-like: the compensation is irreversible and asks for approval itself; the Undo click decides it
    strict = everything_auto(rules=(Rule(when="irreversible", then="approve"),), thresholds=Thresholds()).model_copy(
        update={"capabilities": {**everything_auto().capabilities, "box.take": CapabilityRule(autonomy="approve")}})
    a = agent(redis, strict, world)
    assert outcome.card is not None and [b.action for b in outcome.card.buttons] == [UNDO]
    assert outcome.card.preview == "Put a in the box."  # the email cannot be undone, so the card does not offer it
    item = a.undo.get(outcome.card.buttons[0].value)  # type: ignore[union-attr]
    assert item is not None and item.thread_id == "t1"
    first = a.undo_run(item, ORIGIN, "tr-undo-1")
    again = a.undo_run(item, ORIGIN, "tr-undo-2")
    assert first.status == again.status == "done" and first.run_id == again.run_id == "undo-run-tr1"
    assert world.calls == ["put a", "put note", "take a"] and world.keys() == {"note"}
    assert "Took a out of the box." in first.message
    assert kinds(redis, "tr-undo-1")[:1] == ["undo.requested"] and "step.done" in kinds(redis, "tr-undo-1")


@pytest.mark.parametrize("policy, status", [
    (everything_auto(undo=UndoRule(autonomy="approve")), "awaiting_approval"),
    (everything_auto().model_copy(update={"capabilities": {"box.put": CapabilityRule(autonomy="auto")}}), "denied"),
])
def test_the_policy_decides_an_undo(redis: Redis, policy: Policy, status: str) -> None:
    world = World(redis)
    a = agent(redis, policy, world)
    done_run(a, plan(("box.put", "a"),))
    item = a.undo.last("t1", 900)
    assert item is not None and a.undo_run(item, ORIGIN, "tr-undo").status == status
    assert world.calls == ["put a"]


def skill_context(redis: Redis, a: Agent, trace: str, window_s: float = 900) -> SkillContext:
    return SkillContext(workspace=WS, trace_id=trace, actor="operator", thread_id="t1", tasks=TaskStore(redis, WS),
                        facts=FactStore(redis, WS), notes=NoteStore(redis, WS), events=EventLog(redis, WS), help_text="",
                        channel="console", agent=a, undo=a.undo, undo_window_s=window_s)


def test_undo_clicked_twice_undoes_once_and_says_what(redis: Redis) -> None:
    world = World(redis)
    a = agent(redis, everything_auto(), world)
    card = done_run(a, plan(("box.put", "a"),)).card
    first = DECISIONS[UNDO](skill_context(redis, a, "tr-click-1"), card.buttons[0].value)
    second = DECISIONS[UNDO](skill_context(redis, a, "tr-click-2"), card.buttons[0].value)
    assert first.ok and first.text == "Undone. Took a out of the box."
    assert first.updates[0].card_id == card.card_id and not first.updates[0].buttons and "Undone by operator" in first.updates[0].resolution
    assert not second.ok and "already undone" in second.text and world.calls == ["put a", "take a"]


def test_too_late_to_undo_says_why_and_changes_nothing(redis: Redis) -> None:
    world, now = World(redis), [1_000.0]
    a = agent(redis, everything_auto(), world, UndoLog(redis, WS, clock=lambda: now[0]))
    a.executor.clock = lambda: now[0]
    card = done_run(a, plan(("box.put", "a"),)).card
    now[0] += 901
    late = DECISIONS[UNDO](skill_context(redis, a, "tr-late"), card.buttons[0].value)
    assert not late.ok and "Too late to undo" in late.text and "within 15 min" in late.text and "UNDO_WINDOW" in late.text
    assert not late.updates[0].buttons and world.calls == ["put a"]
    nothing = SKILLS["undo"](skill_context(redis, a, "tr-that"), Intent(name="undo", text="undo that"))
    assert "nothing in this thread I can undo" in nothing.text and "within 15 min" in nothing.text
    assert "box.put" in nothing.text and "past its 15 min: Put a in the box." in nothing.text


def test_undo_that_undoes_the_newest_action_of_the_thread(redis: Redis) -> None:
    world = World(redis)
    a = agent(redis, everything_auto(), world)
    done_run(a, plan(("box.put", "a"), run_id="run-1"))
    done_run(a, plan(("box.put", "b"), run_id="run-2"))
    said = SKILLS["undo"](skill_context(redis, a, "tr-that"), Intent(name="undo", text="undo that"))
    assert said.text == "Undone. Took b out of the box." and world.keys() == {"a"}


def test_undoing_a_direct_change_redraws_no_card_because_none_was_shown(redis: Redis) -> None:
    world = World(redis)
    a = agent(redis, everything_auto(), world)
    ctx = skill_context(redis, a, "tr-direct")
    # what a skill that changed state itself (no run, no done card) leaves in the thread
    offer_undo(ctx, "Put a in the box.", "box.take", {"key": "a"})
    said = SKILLS["undo"](skill_context(redis, a, "tr-that"), Intent(name="undo", text="undo that"))
    assert said.text == "Undone. Took a out of the box." and said.updates == () and world.calls == ["take a"]


def test_an_irreversible_action_says_so_on_its_approval_card(redis: Redis) -> None:
    world = World(redis)
    policy = Policy(capabilities={"mail.send": CapabilityRule(autonomy="approve"), "box.put": CapabilityRule(autonomy="approve")})
    a = agent(redis, policy, world)
    mail = done_run(a, plan(("mail.send", "x"), run_id="run-mail")).card
    box = done_run(a, plan(("box.put", "x"), run_id="run-box")).card
    assert {f.label: f.value for f in mail.fields}["Undo"] == "This cannot be undone"
    assert {f.label: f.value for f in box.fields}["Undo"] == "Can be undone for 15 min after it is done"


def test_every_reversible_effect_that_names_a_compensation_can_build_it(redis: Redis) -> None:
    caps = build_capabilities(Settings(
        workspace=WS, smtp=SmtpSettings(host="127.0.0.1", sender="me@studio.example"), caldav=CalDavSettings(url="http://127.0.0.1:9/cal"),
        webhooks=WebhookSettings(outbound={"crm": WebhookTarget(url="http://127.0.0.1:9/hook")})), redis)
    named = [c for c in caps.values() if c.side_effect and c.reversible and c.compensation]
    assert {"calendar.create", "calendar.move"} <= {c.name for c in named}
    for capability in named:
        assert capability.undo is not None, f"{capability.name} names {capability.compensation} but cannot build its arguments"
        assert capability.compensation in caps, f"{capability.name}'s compensation {capability.compensation} does not exist"
    assert all(c.compensation for c in caps.values() if c.undo is not None)


def test_the_calendar_undoes_a_create_by_cancelling_and_a_move_by_moving_back(redis: Redis) -> None:
    caps = build_capabilities(Settings(workspace=WS, caldav=CalDavSettings(url="http://127.0.0.1:9/cal")), None)
    event = {"uid": "u1", "summary": "Intro", "start": "2030-01-02T10:00:00+00:00", "end": "2030-01-02T10:30:00+00:00"}
    assert caps["calendar.create"].undo({}, {"event": event}) == {"uid": "u1"}  # type: ignore[misc]
    moved = {"event": event, "previous_start": "2030-01-01T09:00:00+00:00", "previous_end": "2030-01-01T09:30:00+00:00"}
    back = caps["calendar.move"].undo({"uid": "u1"}, moved)  # type: ignore[misc]
    assert back == {"uid": "u1", "start": "2030-01-01T09:00:00+00:00", "end": "2030-01-01T09:30:00+00:00"}
    caps["calendar.move"].parse(back)
