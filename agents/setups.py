"""What enables each capability family: SETUPS is the one table of the settings that turn a connector (or the
language model) on, and the README section that explains them. agents/setup_hints.py answers with it when a request
needs what is not set up; the inspector names it when a plan uses a capability this process lacks."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterable

# what a request needs that is no capability: a language model (OPENAI_BASE_URL)
MODEL = "model"


@dataclass(frozen=True)
class Setup:
    """One family of capabilities and the settings that turn it on."""

    family: str
    # capability names, or a prefix ending in "." for all of a connector's capabilities
    capabilities: tuple[str, ...]
    required: tuple[str, ...]
    # usually set with the required ones, depending on the server
    optional: tuple[str, ...] = ()
    section: str = "Connectors: email, calendar, webhooks"
    anchor: str = "connectors-email-calendar-webhooks"
    # how a goal that obviously needs this family opens ("email Ana …", "schedule a call …"), as a regular expression
    cues: str = ""

    def covers(self, capability: str) -> bool:
        return any(capability == c or (c.endswith(".") and capability.startswith(c)) for c in self.capabilities)

    @property
    def settings(self) -> str:
        """The settings to set, as the operator types them: "SMTP_HOST and SMTP_FROM (with SMTP_PORT, … as needed)"."""
        names = self.needs
        return f"{names} (with {', '.join(self.optional)} as your server needs)" if self.optional else names

    @property
    def readme(self) -> str:
        return f"README → {self.section}"

    @property
    def needs(self) -> str:
        """The settings it cannot do without: "SMTP_HOST and SMTP_FROM"."""
        return " and ".join(self.required) if len(self.required) < 3 else ", ".join(self.required)


# The one table of what enables each capability family (kernel/settings.py reads these names).
SETUPS: tuple[Setup, ...] = (
    Setup("email", ("email.send",), ("SMTP_HOST", "SMTP_FROM"), ("SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD"),
          cues=r"(e-?mail|mail|send (an? )?(e-?mail|mail) to|write (an? )?(e-?mail )?to|reply to)\b"),
    Setup("calendar", ("calendar.",), ("CALDAV_URL", "CALDAV_USERNAME", "CALDAV_PASSWORD"), ("CALDAV_CALENDAR",),
          cues=r"(schedule|reschedule|book (a|an|the) (call|meeting|slot)|put .{1,80} (in|on|into) my calendar)\b"),
    Setup("incoming email", ("email.read_inbox", "email.triage_inbox"), ("IMAP_HOST", "IMAP_USERNAME", "IMAP_PASSWORD"),
          ("IMAP_PORT", "IMAP_SECURITY", "IMAP_FOLDER")),
    Setup("webhooks", ("webhook.",), ("OUTBOUND_WEBHOOKS",)),
    Setup("a language model", (MODEL,), ("OPENAI_BASE_URL",), ("OPENAI_API_KEY", "OPENAI_MODEL"),
          section="Configuration", anchor="configuration"),
)


def setup_for(capability: str) -> Setup | None:
    return next((s for s in SETUPS if s.covers(capability)), None)


def enabling(capability: str) -> str:
    """"set SMTP_HOST and SMTP_FROM (…; README → Connectors: …)", or "" for a capability no setting enables."""
    setup = setup_for(capability)
    return f"set {setup.settings} ({setup.readme})" if setup is not None else ""


def missing_families(have: Collection[str]) -> list[Setup]:
    """The families none of whose capabilities is configured."""
    return [s for s in SETUPS if not any(s.covers(name) for name in have)]


def needed_by(goal: str) -> list[Setup]:
    """The families a goal obviously needs, by how it opens: "email Ana that …" needs email."""
    text = re.sub(r"^(please|can you|could you|would you)\s+", "", goal.strip().lower())
    return [s for s in SETUPS if s.cues and re.match(s.cues, text)]


def left_out(allowed: Iterable[str], have: Collection[str]) -> list[str]:
    """Why each of `allowed` that this process lacks is missing, a family at a time:
    "email isn't configured (email.send): set SMTP_HOST and SMTP_FROM"."""
    missing: dict[Setup, list[str]] = {}
    for name in allowed:
        setup = setup_for(name)
        if name not in have and setup is not None:
            missing.setdefault(setup, []).append(name)
    return [f"{s.family} {'are' if s.family.endswith('s') else 'is'}n't configured ({', '.join(names)}): set {s.needs}"
            for s, names in missing.items()]
