"""Settings from the environment and .env: every documented name lands in its group, lists are lists,
and a value that does not fit names its variable."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from kernel.settings import Settings
from kernel.settings_models import TaskModel, WebhookTarget

ROOT = Path(__file__).resolve().parents[2]
CRM = '{"crm": {"url": "https://crm.example/in", "secret": "crm-secret"}}'

# Every documented variable: where it lands, what people write, what Deputy reads.
DOCUMENTED: dict[str, tuple[str, str, Any]] = {
    "REDIS_URL": ("redis_url", "redis://10.0.0.5:6379/2", "redis://10.0.0.5:6379/2"),
    "EMBEDDED_REDIS": ("embedded_redis", "false", False),
    "DATA_DIR": ("data_dir", "/srv/deputy", Path("/srv/deputy")),
    "WORKERS": ("workers", "4", 4),
    "DEDUPE_TTL_S": ("dedupe_ttl_s", "60", 60),
    "METRICS_DIR": ("metrics_dir", "/srv/deputy-metrics", Path("/srv/deputy-metrics")),
    "WORKSPACE": ("workspace", "studio", "studio"),
    "OPERATOR_NAME": ("operator_name", "Ada", "Ada"),
    "TIMEZONE": ("timezone", "Europe/Lisbon", "Europe/Lisbon"),
    "CONSOLE_HOST": ("console.host", "0.0.0.0", "0.0.0.0"),
    "CONSOLE_PORT": ("console.port", "8800", 8800),
    "CONSOLE_OPERATORS": ("console.operators", "ada, bob", ["ada", "bob"]),
    "CONSOLE_TOKEN": ("console.token", "console-secret", "console-secret"),
    "CONSOLE_ALLOWED_HOSTS": ("console.allowed_hosts", "Deputy.example,ops.example", ["deputy.example", "ops.example"]),
    "PUBLIC_URL": ("console.public_url", "https://deputy.example", "https://deputy.example"),
    "PROBE_HOSTS": ("console.probe_hosts", "gateway,Prometheus", ["gateway", "prometheus"]),
    "TRUSTED_PROXIES": ("console.trusted_proxies", "10.0.0.0/8, 192.168.1.1", ["10.0.0.0/8", "192.168.1.1"]),
    "METRICS_TOKEN": ("console.metrics_token", "metrics-secret", "metrics-secret"),
    "CONSOLE_SESSION_TTL_S": ("console.session_ttl_s", "3600", 3600),
    "CONSOLE_LINK_TTL_S": ("console.link_ttl_s", "600", 600),
    "CONSOLE_MAX_STREAMS": ("console.max_streams", "10", 10),
    "CONSOLE_STREAMS_PER_SESSION": ("console.streams_per_session", "2", 2),
    "JOB_TIMEOUT_S": ("job.timeout_s", "30", 30),
    "JOB_RETRIES": ("job.retries", "5", 5),
    "JOB_RETRY_BACKOFF": ("job.retry_backoff", "2,10", [2, 10]),
    "JOB_STALL_NOTICE_S": ("job.stall_notice_s", "2.5", 2.5),
    "PENDING_QUESTION_TTL": ("conversation.question_ttl_s", "600", 600),
    "DEFAULT_MEETING_MIN": ("conversation.default_duration_min", "45", 45),
    "WORK_HOURS_START": ("conversation.work_start", "8", 8),
    "WORK_HOURS_END": ("conversation.work_end", "17", 17),
    "OPENAI_BASE_URL": ("openai.base_url", "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
    "OPENAI_API_KEY": ("openai.api_key", "sk-test", "sk-test"),
    "OPENAI_MODEL": ("openai.model", "llama3", "llama3"),
    "OPENAI_CHEAP_MODEL": ("openai.cheap_model", "gpt-4o-mini", "gpt-4o-mini"),
    "LLM_MAX_COMPLETION_TOKENS": ("openai.max_completion_tokens", "256", 256),
    "OPENAI_TIMEOUT_S": ("openai.timeout_s", "120", 120.0),
    "OPENAI_MAX_RETRIES": ("openai.max_retries", "0", 0),
    "LLM_MODELS": ("openai.models", "plan=gpt-4o, draft=gpt-4o",
                   {"plan": TaskModel(model="gpt-4o"), "draft": TaskModel(model="gpt-4o")}),
    "INTENTS_FILE": ("intent.file", "/srv/intents.yaml", Path("/srv/intents.yaml")),
    "INTENT_THRESHOLD": ("intent.threshold", "0.5", 0.5),
    "INTENT_EMBEDDINGS": ("intent.embeddings", "false", False),
    "INTENT_MPNET": ("intent.mpnet", "true", True),
    "MODEL_CACHE_DIR": ("intent.model_cache_dir", "/srv/models", Path("/srv/models")),
    "SLACK_BOT_TOKEN": ("slack.bot_token", "xoxb-1", "xoxb-1"),
    "SLACK_SIGNING_SECRET": ("slack.signing_secret", "signing", "signing"),
    "SLACK_APP_TOKEN": ("slack.app_token", "xapp-1", "xapp-1"),
    "SLACK_API_URL": ("slack.api_url", "http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/"),
    "SLACK_MESSAGE_INTERVAL_S": ("slack.message_interval_s", "0.5", 0.5),
    "SLACK_OPERATORS": ("slack.operators", "U1,U2", ["U1", "U2"]),
    "TELEGRAM_BOT_TOKEN": ("telegram.bot_token", "1:abc", "1:abc"),
    "TELEGRAM_WEBHOOK_SECRET": ("telegram.webhook_secret", "tg-secret", "tg-secret"),
    "TELEGRAM_PUBLIC_URL": ("telegram.public_url", "https://tg.example", "https://tg.example"),
    "TELEGRAM_API_URL": ("telegram.api_url", "http://127.0.0.1:9/bot", "http://127.0.0.1:9/bot"),
    "TELEGRAM_OPERATORS": ("telegram.operators", "42", ["42"]),
    "WEAVIATE_URL": ("weaviate.url", "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    "WEAVIATE_API_KEY": ("weaviate.api_key", "wv-key", "wv-key"),
    "WEAVIATE_GRPC_PORT": ("weaviate.grpc_port", "50052", 50052),
    "WEAVIATE_GRPC_HOST": ("weaviate.grpc_host", "grpc.example", "grpc.example"),
    "WEAVIATE_COLLECTION": ("weaviate.collection", "Mine", "Mine"),
    "WEAVIATE_RETRY_MAX_S": ("weaviate.retry_max_s", "5", 5.0),
    "HEALTH_HEARTBEAT_S": ("health.heartbeat_s", "2.5", 2.5),
    "HEALTH_STALE_S": ("health.stale_s", "90", 90.0),
    "MEMORY_PATH": ("memory.path", "/srv/memory.sqlite3", Path("/srv/memory.sqlite3")),
    "MEMORY_RETENTION_DAYS": ("memory.retention_days", "90", 90),
    "EMBEDDINGS": ("memory.embeddings", "openai", "openai"),
    "EMBEDDING_MODEL": ("memory.embedding_model", "text-embedding-3-large", "text-embedding-3-large"),
    "EMBEDDING_DIM": ("memory.embedding_dim", "256", 256),
    "INGEST_CONVERSATIONS": ("ingest.conversations", "console,slack", ["console", "slack"]),
    "INGEST_MAX_FILE_MB": ("ingest.max_file_mb", "5", 5.0),
    "INGEST_MAX_PDF_PAGES": ("ingest.max_pdf_pages", "50", 50),
    "INGEST_PDF_TIMEOUT_S": ("ingest.pdf_timeout_s", "10", 10.0),
    "DIGEST_TIME": ("digest.time", "07:30", "07:30"),
    "DIGEST_CHANNELS": ("digest.channels", "console, telegram", ["console", "telegram"]),
    "BUDGET_DAILY_USD": ("budget.daily_usd", "2.5", 2.5),
    "BUDGET_MONTHLY_USD": ("budget.monthly_usd", "40", 40.0),
    "BUDGET_CAPS": ("budget.caps", "clients:2:40,research:0.5:5", ["clients:2:40", "research:0.5:5"]),
    "LLM_PRICES": ("budget.prices", "llama3:latest:0:0", "llama3:latest:0:0"),
    "POLICY_FILE": ("policy.file", "/srv/policy.yaml", Path("/srv/policy.yaml")),
    "APPROVAL_TTL_S": ("policy.approval_ttl_s", "900", 900),
    "APPROVERS": ("policy.approvers", "ada,U1", ["ada", "U1"]),
    "INSPECTOR_PROVENANCE": ("inspector_provenance", "false", False),
    "EFFECT_LEASE_S": ("effects.lease_s", "30", 30.0),
    "BREAKER_FAILURES": ("effects.breaker_failures", "3", 3),
    "BREAKER_COOLDOWN_S": ("effects.breaker_cooldown_s", "2", 2.0),
    "UNDO_WINDOW": ("undo.window_s", "600", 600),
    "SMTP_HOST": ("smtp.host", "mail.example", "mail.example"),
    "SMTP_PORT": ("smtp.port", "465", 465),
    "SMTP_SECURITY": ("smtp.security", "ssl", "ssl"),
    "SMTP_USERNAME": ("smtp.username", "ada", "ada"),
    "SMTP_PASSWORD": ("smtp.password", "smtp-secret", "smtp-secret"),
    "SMTP_FROM": ("smtp.sender", "ada@studio.example", "ada@studio.example"),
    "SMTP_FROM_NAME": ("smtp.sender_name", "Ada's Studio", "Ada's Studio"),
    "SMTP_CA_FILE": ("smtp.ca_file", "/srv/ca.pem", "/srv/ca.pem"),
    "SMTP_TIMEOUT_S": ("smtp.timeout_s", "5", 5.0),
    "IMAP_HOST": ("imap.host", "imap.example", "imap.example"),
    "IMAP_PORT": ("imap.port", "143", 143),
    "IMAP_SECURITY": ("imap.security", "starttls", "starttls"),
    "IMAP_USERNAME": ("imap.username", "ada", "ada"),
    "IMAP_PASSWORD": ("imap.password", "imap-secret", "imap-secret"),
    "IMAP_FOLDER": ("imap.folder", "Clients", "Clients"),
    "IMAP_CA_FILE": ("imap.ca_file", "/srv/ca.pem", "/srv/ca.pem"),
    "INBOX_TRIAGE_EVERY_MIN": ("imap.triage_every_min", "0", 0),
    "CALDAV_URL": ("caldav.url", "https://dav.example/", "https://dav.example/"),
    "CALDAV_USERNAME": ("caldav.username", "ada", "ada"),
    "CALDAV_PASSWORD": ("caldav.password", "dav-secret", "dav-secret"),
    "CALDAV_CALENDAR": ("caldav.calendar", "Work", "Work"),
    "OUTBOUND_WEBHOOKS": ("webhooks.outbound", CRM,
                          {"crm": WebhookTarget(url="https://crm.example/in", secret=SecretStr("crm-secret"))}),
    "INBOUND_HOOKS": ("webhooks.inbound", '{"orders": "hook-secret"}', {"orders": "hook-secret"}),
    "HOOK_TOLERANCE_S": ("webhooks.tolerance_s", "60", 60),
    # which outbound webhook mirrors contact and deal changes (checked against OUTBOUND_WEBHOOKS when wired)
    "CRM_MIRROR_WEBHOOK": ("webhooks.crm_mirror", "crm", "crm"),
}


def read(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict) and all(isinstance(v, SecretStr) for v in value.values()):
        return {k: v.get_secret_value() for k, v in value.items()}
    return value


@pytest.mark.parametrize("source", ["environment", ".env"])
@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_documented_name_sets_its_field(name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path, text, expected = DOCUMENTED[name]
    if source == ".env":  # clean_env runs each test in a folder of its own
        monkeypatch.delenv(name, raising=False)  # the environment wins over .env
        Path(".env").write_text(f"{name}={text}\n")
    else:
        monkeypatch.setenv(name, text)
    assert read(Settings(), path) == expected


def test_every_name_the_docs_give_is_known() -> None:
    rows = [line for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
            for line in doc.read_text().splitlines() if line.startswith("|")]
    named = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]{2,})`", row)} - {"UTC"}
    assert named and named <= set(DOCUMENTED), sorted(named - set(DOCUMENTED))


def test_lists_are_read_from_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_OPERATORS", " U1 , ,U2 ")
    monkeypatch.setenv("TELEGRAM_OPERATORS", '["7", "8"]')
    monkeypatch.setenv("JOB_RETRY_BACKOFF", "[0, 1]")
    monkeypatch.setenv("DIGEST_CHANNELS", "")  # empty is unset: the default stays
    settings = Settings()
    assert settings.slack.operators == ["U1", "U2"] and settings.telegram.operators == ["7", "8"]
    assert settings.job.retry_backoff == [0, 1] and settings.digest.channels == ["console"]
    assert settings.operators("slack") == {"U1", "U2"} and settings.operators("console") == {"operator"}


@pytest.mark.parametrize("name, text", [
    ("SMTP_PORT", "abc"),
    ("SMTP_SECURITY", "tls"),
    ("JOB_RETRY_BACKOFF", "1,five"),
    ("INBOX_TRIAGE_EVERY_MIN", "-1"),
    ("OUTBOUND_WEBHOOKS", '{"crm": {"secret": "s"}}'),
    ("PROBE_HOSTS", "[not json"),
    ("WORKERS", "many"),
    ("LLM_MODELS", "plan gpt-4o"),
    ("LLM_MODELS", "chat=gpt-4o"),
    ("LLM_MODELS", '{"draft": {"max_tokens": 0}}'),
    ("OPENAI_TIMEOUT_S", "0"),
])
def test_a_value_that_does_not_fit_names_its_variable(name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, text)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert re.search(rf"^{name}\b", str(raised.value), re.M), str(raised.value)
    assert "crm-secret" not in str(raised.value)


def test_light_tasks_go_to_the_cheaper_model_unless_llm_models_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_MODEL", "big")
    assert [Settings().openai.model_for(k) for k in ("intent", "plan")] == ["big", "big"]  # nothing cheaper is known
    monkeypatch.setenv("OPENAI_CHEAP_MODEL", "small")
    monkeypatch.setenv("LLM_MODELS", '{"ask": "mid"}')
    models = Settings().openai
    assert {k: models.model_for(k) for k in ("intent", "slots", "digest", "ask", "plan", "draft")} == {
        "intent": "small", "slots": "small", "digest": "small", "ask": "mid", "plan": "big", "draft": "big"}


def test_each_kind_of_task_has_its_max_tokens_unless_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = ("intent", "slots", "plan", "draft", "digest", "ask")
    assert [Settings().openai.max_tokens_for(k) for k in kinds] == [256, 256, 800, 600, 400, 500]
    monkeypatch.setenv("LLM_MODELS", '{"draft": {"max_tokens": 900}, "plan": {"model": "big", "max_tokens": 1200}}')
    monkeypatch.setenv("LLM_MAX_COMPLETION_TOKENS", "300")
    models = Settings().openai
    assert [models.max_tokens_for(k) for k in kinds] == [300, 300, 1200, 900, 300, 300]
    assert (models.model_for("draft"), models.model_for("plan")) == ("gpt-4o-mini", "big")


def test_one_default_per_value() -> None:
    # the SMTP connector takes settings.smtp itself: its timeout is the documented 20 s, not a default of its own
    assert Settings().smtp.timeout_s == 20.0


def test_a_variable_named_like_a_group_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP", "not json")
    monkeypatch.setenv("SMTP_HOST", "mail.example")
    assert Settings().smtp.host == "mail.example"


def test_a_keyword_that_is_no_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="SMTP_HOST"):
        Settings(smtp_host="mail.example")
    assert Settings(smtp={"host": "mail.example"}).smtp.host == "mail.example"
