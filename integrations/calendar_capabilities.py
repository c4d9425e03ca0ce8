"""The calendar's capabilities (agenda, find, create, move, cancel) over one CalendarClient, each with how the
operator sees it: a move's card shows the event before → after, a cancel's names the event and its time, both
read from the calendar itself rather than from what the plan says."""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from pydantic import BaseModel

from integrations.calendar import CalendarClient
from integrations.calendar_models import (
    Agenda, AgendaRequest, CalendarEvent, CancelEvent, CreateEvent, EventCancelled, EventCreated, EventMoved,
    FindEvents, FoundEvents, MoveEvent, span,
)
from integrations.capability import Capability, EffectContext, RetryPolicy, RiskClass
from kernel.settings_models import CalDavSettings

CALDAV_RETRY = RetryPolicy(attempts=3, base_s=0.5, max_s=10.0, jitter=0.5)


def event_preview(args: Mapping[str, Any]) -> str:
    """The event's fields as given, one a line, the empty ones left out."""
    return "\n".join(f"{k}: {v}" for k, v in args.items() if v not in (None, "", []))


def _described(event: CalendarEvent) -> list[str]:
    lines = [f"Event: {event.summary or '(no title)'}"]
    if event.attendees:
        lines.append("With: " + ", ".join(event.attendees))
    if event.location:
        lines.append(f"Where: {event.location}")
    return lines


def _current(client: CalendarClient, uid: str, timezone: str | None) -> CalendarEvent | None:
    found = client.search(FindEvents(uid=uid, timezone=timezone)).events
    return found[0] if found else None


def move_preview(client: CalendarClient, args: Mapping[str, Any]) -> str:
    """Before → after, from the event as the calendar holds it now."""
    try:
        request = MoveEvent.model_validate(dict(args))
        event = _current(client, request.uid, request.timezone)
    except Exception:  # a card must still show: the plain arguments say what will be asked of the server
        return event_preview(args)
    if event is None:
        return event_preview(args) + "\n(no event with this UID in the calendar now)"
    zone = client.zone(request.timezone)
    start = request.start.replace(tzinfo=zone) if request.start.tzinfo is None else request.start.astimezone(zone)
    end = request.end if request.end is not None else start + (event.end - event.start)
    end = end.replace(tzinfo=zone) if end.tzinfo is None else end.astimezone(zone)
    return "\n".join([*_described(event), f"Before: {event.span()}", f"After: {span(start, end)}", f"Time zone: {zone.key}"])


def cancel_preview(client: CalendarClient, args: Mapping[str, Any]) -> str:
    """The event that will be deleted, and when it is."""
    try:
        request = CancelEvent.model_validate(dict(args))
        event = _current(client, request.uid, None)
    except Exception:  # a card must still show: the plain arguments say what will be asked of the server
        return event_preview(args)
    if event is None:
        return event_preview(args) + "\n(no event with this UID in the calendar now: nothing to cancel)"
    return "\n".join([*_described(event), f"When: {event.span()}", f"Time zone: {client.zone(None).key}",
                      "Deleted from the calendar; this cannot be undone."])


def moved_summary(args: Mapping[str, Any], output: Mapping[str, Any]) -> str:
    event = CalendarEvent.model_validate(output["event"])
    was = span(dt.datetime.fromisoformat(str(output["previous_start"])), dt.datetime.fromisoformat(str(output["previous_end"])))
    return f"Moved “{event.summary}” from {was} to {event.span()}."


def created_summary(args: Mapping[str, Any], output: Mapping[str, Any]) -> str:
    event = CalendarEvent.model_validate(output["event"])
    invited = f"; invited {', '.join(event.attendees)}" if event.attendees else ""
    return f"Added “{event.summary}” to your calendar: {event.span()}{invited}."


def cancelled_summary(args: Mapping[str, Any], output: Mapping[str, Any]) -> str:
    if not output.get("cancelled"):
        return "That event was already gone from the calendar; nothing changed."
    return f"Cancelled “{output.get('summary') or args.get('uid')}”; it is no longer in your calendar."


def cancel_created(args: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any]:
    """A created event is undone by cancelling it (its UID is in the output)."""
    return {"uid": str(output["event"]["uid"])}


def move_back(args: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any]:
    """A moved event is undone by moving it back to where it was (the output says where)."""
    return {"uid": str(output["event"]["uid"]), "start": output["previous_start"], "end": output["previous_end"]}


def calendar_capabilities(config: CalDavSettings, timezone: str) -> list[Capability]:
    client = CalendarClient(config, timezone)

    def agenda(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return client.agenda(AgendaRequest.model_validate(args.model_dump()))

    def find(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return client.search(FindEvents.model_validate(args.model_dump()))

    def create(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return client.create(CreateEvent.model_validate(args.model_dump()), ctx.idempotency_key)

    def move(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return client.move(MoveEvent.model_validate(args.model_dump()))

    def cancel(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return client.cancel(CancelEvent.model_validate(args.model_dump()))

    common: dict[str, Any] = dict(retry=CALDAV_RETRY, health=client.health)
    return [
        Capability(
            name="calendar.agenda", description="List the events of one day, in the operator's time zone.",
            input_model=AgendaRequest, output_model=Agenda, risk=RiskClass.READ, side_effect=False, reversible=True,
            compensation=None, idempotency="ledger", run=agenda, preview=event_preview, **common,
        ),
        Capability(
            name="calendar.find", description="Find events between two moments (from now, 30 days, by default) whose title, "
                                              "description, location or attendees contain every word of a query.",
            input_model=FindEvents, output_model=FoundEvents, risk=RiskClass.READ, side_effect=False, reversible=True,
            compensation=None, idempotency="ledger", run=find, preview=event_preview, **common,
        ),
        Capability(
            name="calendar.create", description="Create an event (and invite attendees, where the server sends invitations).",
            input_model=CreateEvent, output_model=EventCreated, risk=RiskClass.EXTERNAL_WRITE, side_effect=True,
            reversible=True, compensation="calendar.cancel",
            # the UID (and so the event's URL) comes from our key: a repeat rewrites the same event
            idempotency="natural", run=create, recipient_fields=("attendees",), title="Add this event?", preview=event_preview,
            summary=created_summary, undo=cancel_created, **common,
        ),
        Capability(
            name="calendar.move", description="Move an event to a new time, keeping its length unless an end is given.",
            input_model=MoveEvent, output_model=EventMoved, risk=RiskClass.EXTERNAL_WRITE, side_effect=True,
            # undone by moving it back to previous_start/previous_end from the output
            reversible=True, compensation="calendar.move",
            # setting the same times twice is the same as once
            idempotency="natural", run=move, title="Move this event?", target_fields=("uid",),
            preview=lambda args: move_preview(client, args), summary=moved_summary, undo=move_back, **common,
        ),
        Capability(
            name="calendar.cancel", description="Cancel (delete) an event by UID.",
            input_model=CancelEvent, output_model=EventCancelled, risk=RiskClass.EXTERNAL_WRITE, side_effect=True,
            # attendees are told and the event is gone: not something to undo silently
            reversible=False, compensation=None,
            # cancelling what is already gone changes nothing
            idempotency="natural", run=cancel, title="Cancel this event?", target_fields=("uid",),
            preview=lambda args: cancel_preview(client, args), summary=cancelled_summary, **common,
        ),
    ]
