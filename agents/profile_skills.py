"""The operator's clock, changeable in chat: "my time zone is Europe/Madrid", /timezone, "I work 9 to 6",
/hours 9-18; and the one question about it, asked the first time a request with a time comes from an
operator whose channel gives no zone (Telegram).

Registered in agents/skills.py (SKILLS) like every other skill."""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from agents.conversation import ask
from agents.skill_context import Skill, SkillContext
from agents.zones import hours_in, zone_in, zone_named
from kernel.messages import Intent, Outcome

ZONE_QUESTION = "What's your time zone? e.g. Europe/Madrid — I use it for times you give me."
# the slot the answer fills on the request that was waiting for it (no skill has a slot of this name)
ZONE_SLOT = "operator_timezone"
# what profiles.ask_once remembers as asked
ASKED = "timezone"
# the skills whose requests carry times the operator gives
QUESTION = re.compile(r"\?|\b(?:what|whats|what's|which|show|tell me|do you have)\b", re.I)
TIMED_SKILLS = ("remind", "schedule", "agenda", "move_meeting", "cancel_meeting")
# channels that never say the sender's zone (the console's browser and Slack's users.info do)
SILENT_CHANNELS = ("telegram",)


def _now_in(zone: str) -> str:
    return datetime.now(ZoneInfo(zone)).strftime("%H:%M")


def _hours(start: int, end: int) -> str:
    return f"{start}:00–{end}:00"


def timezone(ctx: SkillContext, intent: Intent) -> Outcome:
    """Set (or show) the operator's time zone and working hours, from a command or their words."""
    if ctx.profiles is None:
        return Outcome(text="I can't keep your time zone in this process.", ok=False)
    if intent.slots.get("show"):
        return _show(ctx)
    words = "" if intent.source == "command" else intent.text
    zone = zone_named(str(intent.slots.get("zone") or "")) or zone_in(words)
    hours = (int(intent.slots["start"]), int(intent.slots["end"])) if "start" in intent.slots else hours_in(words)
    if zone is None and hours is None:
        if QUESTION.search(words):
            return _show(ctx)  # "which time zone do you have for me?"
        return ask(ctx, intent, slot="zone", prompt="Which time zone? A city or an IANA name, e.g. Europe/Madrid.", kind="zone")
    lines = []
    if zone is not None:
        ctx.profiles.set_timezone(ctx.actor, zone, origin="operator")
        ctx.events.record(ctx.trace_id, "profile.timezone", actor=ctx.actor, timezone=zone)
        lines.append(f"Got it: your time zone is *{zone}* (it's {_now_in(zone)} there now). I read the times you give me in it.")
    if hours is not None:
        ctx.profiles.set_hours(ctx.actor, *hours)
        ctx.events.record(ctx.trace_id, "profile.hours", actor=ctx.actor, start=hours[0], end=hours[1])
        lines.append(f"Your working hours are *{_hours(*hours)}*; I suggest meeting times within them.")
    return Outcome(text="\n".join(lines))


def _show(ctx: SkillContext) -> Outcome:
    assert ctx.profiles is not None
    profile = ctx.profiles.get(ctx.actor)
    if profile.timezone:
        source = "you told me" if profile.timezone_from == "operator" else "from your browser or Slack"
        zone = f"Your time zone is *{profile.timezone}* ({source}; it's {_now_in(profile.timezone)} there now)."
    else:
        zone = f"I don't know your time zone yet, so I use *{ctx.timezone}*."
    hours = f"Working hours: *{_hours(*ctx.work_hours)}*."
    return Outcome(text=f"{zone} {hours}\nChange them with /timezone Europe/Madrid and /hours 9-18, or just tell me.")


def _unknown_zone(ctx: SkillContext) -> bool:
    """Nobody has said the operator's zone: not them, not their channel, not TIMEZONE (UTC is its default)."""
    return (ctx.channel in SILENT_CHANNELS and ctx.profiles is not None and ctx.timezone == "UTC"
            and ctx.profiles.get(ctx.actor).timezone is None)


def zone_first(skill: Skill) -> Skill:
    """`skill`, but the first request with a time from an operator of unknown zone asks for it (once)."""

    def run(ctx: SkillContext, intent: Intent) -> Outcome:
        answer = intent.slots.get(ZONE_SLOT)
        if answer is not None and ctx.profiles is not None:
            zone = zone_named(str(answer))
            rest = intent.model_copy(update={"slots": {k: v for k, v in intent.slots.items() if k != ZONE_SLOT}})
            if zone is None:
                return skill(ctx, rest)
            ctx.profiles.set_timezone(ctx.actor, zone, origin="operator")
            ctx.events.record(ctx.trace_id, "profile.timezone", actor=ctx.actor, timezone=zone)
            outcome = skill(replace(ctx, timezone=zone), rest)
            return outcome.model_copy(update={"text": f"Thanks — I'll use {zone} for your times.\n{outcome.text}"})
        if _unknown_zone(ctx) and ctx.profiles is not None and ctx.profiles.ask_once(ctx.actor, ASKED):
            return ask(ctx, intent, slot=ZONE_SLOT, prompt=ZONE_QUESTION, kind="zone")
        return skill(ctx, intent)

    return run
