"""What a job needs, built once per worker process from settings and the job's own connection."""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from agents.budget import Budgets, Caps
from agents.budgeted_llm import BudgetedLlm
from agents.costs import CostLedger, PriceTable
from agents.drafts import DraftStore
from agents.digest import Agenda, PendingApprovals
from agents.llm import Llm, OpenAiLlm
from agents.reminders import ReminderBook
from agents.agent import Agent
from agents.skills import SkillContext
from agents.recall import Recall
from agents.intents.commands import help_text
from kernel.messages import Reply
from kernel.outbox import Outbox
from agents.intents.recognizers import WorkerRecognizer
from kernel.settings import Settings, load_settings
from jobs.agent_wiring import approvers_for, build_agent
from jobs.memory_wiring import Memory, open_memory
from jobs.queues import JobQueues
from jobs.scheduling import RqScheduler
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.ingest import Ingestor
from memory.retrieval import Retriever
from memory.tasks import TaskStore


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    events: EventLog
    tasks: TaskStore
    facts: FactStore
    notes: NoteStore
    outbox: Outbox
    queues: JobQueues
    # None when no OPENAI_BASE_URL is configured: everything then runs offline
    llm: Llm | None = None
    # plan → execute → inspect, approvals and capabilities (jobs/agent_wiring.py)
    agent: "Agent | None" = None
    # spend caps and the cost ledger; reminders; what the digest reads when they are configured
    budgets: Budgets | None = None
    reminders: ReminderBook | None = None
    approvals_view: PendingApprovals | None = None
    agenda: Agenda | None = None
    # semantic memory: the store searched and written, and every backend forget reaches
    memory: Memory | None = None
    # free text → intent (classifier, slots, function calling); trains on first use
    recognizer: WorkerRecognizer | None = None
    # who may approve more spend or set a budget: the same people who decide approvals
    approvers: tuple[str, ...] = ()

    @classmethod
    def build(cls, settings: Settings, redis: Redis) -> "Runtime":
        ws = settings.workspace
        runtime = cls(
            settings=settings,
            redis=redis,
            events=EventLog(redis, ws),
            tasks=TaskStore(redis, ws),
            facts=FactStore(redis, ws),
            notes=NoteStore(redis, ws),
            outbox=Outbox(redis),
            queues=JobQueues(redis, settings.job.retries, settings.job.retry_backoff, settings.job.timeout_s),
            llm=make_llm(settings, redis),
            budgets=make_budgets(settings, redis),
            reminders=ReminderBook(redis, ws, RqScheduler(JobQueues(redis, settings.job.retries, settings.job.retry_backoff,
                                                                      settings.job.timeout_s), EventLog(redis, ws)), settings.timezone),
        )
        runtime.agent = build_agent(settings, redis, runtime.llm, runtime.queues)
        runtime.memory = open_memory(settings)
        runtime.recognizer = WorkerRecognizer(settings, runtime.llm)
        runtime.approvers = approvers_for(settings)
        return runtime

    def skill_context(self, trace_id: str, actor: str, thread_id: str, channel: str = "",
                      reply_to: dict[str, str] | None = None) -> SkillContext:
        from jobs.digest_jobs import OutboxDigest, builder_for  # digest_jobs imports this module

        return SkillContext(
            workspace=self.settings.workspace,
            trace_id=trace_id,
            actor=actor,
            thread_id=thread_id,
            tasks=self.tasks,
            facts=self.facts,
            notes=self.notes,
            events=self.events,
            help_text=help_text(),
            channel=channel,
            reply_to=reply_to or {},
            budgets=self.budgets,
            reminders=self.reminders,
            digests=OutboxDigest(self, builder_for(self)),
            agent=self.agent,
            recall=self.recall(),
            drafts=DraftStore(self.redis, self.settings.workspace),
            llm=self.llm,
            approvers=self.approvers,
        )

    def queue_reply(self, reply: Reply, note: str | None = None) -> bool:
        """Put a reply in the outbox and trace it (`note` instead of its text); False when that reply
        id was queued before, so a retried job answers once."""
        if not self.outbox.put(reply):
            return False
        self.events.record(reply.trace_id, "reply.queued", actor="worker", reply_id=reply.reply_id, text=(note or reply.text)[:200])
        return True

    def recall(self) -> Recall | None:
        if self.memory is None:
            return None
        return Recall(Retriever(self.memory.store), Ingestor(self.memory.store, self.settings.workspace), self.llm)


def make_llm(settings: Settings, redis: Redis) -> Llm | None:
    """The model client workers use, or None offline. Budgets and cost accounting wrap it here."""
    model = settings.openai
    if not model.base_url:
        return None
    key = model.api_key.get_secret_value() if model.api_key else None
    inner = OpenAiLlm(model.base_url, key, model.model)
    # every call is priced before it is made and held against its project's caps
    return BudgetedLlm(inner, make_budgets(settings, redis), PriceTable.parse(settings.budget.prices),
                       EventLog(redis, settings.workspace), model.model, model.cheap_model, model.max_completion_tokens)


def make_budgets(settings: Settings, redis: Redis) -> Budgets:
    """Spend caps over the cost ledger, with days and months in the operator's time zone."""
    queues = JobQueues(redis, settings.job.retries, settings.job.retry_backoff, settings.job.timeout_s)
    ledger = CostLedger(redis, settings.workspace, settings.timezone)
    caps = Caps.parse(settings.budget.daily_usd, settings.budget.monthly_usd, settings.budget.caps)
    return Budgets(redis, ledger, caps, RqScheduler(queues, EventLog(redis, settings.workspace)))


# Job functions receive only JSON, so each worker process keeps one Runtime per Redis
# connection pool it was handed (the worker's own, or a test's).
_runtimes: dict[int, Runtime] = {}


def runtime_for(redis: Redis) -> Runtime:
    key = id(redis.connection_pool)
    runtime = _runtimes.get(key)
    if runtime is None:
        runtime = _runtimes[key] = Runtime.build(load_settings(), redis)
    return runtime


def forget_runtimes() -> None:
    """Drop cached runtimes (tests change settings between cases)."""
    _runtimes.clear()
