"""The daily digest jobs: a frequent cron tick that sends today's digest once it is due.

Exactly one digest per workspace and local day: the tick claims (workspace, local date) atomically
before it builds anything, so several cron processes, restarts and retries still send one. Every
reply id is derived from that claim too, so even a crash halfway through cannot post twice (the
outbox ignores a reply id it has queued before). A tick after a missed time sends the digest late
and says so; a whole day without Deputy running is folded into the next digest."""
from __future__ import annotations

import base64

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from redis import Redis

from agents.approval_cards import approval_card
from agents.approvals import ApprovalStore
from agents.digest import Agenda, AgendaItem, Digest, DigestBuilder, Mark
from kernel.messages import Card
from kernel.messages import Reply
from jobs.card_copies import CardCopies, CardCopy
from integrations.crm import crm_for
from jobs.runtime import Runtime, current_runtime
from kernel.keys import Keys
from kernel.settings_models import CalDavSettings

log = logging.getLogger("deputy.digest")

CONSOLE_THREAD = "digest"
# a tick this long after the digest time is a late digest, and the digest says so
LATE_AFTER = timedelta(minutes=10)
CLAIM_TTL_S = 600
KEEP_S = 40 * 86_400


@dataclass(frozen=True)
class Target:
    channel: str
    thread_id: str
    reply_to: dict[str, str] = field(default_factory=dict)


# --- where the operator talks, per platform

def remember_thread(redis: Redis, workspace: str, channel: str, thread_id: str, reply_to: dict[str, str]) -> None:
    """The last thread the operator wrote from on a platform: the digest goes there on Slack and Telegram."""
    redis.hset(Keys(workspace)("digest", "threads"), channel, json.dumps({"thread_id": thread_id, "reply_to": reply_to}))


def targets(redis: Redis, workspace: str, channels: Sequence[str]) -> tuple[list[Target], list[str]]:
    """(where to send, channels skipped because the operator has never written from them)."""
    known = redis.hgetall(Keys(workspace)("digest", "threads"))
    found, skipped = [], []
    for channel in channels:
        if channel == "console":
            found.append(Target("console", CONSOLE_THREAD))
            continue
        raw = known.get(channel.encode())
        if raw is None:
            skipped.append(channel)
            continue
        place = json.loads(raw)
        found.append(Target(channel, str(place["thread_id"]), dict(place.get("reply_to") or {})))
    return found, skipped


# --- when

def due_at(day: date, digest_time: str, tz: str) -> datetime:
    """The digest time on a local day, as an aware datetime. zoneinfo applies that day's offset, so
    08:00 stays 08:00 across DST; a time that does not exist that day (in the spring-forward gap)
    resolves to the instant the clocks jump past it."""
    try:
        hour, minute = (int(x) for x in digest_time.strip().split(":"))
        at = dtime(hour, minute)
    except ValueError as err:
        raise ValueError(f"DIGEST_TIME '{digest_time}' is not a time of day; write it as HH:MM, e.g. 08:00.") from err
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz))


# --- sending

class OutboxDigest:
    """Posts a digest into threads: the text first, then each decision card with its buttons."""

    def __init__(self, rt: Runtime, builder: DigestBuilder) -> None:
        self.rt = rt
        self.builder = builder
        self.copies = CardCopies(rt.redis, rt.settings.workspace)

    def send_to(self, channel: str, thread_id: str, reply_to: dict[str, str], trace_id: str) -> Digest:
        """`/digest`: build it now and post it where it was asked for (does not count as the daily one)."""
        digest = self.builder.build(datetime.now(timezone.utc), previous=last_mark(self.rt))
        self.post(digest, [Target(channel, thread_id, reply_to)], base_id=f"{trace_id}.digest", trace_id=trace_id)
        return digest

    def post(self, digest: Digest, where: list[Target], base_id: str, trace_id: str) -> int:
        queued = 0
        for target in where:
            stem = f"{base_id}.{target.channel}"
            chart = base64.b64encode(digest.chart_png).decode() if digest.chart_png else None
            replies = [Reply(reply_id=f"{stem}.text", channel=target.channel, thread_id=target.thread_id, text=digest.text,
                             trace_id=trace_id, reply_to=target.reply_to, image_png=chart)]
            for card in digest.cards:
                # a copy with its own id: the original card stays where it was first shown, and the
                # copy is recorded so that deciding either one updates both
                copy = card.model_copy(update={"card_id": f"{card.card_id}.{base_id[-8:]}"})
                self.copies.add(card.card_id, CardCopy(card_id=copy.card_id, channel=target.channel,
                                                       thread_id=target.thread_id, reply_to=target.reply_to))
                replies.append(Reply(reply_id=f"{stem}.{card.card_id}", channel=target.channel, thread_id=target.thread_id,
                                     text=f"Waiting for you: {card.title}", card=copy, trace_id=trace_id, reply_to=target.reply_to))
            for reply in replies:
                queued += self.rt.queue_reply(reply)
        return queued


