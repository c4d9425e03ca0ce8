"""The world around a journey's Deputy: a real Radicale (CalDAV), a real SMTP server, an IMAP server (when asked),
and Slack's and Telegram's Web APIs as wire-level fakes, plus what a journey seeds in them and reads back."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Coroutine, Mapping, TypeVar
from zoneinfo import ZoneInfo

import caldav
import icalendar

from harness.fakes.imap_server import ImapServer
from harness.fakes.radicale_server import RadicaleServer
from harness.fakes.slack_api import FakeSlackApi
from harness.fakes.smtp_server import SmtpServer
from harness.fakes.telegram_api import FakeTelegramApi

T = TypeVar("T")

SLACK_SECRET = "journey-signing-secret"
SLACK_OPERATOR = "UJOURNEY1"
TELEGRAM_TOKEN = "123456:JOURNEY-token"
TELEGRAM_SECRET = "journey-webhook-secret"
# each TelegramUser is one of these operators, so each journey has a private chat of its own
TELEGRAM_OPERATORS = tuple(range(7_000_001, 7_000_041))
CALENDAR = "Work"
SENDER = "deputy@journeys.example"
IMAP_USER, IMAP_PASSWORD = "deputy", "journey-inbox"


@dataclass(frozen=True)
class ClusterConfig:
    """What a journey module's cluster has; override the module-scoped `cluster_config` fixture to change it."""

    smtp: bool = True
    caldav: bool = True
    slack: bool = True
    telegram: bool = True
    # `deputy cron` as a third process (the digest and inbox ticks); reminders need only the worker
    cron: bool = False
    # an IMAP server (harness/fakes/imap_server.py) holding `mailbox`, for the inbox jobs
    imap: bool = False
    mailbox: tuple[EmailMessage, ...] = ()
    timezone: str = "UTC"
    # more settings for the gateway, worker and cron, e.g. {"PENDING_QUESTION_TTL": "2"}
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CalendarEntry:
    uid: str
    summary: str
    start: dt.datetime
    end: dt.datetime
    attendees: tuple[str, ...]


@dataclass(frozen=True)
class Email:
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    message: EmailMessage


class _Loop:
    """An event loop in a thread of its own, for the asyncio fakes that the child processes call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class World:
    """The local servers Deputy's connectors and channels talk to, and what a journey reads back from them."""

    def __init__(self, folder: Path, config: ClusterConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        self.loop = _Loop()
        self.slack = self.loop.run(FakeSlackApi(bot_user_id="UDEPUTY01").start()) if config.slack else None
        self.telegram = self.loop.run(FakeTelegramApi(TELEGRAM_TOKEN).start()) if config.telegram else None
        self.smtp = SmtpServer().start() if config.smtp else None
        self.imap = ImapServer(username=IMAP_USER, password=IMAP_PASSWORD).start() if config.imap else None
        for message in config.mailbox if self.imap is not None else ():
            self.imap.deliver(message)
        self.radicale = RadicaleServer(folder / "radicale").start() if config.caldav else None
        if self.radicale is not None:
            with self._dav() as client:
                client.principal().make_calendar(name=CALENDAR)

    def settings(self) -> dict[str, str]:
        env = {"TIMEZONE": self.config.timezone}
        if self.slack is not None:
            env |= {"SLACK_BOT_TOKEN": "xoxb-journeys", "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": self.slack.base_url,
                    "SLACK_OPERATORS": SLACK_OPERATOR, "SLACK_MESSAGE_INTERVAL_S": "0"}
        if self.telegram is not None:
            env |= {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_URL": self.telegram.base_url,
                    "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET, "TELEGRAM_PUBLIC_URL": "https://deputy.journeys.example",
                    "TELEGRAM_OPERATORS": ",".join(map(str, TELEGRAM_OPERATORS))}
        if self.smtp is not None:
            env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp.port), "SMTP_SECURITY": "none", "SMTP_FROM": SENDER}
        if self.imap is not None:
            env |= {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(self.imap.port), "IMAP_SECURITY": "none",
                    "IMAP_USERNAME": IMAP_USER, "IMAP_PASSWORD": IMAP_PASSWORD}
        if self.radicale is not None:
            env |= {"CALDAV_URL": self.radicale.url, "CALDAV_USERNAME": self.radicale.username,
                    "CALDAV_PASSWORD": self.radicale.password, "CALDAV_CALENDAR": CALENDAR}
        return env

    def stop(self) -> None:
        for fake in (self.slack, self.telegram):
            if fake is not None:
                self.loop.run(fake.stop())
        self.loop.close()
        if self.smtp is not None:
            self.smtp.stop()
        if self.imap is not None:
            self.imap.stop()
        if self.radicale is not None:
            self.radicale.stop()

    # --- the calendar

    def _dav(self) -> caldav.DAVClient:
        if self.radicale is None:
            raise AssertionError("this module's cluster has no calendar (ClusterConfig(caldav=False))")
        return caldav.DAVClient(url=self.radicale.url, username=self.radicale.username, password=self.radicale.password)

    def _calendar(self, client: caldav.DAVClient) -> Any:
        return client.principal().calendar(name=CALENDAR)

    def calendar_events(self) -> list[CalendarEntry]:
        """Every event in the calendar, earliest first, times in the cluster's time zone."""
        with self._dav() as client:
            entries = [_entry(event.icalendar_component, self.zone) for event in self._calendar(client).events()]
        return sorted(entries, key=lambda e: e.start)

    def add_event(self, summary: str, start: dt.datetime, end: dt.datetime | None = None, duration_min: int = 30,
                  attendees: tuple[str, ...] = ()) -> str:
        """Put an event in the calendar as another app would (naive times are in the cluster's zone); returns its uid."""
        start = start if start.tzinfo else start.replace(tzinfo=self.zone)
        end = end or start + dt.timedelta(minutes=duration_min)
        end = end if end.tzinfo else end.replace(tzinfo=self.zone)
        uid = f"journey-{uuid.uuid4().hex}"
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("summary", summary)
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("dtstamp", dt.datetime.now(dt.timezone.utc))
        for address in attendees:
            event.add("attendee", f"mailto:{address}")
        ical = icalendar.Calendar()
        ical.add("prodid", "-//Deputy journeys//EN")
        ical.add("version", "2.0")
        ical.add_component(event)
        with self._dav() as client:
            self._calendar(client).save_event(ical.to_ical().decode())
        return uid

    # --- mail

    def emails(self) -> list[Email]:
        """Every message the SMTP server accepted, in order."""
        if self.smtp is None:
            raise AssertionError("this module's cluster has no SMTP server (ClusterConfig(smtp=False))")
        out = []
        for message, (sender, rcpts) in zip(list(self.smtp.messages), list(self.smtp.recorder.envelopes)):
            part = message.get_body(("plain",)) if message.is_multipart() else message
            body = part.get_content().replace("\r\n", "\n") if part is not None else ""
            out.append(Email(sender, tuple(rcpts), str(message["Subject"] or ""), body, message))
        return out


def _entry(component: Any, zone: ZoneInfo) -> CalendarEntry:
    def when(name: str) -> dt.datetime:
        value = component.get(name).dt
        if not isinstance(value, dt.datetime):  # an all-day event
            value = dt.datetime.combine(value, dt.time(0))
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(zone)

    raw = component.get("attendee") or []
    attendees = tuple(str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in (raw if isinstance(raw, list) else [raw]))
    start = when("dtstart")
    end = when("dtend") if component.get("dtend") else start + component.get("duration").dt
    return CalendarEntry(str(component.get("uid")), str(component.get("summary", "")), start, end, attendees)
