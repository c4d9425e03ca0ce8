"""Forgetting from chat: /forget TEXT (or "forget what I told you about …") shows what would be removed,
per store with a few examples, and removes it on Forget; `/project NAME retention 90d` sets how long a
project's memories are kept."""
from __future__ import annotations

import re

from kernel.messages import Button, Card, CardField, Intent, Outcome
from agents.skill_context import SkillContext
from memory.forgetting import Sweep

CONFIRM, KEEP = "forget.confirm", "forget.keep"
CHANNELS = {"slack": "Slack", "telegram": "Telegram"}
RETENTION = re.compile(r"^(?P<project>[\w.-]+)\s+retention\s+(?P<days>\d+)\s*(?:d|days?)?$|^(?P<off>[\w.-]+)\s+retention\s+(?:off|forever|none)$",
                       re.IGNORECASE)


# "forget what I told you about Bob's wine": the words that say where it was said are not part of it
LEAD_IN = re.compile(r"^(?:(?:what|everything|anything|all)\s+(?:(?:i|we)\s+(?:told|said|gave|sent)(?:\s+(?:you|to you))?\s+)?"
                     r"(?:about|on|regarding|of)\s+|(?:the\s+)?notes?\s+(?:about|on)\s+|about\s+)", re.IGNORECASE)


def forget(ctx: SkillContext, intent: Intent) -> Outcome:
    phrase = str(intent.slots.get("query") or intent.text or "").strip()
    if intent.source != "command":
        phrase = LEAD_IN.sub("", phrase).strip(" .?!")
    if ctx.forgetting is None:
        return Outcome(text="Forgetting is not available here; run `deputy forget TEXT` on the server.", ok=False)
    if not phrase:
        return Outcome(text="What should I forget? Say it the way you told me, e.g. /forget Bob's wine.", ok=False)
    sweep = ctx.forgetting.preview(phrase)
    request_id = ctx.forgetting.hold(phrase, ctx.actor)
    card = Card(
        card_id=f"forget-{request_id}", title="Forget this everywhere?", fields=_fields(sweep),
        preview="\n".join(f"• {text[:120]}" for text in sweep.examples), rationale=_not_removable(sweep),
        buttons=(Button(label="Forget", action=CONFIRM, value=request_id, style="danger"),
                 Button(label="Keep", action=KEEP, value=request_id)),
    )
    what = f"{sweep.total} record(s)" if sweep.total else "no record beyond this conversation"
    return Outcome(text=f"I found {what} that mention it. Forget them everywhere? Nothing is removed until you press Forget.",
                   card=card)


def confirm(ctx: SkillContext, value: str) -> Outcome:
    held = ctx.forgetting.take(value) if ctx.forgetting is not None else None
    if held is None:
        return Outcome(text="That request has expired or was already answered; ask again with /forget.", ok=False)
    _, phrase = held
    sweep = ctx.forgetting.forget(phrase, actor=ctx.actor, trace_id=ctx.trace_id)  # type: ignore[union-attr]
    done = f"Forgotten by {ctx.actor}: " + (", ".join(f"{n} from {store}" for store, n in sweep.stores.items()) or "nothing was left")
    card = Card(card_id=f"forget-{value}", title="Forgotten", fields=_fields(sweep), rationale=_not_removable(sweep),
                resolution=done)
    return Outcome(text=done + ".", card=card)


def keep(ctx: SkillContext, value: str) -> Outcome:
    if ctx.forgetting is not None:
        ctx.forgetting.take(value)
    card = Card(card_id=f"forget-{value}", title="Kept", resolution=f"Kept by {ctx.actor}: nothing was removed")
    return Outcome(text="Kept: nothing was removed.", card=card)


def project(ctx: SkillContext, intent: Intent) -> Outcome:
    """`/project NAME retention 90d` (or `off`): how long NAME's memories are kept."""
    match = RETENTION.match(" ".join(str(intent.slots.get("text") or intent.text).split()))
    if match is None or ctx.workspaces is None:
        return Outcome(text="Say it as /project NAME retention 90d (or /project NAME retention off).", ok=False)
    name = match.group("project") or match.group("off")
    days = int(match.group("days")) if match.group("days") else None
    if days == 0:
        return Outcome(text="Retention is at least 1 day; /project NAME retention off keeps memories for good.", ok=False)
    updated = ctx.workspaces.set_retention(ctx.workspace, name, days)
    ctx.events.record(ctx.trace_id, "project.retention", actor=ctx.actor, project=updated.name, retention_days=days)
    if days is None:
        return Outcome(text=f"Project {updated.name}: memories are kept until you forget them.")
    return Outcome(text=f"Project {updated.name}: memories older than {days} days are deleted by the hourly sweep.")


def _fields(sweep: Sweep) -> tuple[CardField, ...]:
    return tuple(CardField(label=store, value=str(n)) for store, n in sweep.stores.items())


def _not_removable(sweep: Sweep) -> str:
    if not sweep.delivered:
        return ""
    where = ", ".join(f"{n} on {CHANNELS.get(c, c)}" for c, n in sweep.delivered.items())
    return f"Not removable: messages already delivered ({where}) cannot be unsent; delete them there."
