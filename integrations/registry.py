"""The capability registry: CAPABILITIES is the one list of providers; each builds the capabilities of one
connector from its settings group (settings.smtp, settings.imap, …), or none when that connector is not
configured. Integrations never read the environment: Settings is handed to them."""
from __future__ import annotations

from typing import Callable, Sequence

from redis import Redis

from integrations import internal
from integrations.capability import Capability, Health
from integrations.calendar_capabilities import calendar_capabilities
from integrations.crm import crm_for
from integrations.crm_capabilities import contact_capabilities, crm_capabilities, linked
from integrations.email_imap import inbox_capabilities
from integrations.email_smtp import send_email_capability
from integrations.webhooks import webhook_capabilities
from kernel.settings import Settings
from memory.notes import NoteStore
from memory.tasks import TaskStore

Provider = Callable[[Settings, "Redis | None"], Sequence[Capability]]


def own_state(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    if redis is None:
        return []
    workspace = settings.workspace
    return [
        *internal.task_capabilities(TaskStore(redis, workspace)),
        *internal.note_capabilities(NoteStore(redis, workspace)),
    ]


def crm(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    # Deputy's own CRM; a connector for an external one would provide the same crm.* names instead
    if redis is None:
        return []
    book = crm_for(settings, redis)
    return [*contact_capabilities(book), *crm_capabilities(book)]


def email_send(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    return [send_email_capability(settings.smtp)] if settings.smtp.configured else []


def email_inbox(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    if not (settings.imap.configured and redis is not None):
        return []
    return inbox_capabilities(settings.imap, TaskStore(redis, settings.workspace))


def calendar(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    return calendar_capabilities(settings.caldav, settings.timezone) if settings.caldav.url else []


def webhooks(settings: Settings, redis: Redis | None) -> Sequence[Capability]:
    hooks = settings.webhooks
    reverse = {name: target.undo for name, target in hooks.outbound.items() if target.undo is not None}
    return webhook_capabilities(hooks.outbound, hooks.timeout_s, reverse)


# The one list of capability providers. A provider returns [] when its connector is not configured.
CAPABILITIES: list[Provider] = [
    own_state,
    crm,
    email_send,
    email_inbox,
    calendar,
    webhooks,
]


def build_capabilities(
    settings: Settings, redis: Redis | None = None, providers: Sequence[Provider] | None = None
) -> dict[str, Capability]:
    """Every configured capability by name; a name provided twice is a wiring error."""
    built: dict[str, Capability] = {}
    for provide in CAPABILITIES if providers is None else providers:
        for capability in provide(settings, redis):
            if capability.name in built:
                raise ValueError(f"capability {capability.name!r} is provided twice (check CAPABILITIES)")
            built[capability.name] = capability
    # what Deputy sends, books and follows up with a contact is part of that contact's history
    return linked(built, crm_for(settings, redis)) if redis is not None else built


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
