"""The groups Settings is made of: one per connector or concern. A connector takes its group as it is
(`settings.smtp`, `settings.imap`, …), so each value is declared, typed and defaulted once."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode


def _listed(value: object) -> object:
    """A list from what people write in the environment: comma separated ("a, b") or a JSON list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _json(value: object) -> object:
    """A JSON object given as text, as the environment gives it."""
    return json.loads(value) if isinstance(value, str) else value


def _lower(names: list[str]) -> list[str]:
    return [name.lower() for name in names]


# where prepared model files go unless MODEL_CACHE_DIR says otherwise (IntentSettings.model_cache_dir)
MODEL_CACHE_DIR = Path.home() / ".cache" / "deputy"

# NoDecode: the environment's text reaches _listed as it is (pydantic-settings would read it as JSON only)
Names = Annotated[list[str], NoDecode, BeforeValidator(_listed)]
Numbers = Annotated[list[int], NoDecode, BeforeValidator(_listed)]
# host names compare case-insensitively
Hosts = Annotated[list[str], NoDecode, BeforeValidator(_listed), AfterValidator(_lower)]


class _Group(BaseModel):
    # extra keys are ignored: any SMTP_SOMETHING in the environment lands in the smtp group's input
    model_config = ConfigDict(frozen=True)


class ConsoleSettings(_Group):
    """The web console and the gateway's HTTP side."""

    host: str = "127.0.0.1"
    port: int = 8700
    # user ids allowed to talk to Deputy from the console and decide approvals
    operators: Names = ["operator"]
    # a fixed secret for scripts (`Authorization: Bearer …`) and a reusable login link (`/login?token=…`);
    # without it the console is opened with the one-time link `deputy up` / `deputy console-link` print
    token: SecretStr | None = None
    # host names the gateway answers to, besides the loopback names and public_url's host; any other
    # Host header gets 403 (DNS rebinding), except on the signed platform webhooks
    allowed_hosts: Hosts = []
    # the URL the gateway is reached at through a reverse proxy or tunnel (its host is allowed)
    public_url: str | None = None
    # extra host names /healthz and /metrics answer to (compose service names of probes and scrapers)
    probe_hosts: Hosts = ["gateway"]
    # proxies (IPs or CIDRs) whose X-Forwarded-For/-Host/-Proto headers are believed
    trusted_proxies: Names = []
    # bearer token /metrics asks for when the request does not come from loopback
    metrics_token: SecretStr | None = None
    # how long a console login lasts, and how long a printed login link stays valid (seconds)
    session_ttl_s: int = 30 * 86_400
    link_ttl_s: int = 86_400
    # live update streams (/api/stream): at most this many open, and this many per login
    max_streams: int = 100
    streams_per_session: int = 6


class JobSettings(_Group):
    timeout_s: int = 120
    retries: int = 3
    # seconds between retries; the last value repeats
    retry_backoff: Numbers = [1, 5, 30]
    # seconds after which a message no worker has started gets a notice in its thread (0: never)
    stall_notice_s: float = Field(5.0, ge=0)


class ConversationSettings(_Group):
    """Questions Deputy asks in a thread, and what it assumes when nobody says."""

    # how long a question waits for its answer (PENDING_QUESTION_TTL, seconds)
    question_ttl_s: int = Field(default=1800, ge=1)
    # a meeting's length when the operator picks the default
    default_duration_min: int = Field(default=30, ge=5, le=24 * 60)
    # working hours (local, whole hours) until the operator gives theirs
    work_start: int = Field(default=9, ge=0, le=23)
    work_end: int = Field(default=18, ge=1, le=24)


