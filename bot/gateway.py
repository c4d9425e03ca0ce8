"""The gateway: dedupe, authorize, record, recognise, enqueue, ack. It never does the work itself."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline

from kernel.messages import Decision, Delivery, Inbound, Intent, Reply
from bot.once import OnceWriter
from kernel.outbox import Outbox
from bot.refusals import TRACE_ID as REFUSED_TRACE
from bot.refusals import Refusals
from bot.status import StatusWatch
from jobs.queues import INTERACTIVE, JobQueues
from memory.events import EventLog
from kernel.keys import Keys
from kernel.metrics import Metrics
from kernel import job_names

# by dotted name: the gateway never imports the worker's code

Status = Literal["accepted", "duplicate", "refused"]
NOT_OPERATOR = "not an operator"


@dataclass(frozen=True)
class Ack:
    status: Status
    trace_id: str
    detail: str = ""


class Recognizer(Protocol):
    def recognize(self, inbound: Inbound) -> Intent: ...


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(eq=False)
class Gateway:
    """The policy every channel shares, run on the event loop: each delivery's writes are prepared as
    one batch and sent with the async client (the gateway never blocks its loop, and a message costs
    no thread hop)."""

    redis: Redis
    aredis: AsyncRedis
    operators: dict[str, frozenset[str]]
    queues: JobQueues
    recognizer: Recognizer
    events: EventLog
    refusals: Refusals
    dedupe_ttl_s: int = 86_400
    # the working sign and the stall notice; set by the app once its channels exist
    status: StatusWatch | None = None
    # deliveries and acknowledgement times, counted in this process (no Redis round trip)
    metrics: Metrics = field(default_factory=Metrics)
    outbox: Outbox = field(init=False)
    writer: OnceWriter = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.redis)
        self.writer = OnceWriter(self.redis, self.aredis)

    def authorized(self, channel: str, user_id: str) -> bool:
        return user_id in self.operators.get(channel, frozenset())

    async def accept(self, inbound: Inbound, also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        """Take one inbound message. Durable in Redis (event + job) before this returns: one awaited
        round trip.

        `also` lets a channel add its own writes (the console's copy of the message) to the same
        transaction: they happen exactly when the message is taken, and cost no extra round trip."""
        ack = await self._take(inbound, "message", self._message(inbound, also), also)
        if ack.status == "accepted" and self.status is not None:
            self.status.watch(inbound, ack.trace_id)
        return ack

    async def decide(self, decision: Decision) -> Ack:
        """Take one button click: dedupe, check the clicker may decide, enqueue the decision."""
        return await self._take(decision, "decision", self._decision(decision))

    def _message(self, inbound: Inbound, also: Callable[[Pipeline, str], None] | None) -> Callable[[Pipeline, str], str]:
        def write(pipe: Pipeline, trace_id: str) -> str:
            if also is not None:
                also(pipe, trace_id)
            intent = self.recognizer.recognize(inbound)
            self.events.record(
                trace_id, "inbound.received", actor=inbound.user_id, pipe=pipe,
                channel=inbound.channel, event_id=inbound.event_id, thread_id=inbound.thread_id, text=inbound.text[:500],
            )
            self.events.record(
                trace_id, "intent.recognized", actor="gateway", pipe=pipe, expire=False,
                intent=intent.name, source=intent.source, confidence=round(intent.confidence, 3), slots=intent.slots,
            )
            payload = {"trace_id": trace_id, "inbound": inbound.model_dump(mode="json"), "intent": intent.model_dump(mode="json")}
            self._enqueue(pipe, trace_id, job_names.HANDLE_MESSAGE, payload)
            return intent.name

        return write

    def _decision(self, decision: Decision) -> Callable[[Pipeline, str], str]:
        def write(pipe: Pipeline, trace_id: str) -> str:
            self.events.record(
                trace_id, "decision.received", actor=decision.user_id, pipe=pipe,
                channel=decision.channel, event_id=decision.event_id, action=decision.action, value=decision.value,
            )
            self._enqueue(pipe, trace_id, job_names.HANDLE_DECISION, {"trace_id": trace_id, "decision": decision.model_dump(mode="json")})
            return decision.action

        return write

    async def _take(self, delivery: Delivery, what: str, write: Callable[[Pipeline, str], str],
                    also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        started = time.perf_counter()
        ack = await self._settle(delivery, what, write, also)
        self.metrics.delivery(delivery.channel, ack.status, time.perf_counter() - started)
        return ack

    async def _settle(self, delivery: Delivery, what: str, write: Callable[[Pipeline, str], str],
                      also: Callable[[Pipeline, str], None] | None = None) -> Ack:
        """Refuse a non-operator (counted by Refusals, never marked: see `_answer_refusal`), else write
        the delivery (events + job) at most once per event id, in one atomic step with the dedupe mark
        (see `_key`)."""
        if not self.authorized(delivery.channel, delivery.user_id):
            verdict = await self.refusals.refuse(delivery.channel, NOT_OPERATOR, _source(delivery))
            if verdict.noted:
                await asyncio.to_thread(self._answer_refusal, delivery, what, also)
            return Ack("refused", REFUSED_TRACE, NOT_OPERATOR)
        trace_id, batch, detail = self._prepare(write)
        first = await self.writer.commit(_key(delivery), f"done:{trace_id}", self.dedupe_ttl_s, batch)
        if first is not None:
            return await asyncio.to_thread(self._duplicate, delivery.channel, delivery.event_id, _parse_mark(first))
        return Ack("accepted", trace_id, detail[0] if detail else "")

    def _prepare(self, write: Callable[[Pipeline, str], str]) -> tuple[str, Pipeline, list[str]]:
        """A new trace id and the batch of writes for it (nothing sent yet)."""
        trace_id = new_trace_id()
        detail: list[str] = []
        return trace_id, self.writer.prepare(lambda pipe: detail.append(write(pipe, trace_id))), detail

    def _enqueue(self, pipe: Pipeline, trace_id: str, job: str, payload: dict[str, object]) -> None:
        self.queues.enqueue(job, payload, job_id=trace_id, queue=INTERACTIVE, pipeline=pipe,
                            on_failure=job_names.REPORT_FAILURE)
        # always after the delivery's first event, which set the trace's expiry in this same batch
        self.events.record(trace_id, "job.enqueued", actor="gateway", pipe=pipe, expire=False, job=job.rpartition(".")[2], queue=INTERACTIVE)

    def _duplicate(self, channel: str, event_id: str, trace_id: str) -> Ack:
        self.events.record(trace_id, "inbound.duplicate", actor="gateway", channel=channel, event_id=event_id)
        return Ack("duplicate", trace_id)

    def _answer_refusal(self, delivery: Delivery, what: str, also: Callable[[Pipeline, str], None] | None) -> None:
        """The polite refusal, in the stranger's own thread. Refusals says when (once a minute per
        stranger at most), so it needs no dedupe mark: a repeated refusal is harmless."""
        text = (
            "Sorry, I only take instructions from this workspace's operator."
            if what == "message"
            else "Sorry, only the operator can decide this. Nothing was changed."
        )
        reply = Reply(reply_id=f"{new_trace_id()}.refused", channel=delivery.channel, thread_id=delivery.thread_id, text=text,
                      trace_id=REFUSED_TRACE, reply_to=delivery.reply_to, ok=False)
        with self.redis.pipeline(transaction=True) as pipe:
            if also is not None:
                also(pipe, REFUSED_TRACE)
            self.outbox.put(reply, pipe=pipe)
            pipe.execute()


def _key(delivery: Delivery) -> str:
    """The dedupe key of a delivery. It holds `done:<trace>` from the moment the first copy's events
    and job exist: both land in one atomic step, so a gateway that dies mid-way leaves nothing
    half-claimed and the platform's retry is simply processed. A refusal writes no mark."""
    return Keys.global_("seen", delivery.channel, delivery.event_id)


def _source(delivery: Delivery) -> str:
    return f"{delivery.channel}:{delivery.user_id}"


def _parse_mark(text: str) -> str:
    """The trace id in a dedupe mark: `done:<trace>`, `refused:<trace>`, or a bare trace id."""
    state, sep, rest = text.partition(":")
    return rest if sep and state in ("done", "refused") else text
