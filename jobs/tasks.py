"""RQ job entry points. Module level, JSON in, JSON out; each loads what it needs."""
from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from redis import Redis
from rq import get_current_job
from rq.job import Job

from agents.budget import Charge, OverBudget, charge_to
from kernel.messages import Card, Intent, Outcome
from agents.conversation import answered
from agents.corrections import corrected
from agents.skill_context import SkillContext
from agents.skills import DECISIONS, SKILLS
from kernel.messages import Decision, Inbound, Reply
from agents.intents.recognizers import UNRECOGNISED
from jobs.card_copies import CardCopies
from jobs.digest_jobs import remember_thread
from jobs.ingest import remember_turn
from jobs.runtime import Runtime, current_runtime
from jobs.skill_contexts import skill_context
from kernel import job_names
from memory.profiles import Profiles, valid_zone


# the intent a message below the confidence threshold gets (agents/intents/recognition.py's CLARIFY, which is
# not imported here: that module loads scikit-learn, and this one is imported by every job)
CLARIFY = "clarify"
# seconds kept free at a job's end for its reply: no model call is retried into them
DEADLINE_MARGIN_S = 5.0


def _attempt(job: Job | None) -> int:
    if job is None or job.retries_left is None:
        return 1
    return int(job.meta.get("retries", job.retries_left)) - int(job.retries_left) + 1


def handle_message(payload: dict[str, Any]) -> dict[str, Any]:
    """Carry out one recognised intent and queue the reply in the same thread."""
    rt, job = current_runtime(), get_current_job()
    inbound = Inbound.model_validate(payload["inbound"])
    intent = Intent.model_validate(payload["intent"])
    trace_id = str(payload["trace_id"])
    started = time.perf_counter()
    rt.events.record(trace_id, "job.started", actor="worker", job="handle_message", intent=intent.name, attempt=_attempt(job))
    remember_thread(rt.redis, rt.settings.workspace, inbound.channel, inbound.thread_id, inbound.reply_to)
    if inbound.timezone and valid_zone(inbound.timezone):
        # the channel's hint fills a gap; what the operator said in chat is never overwritten
        Profiles(rt.redis, rt.settings.workspace).set_timezone(inbound.user_id, inbound.timezone, origin="hint")
    ctx = skill_context(rt, trace_id, inbound.user_id, inbound.thread_id, inbound.channel, inbound.reply_to)
    # model calls made for this request are charged to it; over budget, the reply asks for more spend
    charge = Charge(run_id=trace_id, project=str(intent.slots.get("project") or "inbox"),
                    resume_func=job_names.HANDLE_MESSAGE, resume_payload=payload, deadline=_deadline(rt, job))
    with charge_to(charge):
        try:
            outcome = _carry_out(rt, ctx, intent, inbound.text)
        except OverBudget as over:
            outcome = over.outcome
    _reply(rt, trace_id, inbound.channel, inbound.thread_id, inbound.reply_to, outcome, suffix="reply")
    remember_turn(rt, inbound, trace_id)
    rt.events.record(
        trace_id, "job.finished", actor="worker", job="handle_message", ok=outcome.ok, ms=round((time.perf_counter() - started) * 1000, 2)
    )
    return {"trace_id": trace_id, "ok": outcome.ok}


def _deadline(rt: Runtime, job: Job | None) -> float:
    """When this job will be stopped (its own timeout, else JOB_TIMEOUT_S), less a margin to reply in."""
    timeout = (job.timeout if job is not None and job.timeout else None) or rt.settings.job.timeout_s
    return time.time() + float(timeout) - DEADLINE_MARGIN_S


def _carry_out(rt: Runtime, ctx: SkillContext, intent: Intent, said: str) -> Outcome:
    """The outcome of one message: an answer to the thread's open question, a correction of the action
    waiting for approval there, or a request of its own."""
    if intent.name != UNRECOGNISED:
        return SKILLS.get(intent.name, SKILLS["help"])(ctx, intent)
    text = intent.text or said
    outcome = answered(ctx, text, SKILLS) or corrected(ctx, text, SKILLS)
    if outcome is not None:
        return outcome
    # free text is classified here, not in the gateway (see agents/intents/recognizers.py)
    intent = rt.recognizer.recognize(text, ctx.trace_id, rt.events)
    rt.metrics.intent(intent.name == CLARIFY, intent.confidence, intent.source)
    return SKILLS.get(intent.name, SKILLS["help"])(ctx, intent)