def last_mark(rt: Runtime) -> Mark | None:
    raw = rt.redis.get(Keys(rt.settings.workspace)("digest", "last"))
    return Mark.model_validate_json(raw) if raw else None


class StoredApprovals:
    """PendingApprovals over the agent's approval store: each card as first shown, buttons live."""

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store

    def pending_cards(self) -> list[Card]:
        return [approval_card(a) for a in self.store.pending()]


class CalDavAgenda:
    """Agenda over the CalDAV connector, in the operator's time zone."""

    def __init__(self, config: CalDavSettings, timezone: str) -> None:
        from integrations.calendar import CalendarClient

        self.client = CalendarClient(config, timezone)

    def agenda(self, day: date) -> list[AgendaItem]:
        from integrations.calendar import AgendaRequest

        found = self.client.agenda(AgendaRequest(day=day))
        return [AgendaItem(title=e.summary, start=e.start, end=e.end, location=e.location, all_day=e.all_day) for e in found.events]


def builder_for(rt: Runtime) -> DigestBuilder:
    s = rt.settings
    agenda: Agenda | None = None
    if s.caldav.url:
        agenda = CalDavAgenda(s.caldav, s.timezone)
    return DigestBuilder(rt.events, rt.tasks, rt.notes, rt.facts, s.timezone, budgets=rt.budgets,
                         approvals=StoredApprovals(rt.agent.approvals), agenda=agenda, crm=crm_for(s, rt.redis))


def digest_trace(workspace: str, day: date) -> str:
    return hashlib.sha256(f"digest:{workspace}:{day.isoformat()}".encode()).hexdigest()[:16]


def send_daily(rt: Runtime, now: datetime) -> dict[str, Any]:
    """Send today's digest if it is due and nobody has sent it yet; say what happened."""
    s = rt.settings
    local = now.astimezone(ZoneInfo(s.timezone))
    due = due_at(local.date(), s.digest.time, s.timezone)
    if now < due:
        return {"sent": False, "reason": "not due", "due": due.isoformat()}
    keys = Keys(s.workspace)
    claim = keys("digest", "day", local.date().isoformat())
    if not rt.redis.set(claim, json.dumps({"state": "sending", "at": now.timestamp()}), nx=True, ex=CLAIM_TTL_S):
        return {"sent": False, "reason": "already sent", "day": local.date().isoformat()}
    trace_id = digest_trace(s.workspace, local.date())
    late = now - due > LATE_AFTER
    late_note = (f"⏱ This digest was due at {due:%H:%M} and comes late, at {local:%H:%M}: "
                 f"I was not running at {due:%H:%M}.") if late else ""
    previous = last_mark(rt)
    digest = builder_for(rt).build(now, previous=previous, late_note=late_note)
    where, skipped = targets(rt.redis, s.workspace, s.digest.channels)
    queued = OutboxDigest(rt, builder_for(rt)).post(digest, where, base_id=f"digest-{local.date().isoformat()}", trace_id=trace_id)
    mark = Mark(sent_at=now.timestamp(), notes=digest.counts.get("notes", 0), facts=digest.counts.get("facts", 0))
    pipe = rt.redis.pipeline(transaction=True)
    pipe.set(claim, json.dumps({"state": "sent", "at": now.timestamp(), "late": late}), ex=KEEP_S)
    pipe.set(keys("digest", "last"), mark.model_dump_json())
    pipe.execute()
    rt.events.record(trace_id, "digest.sent", actor="cron", day=local.date().isoformat(), late=late,
                     channels=[t.channel for t in where], skipped=skipped, replies=queued, **digest.counts)
    return {"sent": True, "late": late, "day": local.date().isoformat(), "channels": [t.channel for t in where], "skipped": skipped}


def digest_tick(payload: dict[str, Any]) -> dict[str, Any]:
    """Cron entry point (every minute): send today's digest once it is due. `now` (ISO) replays a moment."""
    rt = current_runtime()
    now = datetime.fromisoformat(payload["now"]) if payload.get("now") else datetime.now(timezone.utc)
    return send_daily(rt, now)
