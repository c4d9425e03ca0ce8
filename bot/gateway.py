"""The gateway: dedupe, authorize, record, recognise, enqueue, ack. It never does the work itself."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

from redis import Redis

from agents.messages import Intent
from bot.commands import UsageError, parse_command
from bot.messages import Decision, Inbound, Reply
from bot.outbox import Outbox
from jobs.queues import INTERACTIVE, JobQueues
from memory.events import EventLog
from memory.keys import Keys

log = logging.getLogger("deputy.gateway")

# by dotted name: the gateway never imports the worker's code
FAILURE_CALLBACK = "jobs.tasks.report_failure"

Status = Literal["accepted", "duplicate", "refused"]


@dataclass(frozen=True)
class Ack:
    status: Status
    trace_id: str
    detail: str = ""


class Recognizer(Protocol):
    def recognize(self, inbound: Inbound) -> Intent: ...


class CommandRecognizer:
    """Exact commands; anything else is answered with what Deputy can do."""

    def recognize(self, inbound: Inbound) -> Intent:
        try:
            intent = parse_command(inbound.text)
        except UsageError as err:
            return Intent(name="usage_error", text=inbound.text, slots={"message": str(err)}, source="command")
        return intent or Intent(name="help", text=inbound.text, slots={"reason": "unknown"}, confidence=0.0, source="rule")


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


class Gateway:
    """Sync core shared by every channel; the async server runs it on a thread pool."""

    def __init__(
        self,
        redis: Redis,
        workspace: str,
        operators: dict[str, frozenset[str]],
        queues: JobQueues,
        recognizer: Recognizer | None = None,
        dedupe_ttl_s: int = 86_400,
    ) -> None:
        self.redis = redis
        self.workspace = workspace
        self.operators = operators
        self.queues = queues
        self.recognizer = recognizer or CommandRecognizer()
        self.dedupe_ttl_s = dedupe_ttl_s
        self.events = EventLog(redis, workspace)
        self.outbox = Outbox(redis)

    def authorized(self, channel: str, user_id: str) -> bool:
        return user_id in self.operators.get(channel, frozenset())

    def accept(self, inbound: Inbound) -> Ack:
        """Take one inbound message. Durable in Redis (event + job) before this returns."""
        trace_id, fresh = self._claim(inbound.channel, inbound.event_id)
        if not fresh:
            return self._duplicate(inbound.channel, inbound.event_id, trace_id)
        if not self.authorized(inbound.channel, inbound.user_id):
            return self._refuse(inbound.channel, inbound.user_id, inbound.thread_id, inbound.reply_to, trace_id, "message")
        intent = self.recognizer.recognize(inbound)
        pipe = self._transaction()
        self.events.record(
            trace_id, "inbound.received", actor=inbound.user_id, pipe=pipe,
            channel=inbound.channel, event_id=inbound.event_id, thread_id=inbound.thread_id, text=inbound.text[:500],
        )
        self.events.record(
            trace_id, "intent.recognized", actor="gateway", pipe=pipe,
            intent=intent.name, source=intent.source, confidence=round(intent.confidence, 3), slots=intent.slots,
        )
        payload = {"trace_id": trace_id, "inbound": inbound.model_dump(mode="json"), "intent": intent.model_dump(mode="json")}
        self.queues.enqueue("jobs.tasks.handle_message", payload, job_id=trace_id, queue=INTERACTIVE, pipeline=pipe,
                            on_failure=FAILURE_CALLBACK)
        self.events.record(trace_id, "job.enqueued", actor="gateway", pipe=pipe, job="handle_message", queue=INTERACTIVE)
        pipe.execute()
        return Ack("accepted", trace_id, intent.name)

    def decide(self, decision: Decision) -> Ack:
        """Take one button click: dedupe, check the clicker may decide, enqueue the decision."""
        trace_id, fresh = self._claim(decision.channel, decision.event_id)
        if not fresh:
            return self._duplicate(decision.channel, decision.event_id, trace_id)
        if not self.authorized(decision.channel, decision.user_id):
            return self._refuse(decision.channel, decision.user_id, decision.thread_id, decision.reply_to, trace_id, "decision")
        pipe = self._transaction()
        self.events.record(
            trace_id, "decision.received", actor=decision.user_id, pipe=pipe,
            channel=decision.channel, event_id=decision.event_id, action=decision.action, value=decision.value,
        )
        payload = {"trace_id": trace_id, "decision": decision.model_dump(mode="json")}
        self.queues.enqueue("jobs.tasks.handle_decision", payload, job_id=trace_id, queue=INTERACTIVE, pipeline=pipe,
                            on_failure=FAILURE_CALLBACK)
        self.events.record(trace_id, "job.enqueued", actor="gateway", pipe=pipe, job="handle_decision", queue=INTERACTIVE)
        pipe.execute()
        return Ack("accepted", trace_id, decision.action)

    def _transaction(self):  # type: ignore[no-untyped-def]
        # rq's enqueue joins a caller's pipeline only if MULTI was already explicit
        pipe = self.redis.pipeline(transaction=True)
        pipe.multi()
        return pipe

    def _claim(self, channel: str, event_id: str) -> tuple[str, bool]:
        """(trace id, first time seen). A delivery whose job never got queued (we crashed) counts as new."""
        key = Keys.global_("seen", channel, event_id)
        trace_id = new_trace_id()
        if self.redis.set(key, trace_id, nx=True, ex=self.dedupe_ttl_s):
            return trace_id, True
        existing = self.redis.get(key)
        existing_id = existing.decode() if isinstance(existing, bytes) else (existing or trace_id)
        if self.queues.exists(existing_id) or self._refused(existing_id):
            return existing_id, False
        log.warning("event %s:%s was claimed but never queued; taking it again as %s", channel, event_id, existing_id)
        return existing_id, True

    def _refused(self, trace_id: str) -> bool:
        return bool(self.redis.exists(Keys.global_("refused", trace_id)))

    def _duplicate(self, channel: str, event_id: str, trace_id: str) -> Ack:
        self.events.record(trace_id, "inbound.duplicate", actor="gateway", channel=channel, event_id=event_id)
        return Ack("duplicate", trace_id)

    def _refuse(self, channel: str, user_id: str, thread_id: str, reply_to: dict[str, str], trace_id: str, what: str) -> Ack:
        log.info("refused %s from %s:%s (not an operator)", what, channel, user_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(Keys.global_("refused", trace_id), "1", ex=self.dedupe_ttl_s)
        self.events.record(trace_id, f"{what}.refused", actor=user_id, pipe=pipe, channel=channel, reason="not an operator")
        text = (
            "Sorry, I only take instructions from this workspace's operator."
            if what == "message"
            else "Sorry, only the operator can decide this. Nothing was changed."
        )
        self.outbox.put(Reply(reply_id=f"{trace_id}.refused", channel=channel, thread_id=thread_id, text=text,
                              trace_id=trace_id, reply_to=reply_to, ok=False), pipe=pipe)
        pipe.execute()
        return Ack("refused", trace_id, "not an operator")

