"""The gateway: dedupe, authorize, record, recognise, enqueue, ack. It never does the work itself."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

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

# how long a repeat waits for the first copy of a delivery before taking its claim over
CLAIM_GRACE_S = 2.0

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

    def accept(self, inbound: Inbound, also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        """Take one inbound message. Durable in Redis (event + job) before this returns.

        `also` lets a channel add its own writes (the console's copy of the message) to the same
        transaction: they happen exactly when the message is taken, and cost no extra round trip."""

        def write(pipe: Pipeline, trace_id: str) -> str:
            if also is not None:
                also(pipe, trace_id)
            intent = self.recognizer.recognize(inbound)
            self.events.record(
                trace_id, "inbound.received", actor=inbound.user_id, pipe=pipe,
                channel=inbound.channel, event_id=inbound.event_id, thread_id=inbound.thread_id, text=inbound.text[:500],
            )
            self.events.record(
                trace_id, "intent.recognized", actor="gateway", pipe=pipe,
                intent=intent.name, source=intent.source, confidence=round(intent.confidence, 3), slots=intent.slots,
            )
            payload = {"trace_id": trace_id, "inbound": inbound.model_dump(mode="json"), "intent": intent.model_dump(mode="json")}
            self._enqueue(pipe, trace_id, "handle_message", payload)
            return intent.name

        return self._take(inbound, "message", write, also)

    def decide(self, decision: Decision) -> Ack:
        """Take one button click: dedupe, check the clicker may decide, enqueue the decision."""

        def write(pipe: Pipeline, trace_id: str) -> str:
            self.events.record(
                trace_id, "decision.received", actor=decision.user_id, pipe=pipe,
                channel=decision.channel, event_id=decision.event_id, action=decision.action, value=decision.value,
            )
            self._enqueue(pipe, trace_id, "handle_decision", {"trace_id": trace_id, "decision": decision.model_dump(mode="json")})
            return decision.action

        return self._take(decision, "decision", write)

    def _take(self, delivery: Inbound | Decision, what: str, write: Callable[[Pipeline, str], str],
              also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        """Claim the delivery, refuse a non-operator, else write it (events + job) and close the claim."""
        claim = self._claim(delivery.channel, delivery.event_id)
        if isinstance(claim, str):
            return self._duplicate(delivery.channel, delivery.event_id, claim)
        if not self.authorized(delivery.channel, delivery.user_id):
            return self._refuse(claim, delivery.channel, delivery.user_id, delivery.thread_id, delivery.reply_to, what, also)
        detail: list[str] = []
        if not self._commit(claim, "done", lambda pipe: detail.append(write(pipe, claim.trace_id))):
            return self._duplicate(delivery.channel, delivery.event_id, claim.trace_id)
        return Ack("accepted", claim.trace_id, detail[0] if detail else "")

    def _enqueue(self, pipe: Pipeline, trace_id: str, job: str, payload: dict[str, object]) -> None:
        self.queues.enqueue(f"jobs.tasks.{job}", payload, job_id=trace_id, queue=INTERACTIVE, pipeline=pipe,
                            on_failure=FAILURE_CALLBACK)
        self.events.record(trace_id, "job.enqueued", actor="gateway", pipe=pipe, job=job, queue=INTERACTIVE)

    def _claim(self, channel: str, event_id: str) -> "Claim | str":
        """A Claim to process this delivery, or the trace id of the delivery it repeats.

        The claim key holds `pending:<trace>:<since>` until the delivery's transaction marks it
        `done:<trace>` (or `refused:<trace>`). A repeat that finds it pending waits for the first
        copy; a claim still pending after CLAIM_GRACE_S belongs to a gateway that died before its
        transaction, and the repeat takes it over. Either way exactly one transaction commits (WATCH)."""
        key = Keys.global_("seen", channel, event_id)
        deadline = time.monotonic() + CLAIM_GRACE_S + 1.0
        while True:
            trace_id = new_trace_id()
            value = f"pending:{trace_id}:{time.time():.3f}"
            if self.redis.set(key, value, nx=True, ex=self.dedupe_ttl_s):
                return Claim(key, trace_id, value.encode())
            raw = self.redis.get(key)
            if raw is None:
                continue  # it expired between the two calls: claim it afresh
            state, trace_id, since = _parse_claim(raw)
            if state != "pending":
                return trace_id
            if time.time() - since >= CLAIM_GRACE_S or time.monotonic() >= deadline:
                log.warning("event %s:%s was claimed but never queued; taking it over as %s", channel, event_id, trace_id)
                return Claim(key, trace_id, raw)
            time.sleep(0.01)

    def _commit(self, claim: "Claim", state: str, write: Callable[[Pipeline], None]) -> bool:
        """Write the delivery's events and job and close its claim, in one transaction; False when
        another copy of the delivery committed first."""
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(claim.key)
                if pipe.get(claim.key) != claim.token:
                    return False
                # rq's enqueue joins a caller's pipeline only if MULTI was already explicit
                pipe.multi()
                write(pipe)
                pipe.set(claim.key, f"{state}:{claim.trace_id}", ex=self.dedupe_ttl_s)
                pipe.execute()
                return True
            except WatchError:
                return False

    def _duplicate(self, channel: str, event_id: str, trace_id: str) -> Ack:
        self.events.record(trace_id, "inbound.duplicate", actor="gateway", channel=channel, event_id=event_id)
        return Ack("duplicate", trace_id)

    def _refuse(self, claim: "Claim", channel: str, user_id: str, thread_id: str, reply_to: dict[str, str], what: str,
                also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        trace_id = claim.trace_id
        log.info("refused %s from %s:%s (not an operator)", what, channel, user_id)
        text = (
            "Sorry, I only take instructions from this workspace's operator."
            if what == "message"
            else "Sorry, only the operator can decide this. Nothing was changed."
        )

        def write(pipe: Pipeline) -> None:
            if also is not None:
                also(pipe, trace_id)
            self.events.record(trace_id, f"{what}.refused", actor=user_id, pipe=pipe, channel=channel, reason="not an operator")
            self.outbox.put(Reply(reply_id=f"{trace_id}.refused", channel=channel, thread_id=thread_id, text=text,
                                  trace_id=trace_id, reply_to=reply_to, ok=False), pipe=pipe)

        if not self._commit(claim, "refused", write):
            return self._duplicate(channel, "", trace_id)
        return Ack("refused", trace_id, "not an operator")


@dataclass(frozen=True)
class Claim:
    key: str
    trace_id: str
    # the exact value this claim holds: committing requires it unchanged
    token: bytes


def _parse_claim(raw: bytes | str) -> tuple[str, str, float]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    state, _, rest = text.partition(":")
    if state == "pending":
        trace_id, _, since = rest.partition(":")
        return state, trace_id, float(since or 0)
    if state in ("done", "refused"):
        return state, rest, 0.0
    return "done", text, 0.0  # a bare trace id: written before claims had states
