"""The capability registry: CAPABILITIES is the one list of providers; each builds the capabilities of one
connector from IntegrationsConfig, or none when that connector is not configured."""
from __future__ import annotations

from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, SecretStr
from redis import Redis

from integrations import internal
from integrations.capability import Capability, Health
from integrations.calendar import CalDavConfig, calendar_capabilities
from integrations.email_imap import ImapConfig, inbox_capabilities
from integrations.email_smtp import SmtpConfig, send_email_capability
from integrations.webhooks import webhook_capabilities
from memory.tasks import TaskStore


class WebhookTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    secret: SecretStr | None = None


class IntegrationsConfig(BaseModel):
    """What connectors need, built by jobs/runtime.py from Settings (integrations never read the environment)."""

    model_config = ConfigDict(frozen=True)

    workspace: str = "default"
    # --- email out (SMTP)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_from_name: str = ""
    smtp_ca_file: str | None = None
    smtp_timeout_s: float = 20.0
    # --- email in (IMAP)
    imap_host: str | None = None
    imap_port: int = 993
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_ca_file: str | None = None
    imap_timeout_s: float = 20.0
    # --- calendar (CalDAV); times without a zone are in the operator's `timezone`
    caldav_url: str | None = None
    caldav_username: str | None = None
    caldav_password: SecretStr | None = None
    caldav_calendar: str | None = None
    caldav_timeout_s: float = 15.0
    timezone: str = "UTC"
    # --- webhooks out, by name
    webhooks: dict[str, WebhookTarget] = {}
    webhook_timeout_s: float = 10.0


Provider = Callable[[IntegrationsConfig, "Redis | None"], Sequence[Capability]]


def email_send(config: IntegrationsConfig, redis: Redis | None) -> Sequence[Capability]:
    if not (config.smtp_host and config.smtp_from):
        return []
    return [send_email_capability(SmtpConfig(
        host=config.smtp_host, port=config.smtp_port, security=config.smtp_security, username=config.smtp_username,
        password=config.smtp_password, sender=config.smtp_from, sender_name=config.smtp_from_name,
        timeout_s=config.smtp_timeout_s, ca_file=config.smtp_ca_file,
    ))]


def email_inbox(config: IntegrationsConfig, redis: Redis | None) -> Sequence[Capability]:
    if not (config.imap_host and config.imap_username and config.imap_password and redis is not None):
        return []
    return inbox_capabilities(ImapConfig(
        host=config.imap_host, port=config.imap_port, security=config.imap_security, username=config.imap_username,
        password=config.imap_password, mailbox=config.imap_folder, timeout_s=config.imap_timeout_s, ca_file=config.imap_ca_file,
    ), TaskStore(redis, config.workspace))


def calendar(config: IntegrationsConfig, redis: Redis | None) -> Sequence[Capability]:
    if not config.caldav_url:
        return []
    return calendar_capabilities(CalDavConfig(
        url=config.caldav_url, username=config.caldav_username, password=config.caldav_password,
        calendar=config.caldav_calendar, timezone=config.timezone, timeout_s=config.caldav_timeout_s,
    ))


def webhooks(config: IntegrationsConfig, redis: Redis | None) -> Sequence[Capability]:
    return webhook_capabilities(config.webhooks, config.webhook_timeout_s)


# The one list of capability providers. A provider returns [] when its connector is not configured.
CAPABILITIES: list[Provider] = [
    internal.task_capabilities,
    internal.note_capabilities,
    internal.contact_capabilities,
    email_send,
    email_inbox,
    calendar,
    webhooks,
]


def build_capabilities(
    config: IntegrationsConfig, redis: Redis | None = None, providers: Sequence[Provider] | None = None
) -> dict[str, Capability]:
    """Every configured capability by name; a name provided twice is a wiring error."""
    built: dict[str, Capability] = {}
    for provide in CAPABILITIES if providers is None else providers:
        for capability in provide(config, redis):
            if capability.name in built:
                raise ValueError(f"capability {capability.name!r} is provided twice (check CAPABILITIES)")
            built[capability.name] = capability
    return built


def check_health(capabilities: dict[str, Capability]) -> dict[str, Health]:
    """Run each capability's health check; a check that raises reports unhealthy with the reason."""
    report: dict[str, Health] = {}
    for name, capability in sorted(capabilities.items()):
        if capability.health is None:
            report[name] = Health(ok=True, detail="no health check")
            continue
        try:
            report[name] = capability.health()
        except Exception as err:  # a health check must never take `deputy check` down
            report[name] = Health(ok=False, detail=f"{type(err).__name__}: {err}"[:300])
    return report
