"""Where side effects land, so a proof can count them: a real SMTP server and a real webhook receiver
on loopback (the same ones the integration tests use), counted per message / per delivery key."""
from __future__ import annotations

from collections import Counter

from pathlib import Path
from typing import Any


def _fakes() -> Any:
    try:
        from harness.fakes import smtp_server, webhook_receiver
    except ImportError as err:  # the proof counts effects at the test servers of a source checkout
        raise RuntimeError(
            f"deputy prove runs from a source checkout with the test extras ({err}): pip install -e '.[test]'"
        ) from err
    return smtp_server, webhook_receiver


class Mailbox:
    """An SMTP server that accepts everything and counts what arrived."""

    def __init__(self) -> None:
        smtp_server, _ = _fakes()
        self.server = smtp_server.SmtpServer()

    @property
    def port(self) -> int:
        return int(self.server.port)

    def settings(self, sender: str = "deputy@prove.example") -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_SECURITY": "none", "SMTP_FROM": sender}

    def __enter__(self) -> "Mailbox":
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def messages(self) -> list[Any]:
        return list(self.server.messages)

    def by_subject(self) -> Counter[str]:
        return Counter(str(m["Subject"]) for m in self.messages)

    def same_id_duplicates(self) -> int:
        """Copies that repeat an earlier Message-ID: a recipient's mail store can tell them apart."""
        return sum(n - 1 for n in Counter(str(m["Message-ID"]) for m in self.messages).values() if n > 1)

    def duplicates(self) -> int:
        """Messages beyond the first with the same subject or the same Message-ID (the proof's subjects are unique)."""
        by_subject = sum(n - 1 for n in self.by_subject().values() if n > 1)
        by_id = sum(n - 1 for n in Counter(str(m["Message-ID"]) for m in self.messages).values() if n > 1)
        return max(by_subject, by_id)


class HookSink:
    """A webhook receiver that answers from a script and counts deliveries by Idempotency-Key."""

    def __init__(self) -> None:
        _, webhook_receiver = _fakes()
        self.server = webhook_receiver.WebhookReceiver()

    def __enter__(self) -> "HookSink":
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def url(self, path: str = "/hook") -> str:
        return str(self.server.url(path))

    @property
    def received(self) -> list[Any]:
        return list(self.server.received)

    def accepted_keys(self) -> Counter[str]:
        return Counter(r.headers.get("Idempotency-Key", "") for r in self.received)


def policy_file(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# The fault scenarios are about delivery, not judgement: email.send runs without a click so that every
# request's job performs a real effect a killed worker could repeat.
AUTONOMOUS_EMAIL_POLICY = """\
thresholds: {approve: 100, deny: 101}
default: deny
capabilities:
  email.send: {autonomy: auto}
  tasks.create: {autonomy: auto}
  webhook.post: {autonomy: auto}
rules: []
"""


class Calendar:
    """A Radicale CalDAV server holding one calendar with the events the corpus names, counted by file."""

    def __init__(self, folder: Path, uids: tuple[str, ...] = ()) -> None:
        from harness.fakes.radicale_server import RadicaleServer

        self.server = RadicaleServer(folder)
        self.uids = uids

    def settings(self) -> dict[str, str]:
        return {"CALDAV_URL": self.server.url, "CALDAV_USERNAME": self.server.username,
                "CALDAV_PASSWORD": self.server.password, "CALDAV_CALENDAR": "Work"}

    def __enter__(self) -> "Calendar":
        import datetime as dt

        import caldav

        self.server.start()
        with caldav.DAVClient(url=self.server.url, username=self.server.username, password=self.server.password) as client:
            calendar = client.principal().make_calendar(name="Work")
            start = dt.datetime(2030, 1, 2, 9, tzinfo=dt.timezone.utc)
            for uid in self.uids:
                calendar.save_event(dtstart=start, dtend=start + dt.timedelta(hours=1), summary=uid, uid=uid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def snapshot(self) -> dict[str, str]:
        """Every stored event, by file, with a digest of its content."""
        import hashlib

        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (self.server.folder / "collections").rglob("*.ics")
                if not any(part.startswith(".Radicale") for part in p.parts)}

    @staticmethod
    def changes(before: dict[str, str], after: dict[str, str]) -> int:
        """Events created, cancelled or moved between two snapshots."""
        return sum(1 for k in before.keys() | after.keys() if before.get(k) != after.get(k))
