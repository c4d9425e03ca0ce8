"""Reminder jobs: post a due reminder in its thread, once."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from agents.reminder_cards import reminder_card
from kernel.messages import Reply
from jobs.runtime import Runtime, current_runtime

log = logging.getLogger("deputy.reminders")


def fire_reminder(payload: dict[str, Any]) -> dict[str, Any]:
    """Post a due reminder in the thread it was asked in, with Snooze / Done buttons; once per firing
    (a one-off's due time, each occurrence of a recurring one)."""
    rt = current_runtime()
    return fire(rt, str(payload["reminder_id"]), float(payload["due"]))


def fire(rt: Runtime, reminder_id: str, due: float) -> dict[str, Any]:
    book = rt.reminders
    reminder = book.claim_firing(reminder_id, due)
    if reminder is None:
        return {"reminder_id": reminder_id, "fired": False}
    trace_id = reminder.trace_id or reminder_id
    # the reply id names the firing: however many jobs claim it, the outbox queues one message
    seq = int(due) if reminder.repeat else reminder.snoozes
    reply = Reply(
        reply_id=f"reminder-{reminder_id}-at{int(due)}", channel=reminder.channel, thread_id=reminder.thread_id,
        text=f"⏰ Reminder: {reminder.what}", card=reminder_card(reminder, book.tz, seq), trace_id=trace_id,
        reply_to=reminder.reply_to,
    )
    queued = rt.outbox.put(reply)
    book.posted(reminder_id, due)
    if queued:
        rt.events.record(trace_id, "reminder.fired", actor="worker", reminder_id=reminder_id, what=reminder.what,
                         occurrence=due, late_s=round(datetime.now().timestamp() - due, 1))
        rt.events.record(trace_id, "reply.queued", actor="worker", reply_id=reply.reply_id, text=reply.text[:200])
    return {"reminder_id": reminder_id, "fired": queued}
