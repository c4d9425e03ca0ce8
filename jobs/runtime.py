"""What a job needs, built once per worker process from settings and the job's own connection."""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from agents.llm import Llm, OpenAiLlm
from agents.skills import SkillContext
from bot.commands import help_text
from bot.outbox import Outbox
from bot.settings import Settings, load_settings
from jobs.queues import JobQueues
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
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

    @classmethod
    def build(cls, settings: Settings, redis: Redis) -> "Runtime":
        ws = settings.workspace
        return cls(
            settings=settings,
            redis=redis,
            events=EventLog(redis, ws),
            tasks=TaskStore(redis, ws),
            facts=FactStore(redis, ws),
            notes=NoteStore(redis, ws),
            outbox=Outbox(redis),
            queues=JobQueues(redis, settings.job_retries, settings.retry_intervals(), settings.job_timeout_s),
            llm=make_llm(settings, redis),
        )

    def skill_context(self, trace_id: str, actor: str, thread_id: str) -> SkillContext:
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
        )


def make_llm(settings: Settings, redis: Redis) -> Llm | None:
    """The model client workers use, or None offline. Budgets and cost accounting wrap it here."""
    if not settings.openai_base_url:
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAiLlm(settings.openai_base_url, key, settings.openai_model)


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