def handle_decision(payload: dict[str, Any]) -> dict[str, Any]:
    """Carry out a button click the gateway accepted."""
    rt, job = current_runtime(), get_current_job()
    decision = Decision.model_validate(payload["decision"])
    trace_id = str(payload["trace_id"])
    rt.events.record(trace_id, "job.started", actor="worker", job="handle_decision", action=decision.action, attempt=_attempt(job))
    decide = DECISIONS.get(decision.action)
    if decide is None:
        outcome = Outcome(text="That button is not valid any more.", ok=False)
    else:
        outcome = decide(skill_context(rt, trace_id, decision.user_id, decision.thread_id, decision.channel, decision.reply_to),
                         decision.value)
    _reply(rt, trace_id, decision.channel, decision.thread_id, decision.reply_to, outcome, suffix="decision")
    rt.events.record(trace_id, "job.finished", actor="worker", job="handle_decision", ok=outcome.ok)
    return {"trace_id": trace_id, "ok": outcome.ok}


def _reply(rt: Runtime, trace_id: str, channel: str, thread_id: str, reply_to: dict[str, str], outcome: Outcome, suffix: str) -> None:
    # earlier cards first (a superseded approval, an answered question), redrawn in place
    for earlier in outcome.updates:
        redraw = Reply(reply_id=f"{trace_id}.{suffix}.{earlier.card_id}", channel=channel, thread_id=thread_id, text=earlier.resolution,
                       card=earlier, updates_card=earlier.card_id, trace_id=trace_id, reply_to=reply_to)
        rt.queue_reply(redraw, note=f"card update {earlier.card_id}")
        _update_copies(rt, redraw, earlier)
    reply = Reply(
        reply_id=f"{trace_id}.{suffix}",
        channel=channel,
        thread_id=thread_id,
        text=outcome.text,
        card=outcome.card,
        # a card we have shown before is updated in place rather than posted again
        updates_card=outcome.card.card_id if outcome.card and suffix == "decision" else None,
        trace_id=trace_id,
        reply_to=reply_to,
        ok=outcome.ok,
    )
    rt.queue_reply(reply)
    if reply.updates_card and outcome.card is not None:
        _update_copies(rt, reply, outcome.card)
    for card in outcome.more:
        rt.queue_reply(Reply(reply_id=f"{trace_id}.{suffix}.{card.card_id}", channel=channel, thread_id=thread_id, text=card.title,
                             card=card, trace_id=trace_id, reply_to=reply_to), note=f"card {card.card_id}")


def _update_copies(rt: Runtime, reply: Reply, card: Card) -> None:
    """The same update for every copy of the card (the digest's): no copy keeps live buttons."""
    decided = {k: v for k, v in reply.reply_to.items() if k in ("decided_by", "decided_at")}
    for copy in CardCopies(rt.redis, rt.settings.workspace).of(card.card_id):
        update = reply.model_copy(update={
            "reply_id": f"{reply.reply_id}.{copy.card_id}", "channel": copy.channel, "thread_id": copy.thread_id,
            "card": card.model_copy(update={"card_id": copy.card_id}), "updates_card": copy.card_id,
            "reply_to": {**copy.reply_to, **decided},
        })
        rt.queue_reply(update, note=f"card copy {copy.card_id}")


def report_failure(
    job: Job, connection: Redis, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """RQ failure callback: log each failed attempt; after the last one, tell the operator in the thread."""
    rt = current_runtime()
    payload = job.args[0] if job.args else {}
    trace_id = str(payload.get("trace_id", job.id))
    error = f"{exc_type.__name__}: {exc}"[:300]
    if job.retries_left:
        rt.events.record(trace_id, "job.retry", actor="worker", job=job.func_name, error=error, retries_left=job.retries_left)
        return
    rt.events.record(trace_id, "job.failed", actor="worker", job=job.func_name, error=error)
    source = payload.get("inbound") or payload.get("decision") or {}
    if not source:
        return
    attempts = int(job.meta.get("retries", 0)) + 1
    text = (
        f"Sorry, I could not finish that. I tried {attempts} time{'s' if attempts != 1 else ''}; "
        f"the last error was: {error}\nNothing was lost: see /trace {trace_id}."
    )
    reply = Reply(
        reply_id=f"{trace_id}.failed",
        channel=str(source.get("channel")),
        thread_id=str(source.get("thread_id")),
        text=text,
        trace_id=trace_id,
        reply_to=source.get("reply_to") or {},
        ok=False,
    )
    rt.queue_reply(reply)
