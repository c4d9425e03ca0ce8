"""Skills for reminders: /remind (once or recurring), /reminders (list, cancel), and the buttons on their cards.

Registered in agents/skills.py (SKILLS and DECISIONS) like every other skill."""
from __future__ import annotations

from datetime import datetime, timezone

from kernel.messages import Intent, Outcome
from agents.picking import best_matches, number_in
from agents.reminder_cards import list_card, list_text, reminder_card
from agents.reminders import Draft, Reminder, ReminderBook, ReminderError, parse
from agents.conversation import ask
from agents.skill_context import SkillContext

UNAVAILABLE = Outcome(text="Reminders are not available in this process.", ok=False)
STALE = Outcome(text="That button is not valid any more.", ok=False)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _tz(ctx: SkillContext, book: ReminderBook) -> str:
    # the operator's own zone once the context carries it, else the workspace's
    return str(getattr(ctx, "timezone", None) or book.tz)


def remind(ctx: SkillContext, intent: Intent) -> Outcome:
    if ctx.reminders is None:
        return UNAVAILABLE
    tz = _tz(ctx, ctx.reminders)
    # the whole request: the parser finds the time in it and drops "remind me to"
    text = intent.text or str(intent.slots.get("text") or "")
    if intent.slots.get("when_answer"):
        text = f"{text} {intent.slots['when_answer']}"
    try:
        draft = parse(text, tz, _now())
    except ReminderError as err:
        draft = _from_slots(intent)
        if draft is None and str(err).startswith("I could not find a time") and not intent.slots.get("when_answer"):
            # "remind me to chase the invoice": ask when, as a person would
            return ask(ctx, intent, "when_answer", "When should I remind you? (e.g. tomorrow at 9, Friday 3pm, every Monday at 9)")
        if draft is None:
            return Outcome(text=str(err), ok=False)
    reminder = ctx.reminders.add(draft, ctx.channel, ctx.thread_id, ctx.reply_to, ctx.actor, ctx.trace_id)
    when = reminder.local_due(tz)
    if reminder.repeat is not None:
        return Outcome(text=f"OK, I'll remind you to {reminder.what} {reminder.repeat.label()} ({when.tzname()}), here in "
                            f"this thread; the first is {when:%a %d %b}. (reminder {reminder.number}; "
                            f"/reminders cancel {reminder.number} stops it)")
    return Outcome(text=f"OK, I'll remind you to {reminder.what} on {when:%a %d %b at %H:%M} ({when.tzname()}), here in this thread.")


def _from_slots(intent: Intent) -> Draft | None:
    """A time the intent recogniser already resolved (an ISO date-time in slots["when"])."""
    when, what = intent.slots.get("when"), str(intent.slots.get("text") or "").strip()
    if isinstance(when, dict):
        when = when.get("value") or when.get("start")
    try:
        due = datetime.fromisoformat(str(when)) if when else None
    except ValueError:
        return None
    if due is None or due.tzinfo is None or not what or due <= _now():
        return None
    return Draft(what=what, due=due)


def reminders(ctx: SkillContext, intent: Intent) -> Outcome:
    """List pending reminders (action=list), or cancel one by its number or its words (action=cancel)."""
    if ctx.reminders is None:
        return UNAVAILABLE
    book, tz = ctx.reminders, _tz(ctx, ctx.reminders)
    upcoming = sorted(book.pending(since=_now().timestamp()), key=lambda r: r.due)
    if intent.slots.get("action") != "cancel":
        return Outcome(text=list_text(upcoming, tz), card=list_card(upcoming, f"reminders-{ctx.trace_id}"))
    query = str(intent.slots.get("number") or intent.slots.get("query") or intent.text or "").strip()
    found = _pick(book.pending(), query)
    if not found:
        listed = list_text(upcoming, tz) if upcoming else "You have no reminders pending."
        return Outcome(text=f"I could not find a reminder matching '{query}'.\n{listed}", ok=False)
    if len(found) > 1:
        return Outcome(text="Which one? " + "; ".join(f"{r.number}. {r.what}" for r in found),
                       card=list_card(found, f"reminders-{ctx.trace_id}"))
    return _cancelled(book, found[0].id, tz)


