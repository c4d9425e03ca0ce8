"""How reminders look: the card of one firing, and the list of pending reminders with Cancel buttons."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from kernel.messages import Button, Card, CardField
from agents.reminders import Reminder

# a card's buttons beyond this are dropped by some channels; the list says how to cancel the rest
MAX_CANCEL_BUTTONS = 9


def reminder_card(reminder: Reminder, tz: str, seq: int | None = None, note: str = "") -> Card:
    """The card of one firing (seq = how many snoozes came before it, or a recurring reminder's
    occurrence time): live buttons while pending, `note` in their place once answered."""
    seq = reminder.snoozes if seq is None else seq
    zone = ZoneInfo(reminder.repeat.tz if reminder.repeat else tz)
    when = (datetime.fromtimestamp(seq, timezone.utc) if reminder.repeat else reminder.local_due(tz)).astimezone(zone)
    live = reminder.status == "pending" and not note
    snoozes = (("Snooze 15 min", 15), ("Snooze 1 h", 60))
    if reminder.repeat is None:
        snoozes += (("Tomorrow", 24 * 60),)
    buttons: tuple[Button, ...] = ()
    if live:
        buttons = (
            *(Button(label=label, action="reminder.snooze", value=f"{reminder.id}:{minutes}:{seq}") for label, minutes in snoozes),
            Button(label="Done", action="reminder.done", value=f"{reminder.id}:{seq}", style="primary"),
        )
        if reminder.repeat is not None:
            # the occurrence in the value: the click redraws this card as stopped
            buttons += (Button(label="Stop repeating", action="reminder.cancel", value=f"{reminder.id}:{seq}", style="danger"),)
    fields = [CardField(label="What", value=reminder.what), CardField(label="When", value=f"{when:%a %d %b %H:%M} {when.tzname()}")]
    if reminder.repeat is not None:
        fields.append(CardField(label="Repeats", value=reminder.repeat.label()))
    return Card(
        card_id=f"reminder-{reminder.id}-{seq}",
        title="⏰ Reminder",
        fields=tuple(fields),
        buttons=buttons,
        resolution=note or {"done": "Done ✓", "cancelled": "Cancelled"}.get(reminder.status, ""),
    )


def list_text(reminders: list[Reminder], tz: str) -> str:
    if not reminders:
        return "No reminders pending. Set one with e.g. /remind call Ana Friday 10am."
    lines = ["Your reminders:"]
    lines += [f"{r.number or '•'}. {r.what} — {r.when(tz)}" for r in reminders]
    lines.append("Cancel one with /reminders cancel N.")
    return "\n".join(lines)


def list_card(reminders: list[Reminder], card_id: str) -> Card | None:
    """Cancel buttons for the first reminders of the list (by their number)."""
    if not reminders:
        return None
    buttons = tuple(Button(label=f"Cancel {r.number}. {r.what}"[:40], action="reminder.cancel", value=r.id, style="danger")
                    for r in reminders[:MAX_CANCEL_BUTTONS])
    return Card(card_id=card_id, title="Reminders", buttons=buttons)
