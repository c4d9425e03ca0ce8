"""What a job needs: the worker's composition root, opened once per worker from settings and closed when it stops.

Job functions receive only JSON, so the worker makes its runtime current while it works (`use_runtime`)
and job functions reach it through `current_runtime()`."""
from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from redis import Redis

from agents.agent import Agent
from agents.budget import Budgets, Caps
from agents.budgeted_llm import BudgetedLlm
from agents.costs import CostLedger, PriceTable, local_endpoint
from agents.intents.recognizers import WorkerRecognizer
from agents.llm import Llm, OpenAiLlm
from agents.recording_llm import RecordingLlm
from agents.retrying_llm import RetryingLlm
from agents.recall import Recall
from agents.reminders import ReminderBook
from kernel.context import bound
from kernel.messages import Reply
from kernel.metrics import Metrics
from kernel.outbox import Outbox
from kernel.settings import Settings
from kernel.settings_models import TASK_KINDS
from jobs.agent_wiring import approvers_for, build_agent
from jobs.memory_wiring import Memory, WeaviateWait, open_memory
from jobs.queues import JobQueues
from jobs.scheduling import RqScheduler
from memory.events import EventLog
from memory.facts import FactStore
from memory.ingest import Ingestor
from memory.notes import NoteStore
from memory.redaction import secret_values
from memory.retrieval import Retriever
from memory.tasks import TaskStore


if TYPE_CHECKING:
    from agents.intents.model import IntentWatcher  # sklearn and numpy: loaded by the worker only when it recognises


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    redis: Redis
    events: EventLog
    tasks: TaskStore
    facts: FactStore
    notes: NoteStore
    outbox: Outbox
    queues: JobQueues
    # spend caps and the cost ledger; reminders
    budgets: Budgets
    reminders: ReminderBook
    # plan → execute → inspect, approvals and capabilities (jobs/agent_wiring.py)
    agent: Agent
    # semantic memory: the store searched and written, and every backend forget reaches
    memory: Memory
    # free text → intent (classifier, slots, function calling); trains on first use
    recognizer: WorkerRecognizer
    # who may approve more spend or set a budget: the same people who decide approvals
    approvers: tuple[str, ...]
    # None when no OPENAI_BASE_URL is configured: everything then runs offline
    llm: Llm | None
    # what jobs count (free-text recognition); the worker's own instruments
    metrics: Metrics = field(default_factory=Metrics)

    def queue_reply(self, reply: Reply, note: str | None = None) -> bool:
        """Put a reply in the outbox and trace it (`note` instead of its text); False when that reply
        id was queued before, so a retried job answers once."""
        if not self.outbox.put(reply):
            return False
        self.events.record(reply.trace_id, "reply.queued", actor="worker", reply_id=reply.reply_id, text=(note or reply.text)[:200])
        return True

    def recall(self) -> Recall:
        return Recall(Retriever(self.memory.store), Ingestor(self.memory.store, self.settings.workspace), self.llm)


@contextmanager
def open_runtime(settings: Settings, redis: Redis, weaviate_wait: WeaviateWait | None = None,
                 metrics: Metrics | None = None, intents: IntentWatcher | None = None) -> Iterator[Runtime]:
    """Everything jobs use, built from `settings` over `redis`; what was opened (memory stores, the
    model client) is closed on exit. A Weaviate that does not answer is waited for with `weaviate_wait`.
    `intents`: the worker pool's intent models and classifier, loaded before it forked this worker."""
    ws = settings.workspace
    events = worker_events(settings, redis)
    queues = job_queues(settings, redis)
    scheduler = RqScheduler(queues, events)
    budgets = make_budgets(settings, redis, scheduler)
    with ExitStack() as opened:
        client = model_client(settings)
        if client is not None:
            opened.callback(client.client.close)
        llm = budgeted(client, settings, events, budgets) if client is not None else None
        memory = opened.enter_context(closing(open_memory(settings, weaviate_wait)))
        yield Runtime(
            settings=settings, redis=redis, events=events, tasks=TaskStore(redis, ws), facts=FactStore(redis, ws),
            notes=NoteStore(redis, ws), outbox=Outbox(redis), queues=queues, budgets=budgets,
            reminders=ReminderBook(redis, ws, scheduler, settings.timezone), agent=build_agent(settings, redis, llm, queues),
            memory=memory, recognizer=WorkerRecognizer(settings, llm, watcher=intents), approvers=approvers_for(settings), llm=llm,
            metrics=metrics if metrics is not None else Metrics(),
        )


_current: ContextVar[Runtime] = ContextVar("deputy_runtime")


def use_runtime(runtime: Runtime) -> AbstractContextManager[Runtime]:
    """Make `runtime` the one `current_runtime()` returns in this context (a worker, while it works)."""
    return bound(_current, runtime)


def current_runtime() -> Runtime:
    """The runtime of the worker running this job."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("job functions run inside a Deputy worker (jobs/worker.py), which opens their runtime") from None


def job_queues(settings: Settings, redis: Redis) -> JobQueues:
    return JobQueues(redis, settings.job.retries, settings.job.retry_backoff, settings.job.timeout_s)


def model_client(settings: Settings) -> OpenAiLlm | None:
    """The OpenAI-compatible client, or None offline (no OPENAI_BASE_URL)."""
    model = settings.openai
    if not model.base_url:
        return None
    key = model.api_key.get_secret_value() if model.api_key else None
    return OpenAiLlm(model.base_url, key, model.model, timeout_s=model.timeout_s, max_tokens=model.max_tokens_for(""))


def worker_events(settings: Settings, redis: Redis) -> EventLog:
    """The event log workers write: configured secrets never reach it, whatever an error message quotes."""
    return EventLog(redis, settings.workspace, secrets=secret_values(settings))


def budgeted(inner: Llm, settings: Settings, events: EventLog, budgets: Budgets) -> Llm:
    """Every call priced before it is made and held against its project's caps, its answer bounded by the max_tokens
    the hold assumes; a timeout or server error is tried again on the record (OPENAI_MAX_RETRIES); the calls a run
    is planned with are kept, as answered, for its replay (agents/recording_llm.py)."""
    model = settings.openai
    # a model on loopback or the private network costs nothing unless LLM_PRICES names it
    prices = PriceTable.parse(settings.budget.prices, local=local_endpoint(model.base_url))
    return BudgetedLlm(RecordingLlm(RetryingLlm(inner, events, model.max_retries, timeout_s=model.timeout_s)), budgets, prices, events,
                       model.model, model.cheap_model, model.max_tokens_for(""),
                       tiers={kind: model.model_for(kind) for kind in TASK_KINDS},
                       limits={kind: model.max_tokens_for(kind) for kind in TASK_KINDS})


def make_llm(settings: Settings, redis: Redis) -> Llm | None:
    """The model client workers use, or None offline. Budgets and cost accounting wrap it here."""
    client = model_client(settings)
    return budgeted(client, settings, worker_events(settings, redis), make_budgets(settings, redis)) if client is not None else None


def make_budgets(settings: Settings, redis: Redis, scheduler: RqScheduler | None = None) -> Budgets:
    """Spend caps over the cost ledger, with days and months in the operator's time zone."""
    ledger = CostLedger(redis, settings.workspace, settings.timezone)
    caps = Caps.parse(settings.budget.daily_usd, settings.budget.monthly_usd, settings.budget.caps)
    return Budgets(redis, ledger, caps, scheduler or RqScheduler(job_queues(settings, redis), EventLog(redis, settings.workspace)))
