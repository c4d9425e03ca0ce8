"""Asking instead of guessing: a card offering the two likeliest intents, and carrying out the one
clicked on the original text. The offer is kept in the event log, so a click needs no other state."""
from __future__ import annotations

import re
from typing import Any, Mapping

from kernel.messages import Button, Card, CardField, Intent, Outcome
from kernel.keys import Keys
from agents.skill_context import Skill, SkillContext

ACTION = "intent.choose"
NEITHER = "-"
CLAIM_TTL_S = 90 * 86_400

SkillLookup = Mapping[str, Skill]
# where a question points instead of repeating the whole of /help
HELP_POINTER = "/help lists what I can do."


def _card(trace_id: str, text: str, candidates: list[dict[str, Any]], resolution: str = "") -> Card:
    buttons = tuple(
        Button(label=str(c["label"]), action=ACTION, value=f"{trace_id}:{c['intent']}", style="primary" if i == 0 else "default")
        for i, c in enumerate(candidates)
    )
    return Card(
        card_id=f"clarify-{trace_id}",
        title="Did you mean…",
        fields=(CardField(label="You said", value=text[:300]),),
        buttons=() if resolution else (*buttons, Button(label="Neither", action=ACTION, value=f"{trace_id}:{NEITHER}")),
        resolution=resolution,
    )


def ask(ctx: SkillContext, intent: Intent) -> Outcome:
    """The clarifying question; remembers what was offered under this request's trace."""
    candidates = list(intent.slots.get("candidates") or [])
    ctx.events.record(ctx.trace_id, "intent.clarify", actor="deputy", text=intent.text[:1000], candidates=candidates,
                      reason=intent.slots.get("reason", ""))
    if not candidates:
        return Outcome(text=f"I'm not sure what you mean. {HELP_POINTER}")
    options = " or ".join(f"“{c['label'].lower()}”" for c in candidates)
    text = f"I'm not sure what you mean. Did you want me to {options}? Pick one below, or rephrase. {HELP_POINTER}"
    return Outcome(text=text, card=_card(ctx.trace_id, intent.text, candidates))


def choose(ctx: SkillContext, value: str, skills: SkillLookup) -> Outcome:
    """A click on a clarification button: carry out that intent on the original text, once."""
    match = re.fullmatch(r"([0-9a-f]{6,32}):([a-z0-9_]+|-)", value)
    if not match:
        return Outcome(text="That button is not valid any more.", ok=False)
    asked_trace, picked = match.groups()
    offers = [e for e in ctx.events.timeline(asked_trace) if e.kind == "intent.clarify"]
    if not offers:
        return Outcome(text="That button is not valid any more.", ok=False)
    offer = offers[-1].data
    text, candidates = str(offer.get("text", "")), list(offer.get("candidates") or [])
    chosen = next((c for c in candidates if c.get("intent") == picked), None)
    if picked != NEITHER and chosen is None:
        return Outcome(text="That button is not valid any more.", ok=False)
    label = chosen["label"] if chosen else "Neither"
    # first click wins: a second click (or a second person) must not run the intent again
    claim = Keys(ctx.workspace)("clarified", asked_trace)
    redis = ctx.events.redis
    if not redis.set(claim, picked, nx=True, ex=CLAIM_TTL_S):
        earlier = redis.get(claim)
        earlier_name = earlier.decode() if isinstance(earlier, bytes) else str(earlier)
        earlier_label = next((c["label"] for c in candidates if c.get("intent") == earlier_name), "Neither")
        return Outcome(text=f"Already decided: {earlier_label}.", card=_card(asked_trace, text, candidates, f"Chose: {earlier_label}"))
    ctx.events.record(ctx.trace_id, "intent.chosen", actor=ctx.actor, asked_trace=asked_trace, intent=picked)
    if chosen is None:
        return Outcome(text="OK, I'll leave that. Tell me again in other words, or use a command.",
                       card=_card(asked_trace, text, candidates, "Neither"))
    intent = Intent(name=str(chosen["skill"]), text=text, slots=dict(chosen.get("slots") or {}),
                    confidence=float(chosen.get("probability", 0.0)), source="clarified")
    skill = skills.get(intent.name) or skills["help"]
    outcome = skill(ctx, intent)
    return Outcome(text=outcome.text, card=_card(asked_trace, text, candidates, f"Chose: {label}"), ok=outcome.ok)