# The kinds of task Deputy asks a model to do (the `purpose` of each call): the light ones go to the cheaper model
# unless LLM_MODELS says otherwise; planning and drafting to the main one.
TaskKind = Literal["intent", "slots", "plan", "draft", "digest", "ask"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
LIGHT_KINDS: tuple[str, ...] = ("intent", "slots", "digest", "ask")
# The most tokens a model may write per kind of task (max_tokens, sent with every call and held by the budget):
# choosing an intent or filling slots is a short tool call, a plan a few, a draft a short email
MAX_TOKENS: dict[str, int] = {"intent": 256, "slots": 256, "plan": 800, "draft": 600, "digest": 400, "ask": 500}
# a call of no known kind
OTHER_MAX_TOKENS = 1024


class TaskModel(_Group):
    """What one kind of task is sent to, and how much the model may write for it."""

    # the kind's default model when unset ({"draft": {"max_tokens": 900}} changes only the bound)
    model: str | None = Field(default=None, min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)


def _task_models(value: object) -> object:
    """LLM_MODELS as people write it: "plan=gpt-4o,draft=gpt-4o", or JSON {"plan": "gpt-4o"} /
    {"plan": {"model": "gpt-4o", "max_tokens": 800}}."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            value = json.loads(text)
        else:
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("write it as kind=model pairs, e.g. 'plan=gpt-4o,intent=gpt-4o-mini'")
            value = {kind.strip(): model.strip() for kind, model in pairs}
    if isinstance(value, dict):
        return {kind: {"model": model} if isinstance(model, str) else model for kind, model in value.items()}
    return value


TaskModels = Annotated[dict[TaskKind, TaskModel], NoDecode, BeforeValidator(_task_models)]


class OpenAiSettings(_Group):
    """Any OpenAI-compatible endpoint; Deputy runs offline when base_url is unset."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    # the cheaper model: the light kinds of task by default, and where a call falls back to when the usual model
    # would exceed a budget cap
    cheap_model: str | None = None
    # LLM_MODELS: the model and max_tokens per kind of task, where they are not the defaults
    models: TaskModels = {}
    # LLM_MAX_COMPLETION_TOKENS: max_tokens of every kind LLM_MODELS does not bound (MAX_TOKENS per kind when unset)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # seconds to wait for an answer (for a streamed one: for its next piece) before the call counts as timed out,
    # and how often Deputy tries again after a timeout or a server error (each one an event in the trace)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=1, ge=0)

    def model_for(self, kind: str) -> str:
        """The model a task of KIND goes to: LLM_MODELS's, else the cheaper model for a light kind, else the main one."""
        chosen = self.models.get(kind)  # type: ignore[call-overload]
        if chosen is not None and chosen.model:
            return chosen.model
        return (self.cheap_model or self.model) if kind in LIGHT_KINDS else self.model

    def max_tokens_for(self, kind: str) -> int:
        """The most tokens a task of KIND may write: LLM_MODELS's, else LLM_MAX_COMPLETION_TOKENS, else the kind's own."""
        chosen = self.models.get(kind)  # type: ignore[call-overload]
        if chosen is not None and chosen.max_tokens:
            return chosen.max_tokens
        return self.max_completion_tokens or MAX_TOKENS.get(kind, OTHER_MAX_TOKENS)


class IntentSettings(_Group):
    """Free text → intent; see docs/intents.md."""

    # the operator's own intents, YAML; re-read and retrained on change (default DATA_DIR/intents.yaml)
    file: Path | None = None
    # below this confidence (0-1) Deputy asks which intent was meant instead of guessing. With 25
    # built-in intents the confidence of right answers is lower than with 13 (docs/intents.md: 0.32
    # acts on 96% of the operator dev messages and on none of its out-of-scope ones; 0.38 on 89%)
    threshold: float = 0.32
    # false: TF-IDF only, without the local MiniLM sentence embeddings
    embeddings: bool = True
    # also read all-mpnet-base-v2 next to MiniLM when it is installed (more accurate, ~60 ms and
    # ~450 MB more per worker; docs/intents.md); false: MiniLM only
    mpnet: bool = True
    # prepared model files (`deputy prepare`): all-mpnet-base-v2 unpacked, the sentence models' onnxruntime
    # graphs; memory's embedder reads its graph from here too
    model_cache_dir: Path = MODEL_CACHE_DIR


class SlackSettings(_Group):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    # Slack's posting limit is about one message per second per channel
    message_interval_s: float = 1.0
    # the Slack member ids allowed to talk to Deputy and decide approvals
    operators: Names = []


class TelegramSettings(_Group):
    bot_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    # webhook mode when set (its host is allowed); long polling otherwise
    public_url: str | None = None
    api_url: str = "https://api.telegram.org/bot"
    operators: Names = []


class WeaviateSettings(_Group):
    url: str | None = None
    api_key: SecretStr | None = None
    # Weaviate answers queries and batches over gRPC; the host defaults to url's host
    grpc_port: int = 50051
    grpc_host: str | None = None
    collection: str = "DeputyMemory"
    # a worker that finds Weaviate down waits for it before taking jobs, trying again after 1, 2, 4 … seconds,
    # at most this long apart (WEAVIATE_RETRY_MAX_S)
    retry_max_s: float = Field(30.0, gt=0)


class HealthSettings(_Group):
    """Heartbeats of workers and cron, read by `deputy health`."""

    # seconds between a worker's or cron's heartbeats (HEALTH_HEARTBEAT_S)
    heartbeat_s: float = Field(10.0, gt=0)
    # a process whose last heartbeat is older than this is not alive (HEALTH_STALE_S); an idle worker beats
    # at least every 15 s, so keep it well above that
    stale_s: float = Field(60.0, gt=0)


class MemorySettings(_Group):
    # the embedded semantic store (SQLite file); DATA_DIR/memory.sqlite3 when unset
    path: Path | None = None
    # "local" (all-MiniLM-L6-v2, offline) or "openai" (the OpenAI endpoint's /embeddings)
    embeddings: str = "local"
    embedding_model: str = "text-embedding-3-small"
    embedding_dim: int | None = None
    # MEMORY_RETENTION_DAYS: days to keep semantic memories of a project that sets none of its own
    # (`/project NAME retention 90d`); unset keeps them until forgotten
    retention_days: int | None = Field(default=None, ge=1)


class IngestSettings(_Group):
    # channels whose conversations are remembered: console, slack, telegram
    conversations: Names = []
    # `deputy ingest`: larger files are skipped unread; a PDF is read up to this many pages, and its
    # text extraction stops after this many seconds (checked between pages); what was read is kept
    max_file_mb: float = Field(20.0, gt=0)
    max_pdf_pages: int = Field(500, ge=1)
    pdf_timeout_s: float = Field(60.0, gt=0)


class DigestSettings(_Group):
    # local time (in `timezone`) the daily digest is due, HH:MM
    time: str = "08:00"
    # where the digest goes: console (its "digest" thread), slack, telegram (the thread the operator
    # last wrote from on that platform)
    channels: Names = ["console"]


class BudgetSettings(_Group):
    # every project's caps in USD (0 = no cap), and per-project overrides "project:daily:monthly"
    daily_usd: float = 1.0
    monthly_usd: float = 20.0
    caps: Names = []
    # USD per 1k tokens, on top of the built-in table: "model:in:out,..." or JSON {"model": [in, out]}
    # (agents/costs.py reads it: model names may hold ':' and the JSON form is a table, not a list)
    prices: str = ""


class PolicySettings(_Group):
    # a policy YAML of the same shape as agents/policy.yaml; the built-in one when unset
    file: Path | None = None
    # overrides the policy's approval_ttl_s (seconds an approval card stays valid)
    approval_ttl_s: int | None = None
    # who may decide approvals; the operators of every channel when empty
    approvers: Names = []


class EffectSettings(_Group):
    # how long a worker holds a step's effect key; past it, a dead worker's step counts as in doubt
    lease_s: float = 120.0
    # consecutive connector failures that open its circuit breaker, and how long it stays open
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0


class UndoSettings(_Group):
    # UNDO_WINDOW: seconds after an action is done that its Undo button and "undo that" still undo it
    window_s: int = Field(900, ge=0)


class _Login(_Group):
    """Deputy's account on a server it connects to."""

    username: str | None = None
    password: SecretStr | None = None
    # seconds to wait for each answer of the server before counting the attempt as failed
    timeout_s: float = 20.0


class _MailServer(_Login):
    """Where a mail server is; port and security are the protocol's."""

    host: str | None = None
    # a CA bundle to trust instead of the system's (a private server with its own certificate)
    ca_file: str | None = None


class SmtpSettings(_MailServer):
    """Email out; email.send exists only when host and sender are set."""

    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    sender: str | None = None
    sender_name: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


class ImapSettings(_MailServer):
    """Email in; inbox triage exists only when host, username and password are set."""

    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    folder: str = "INBOX"
    # turn unseen mail into tasks every this many minutes (0 = never)
    triage_every_min: int = Field(15, ge=0)

    @property
    def configured(self) -> bool:
        return bool(self.host and self.username and self.password)


class CalDavSettings(_Login):
    """The calendar; its capabilities exist only when url is set."""

    url: str | None = None
    # display name of the calendar to use; the account's first calendar when unset
    calendar: str | None = None
    timeout_s: float = 15.0


class WebhookUndo(_Group):
    """A target's reverse call: where Deputy asks it to take back a delivery it made (an undo)."""

    url: str
    method: Literal["POST", "PUT", "DELETE"] = "POST"


class WebhookTarget(_Group):
    url: str
    secret: SecretStr | None = None
    # the reverse call, when the receiving system can take a delivery back; without one a post cannot be undone
    undo: WebhookUndo | None = None


class WebhookSettings(_Group):
    # webhooks out, by name: {"crm": {"url": "https://crm.example/hooks/deputy", "secret": "...",
    # "undo": {"url": "https://crm.example/hooks/deputy/undo"}}} (undo: optional, see WebhookUndo)
    outbound: Annotated[dict[str, WebhookTarget], BeforeValidator(_json)] = {}
    timeout_s: float = 10.0
    # signed webhooks in, name → signing secret: {"orders": "...", "leads": "..."}; each is served at
    # POST /hooks/NAME
    inbound: Annotated[dict[str, SecretStr], BeforeValidator(_json)] = {}
    # how far (seconds) a hook's signed timestamp may be from now before it counts as replayed
    tolerance_s: int = 300
    # the OUTBOUND_WEBHOOKS target that contact and deal changes are mirrored to (an external CRM); none when unset
    crm_mirror: str | None = None