def _pick(pending: list[Reminder], query: str) -> list[Reminder]:
    number = number_in(query)
    if number is not None:
        return [r for r in pending if r.number == number]
    return best_matches(query, pending, lambda r: r.what)


def _cancelled(book: ReminderBook, reminder_id: str, tz: str) -> Outcome:
    reminder, closed = book.cancel(reminder_id)
    if reminder is None:
        return Outcome(text="I no longer have that reminder.", ok=False)
    if not closed:
        return Outcome(text=f"That reminder was already {reminder.status}.")
    future = "No more reminders" if reminder.repeat else "I won't remind you"
    return Outcome(text=f"Cancelled: {reminder.what} ({reminder.when(tz)}). {future} about it.")


def cancel_reminder(ctx: SkillContext, value: str) -> Outcome:
    """The Cancel button of the list (value: the reminder id) or Stop repeating on a firing (id:occurrence)."""
    reminder_id, _, seq = value.partition(":")
    if ctx.reminders is None or (seq and not seq.isdigit()):
        return STALE
    outcome = _cancelled(ctx.reminders, reminder_id, _tz(ctx, ctx.reminders))
    reminder = ctx.reminders.get(reminder_id)
    if not seq or reminder is None:
        return outcome
    return outcome.model_copy(update={"card": reminder_card(reminder, _tz(ctx, ctx.reminders), int(seq), note="Stopped repeating")})


def snooze_reminder(ctx: SkillContext, value: str) -> Outcome:
    parts = value.split(":")
    if ctx.reminders is None or len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return STALE
    reminder_id, minutes, seq = parts[0], int(parts[1]), int(parts[2])
    book, tz = ctx.reminders, _tz(ctx, ctx.reminders)
    snoozed_from = book.get(reminder_id)
    reminder, snoozed = book.snooze(reminder_id, minutes, _now(), seq)
    if reminder is None or snoozed_from is None:
        return Outcome(text="I no longer have that reminder.", ok=False)
    when = reminder.local_due(tz)
    if not snoozed:
        # a plain message: the card already shows what the first click did
        return Outcome(text=f"That reminder was already {'snoozed' if reminder.status == 'pending' else reminder.status}.")
    return Outcome(text=f"Snoozed: I'll remind you again {when:%a at %H:%M}.",
                   card=reminder_card(snoozed_from, tz, seq, note=f"Snoozed until {when:%a %H:%M}"))


def finish_reminder(ctx: SkillContext, value: str) -> Outcome:
    reminder_id, _, seq = value.partition(":")
    if ctx.reminders is None or not seq.isdigit():
        return STALE
    book, tz = ctx.reminders, _tz(ctx, ctx.reminders)
    reminder = book.get(reminder_id)
    if reminder is None:
        return Outcome(text="I no longer have that reminder.", ok=False)
    if reminder.status != "pending":
        # a card left from before the reminder was done or cancelled: say so, and show it closed
        return Outcome(text=f"That reminder was already {reminder.status}.", card=reminder_card(reminder, tz, int(seq)))
    if reminder.repeat is not None:
        # Done answers this occurrence; the series goes on until it is cancelled
        fresh = book.acknowledge(reminder_id, int(seq))
        text = f"Done: {reminder.what}. Next: {reminder.when(tz)}." if fresh else "That reminder was already done."
        return Outcome(text=text, card=reminder_card(reminder, tz, int(seq), note="Done ✓"))
    reminder, closed = book.done(reminder_id)
    assert reminder is not None
    return Outcome(text=f"Done: {reminder.what}" if closed else "That reminder was already done.",
                   card=reminder_card(reminder, tz, int(seq), note="Done ✓"))
