"""Email in over IMAP: read the inbox (unseen mail, recent mail, one sender's mail), and triage unseen messages
into tasks.

Everything read here is untrusted text from other people: it is carried as data (InboxMessage in
integrations/email_message.py) and can only ever become a task title or a summary line, never an instruction. Triage is idempotent by Message-ID: a message whose task exists gets no second one."""
from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import re
import socket
import ssl
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from integrations.capability import (
    Capability, EffectContext, Health, Input, Output, PermanentError, RetryPolicy, RiskClass, TransientError,
)
from integrations.email_message import InboxMessage, parse_message, task_title
from integrations.tls import tls_context
from kernel.settings_models import ImapSettings

FETCH_BATCH = 50
HEALTH_TIMEOUT_S = 5.0


class ReadInbox(Input):
    limit: int = Field(default=20, ge=1, le=200)
    # "unseen": unread mail, oldest first; "recent": the newest mail whatever its flags (read elsewhere, or
    # already triaged), newest first, from the last `days` days unless `sender` narrows it to one person
    which: Literal["unseen", "recent"] = "unseen"
    days: int = Field(default=14, ge=1, le=3650)
    # only mail whose From holds this (a name or an address, as IMAP SEARCH FROM matches it)
    sender: str = Field(default="", max_length=200, pattern=r"^[^\r\n\"\\]*$")


class Inbox(Output):
    messages: list[InboxMessage]


class TriageInbox(Input):
    limit: int = Field(default=20, ge=1, le=200)
    project: str = "inbox"


class TriagedEmail(Output):
    message_id: str
    task_id: int
    title: str


class InboxTriaged(Output):
    tasks: list[TriagedEmail]


class TaskLike(Protocol):
    id: int
    title: str


class TaskSink(Protocol):
    """Where triage puts tasks (memory.tasks.TaskStore): the same source_event always yields the same task."""

    def add(self, title: str, project: str = "inbox", source_event: str = "", due: str | None = None,
            trust: Literal["operator", "untrusted"] = "operator") -> TaskLike: ...


def _connect(config: ImapSettings) -> imaplib.IMAP4:
    if config.security == "ssl":
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=tls_context(config.ca_file),
                                                  timeout=config.timeout_s)
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=config.timeout_s)
    try:
        if config.security == "starttls":
            client.starttls(ssl_context=tls_context(config.ca_file))
        client.login(config.username or "", config.password.get_secret_value() if config.password else "")
    except BaseException:
        with contextlib.suppress(OSError):  # keep the error that matters, not the socket's complaint
            client.shutdown()
        raise
    return client


def _classify(err: Exception, where: str) -> Exception:
    if isinstance(err, imaplib.IMAP4.abort):
        return TransientError(f"{where}: the server hung up ({err})")
    if isinstance(err, imaplib.IMAP4.error):
        text = str(err)
        if "LOGIN" in text.upper() or "AUTHENTICATIONFAILED" in text.upper() or "credentials" in text.lower():
            return PermanentError(f"{where}: the login was refused ({text}); check IMAP_USERNAME and IMAP_PASSWORD")
        if "UNAVAILABLE" in text.upper() or "TRY AGAIN" in text.upper():
            return TransientError(f"{where}: {text}")
        return PermanentError(f"{where}: {text}")
    if isinstance(err, ssl.SSLCertVerificationError):
        return PermanentError(f"{where}: the server's certificate is not trusted ({err.verify_message}); set IMAP_CA_FILE")
    if isinstance(err, (socket.timeout, OSError)):
        return TransientError(f"{where}: {type(err).__name__}: {err}")
    return err


def _ok(response: tuple[str, list], what: str) -> list:
    status, data = response
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise imaplib.IMAP4.error(f"{what} failed: {detail}")
    return data


class Mailbox:
    """One logged-in session on one mailbox; use as a context manager."""

    def __init__(self, config: ImapSettings) -> None:
        self.config = config
        self.where = f"IMAP {config.username}@{config.host}:{config.port}/{config.folder}"
        self.client: imaplib.IMAP4 | None = None

    def __enter__(self) -> "Mailbox":
        try:
            self.client = _connect(self.config)
            status, data = self.client.select(_quote(self.config.folder))
            if status != "OK":
                raise PermanentError(f"{self.where}: cannot open the folder ({data[0]!r}); check IMAP_FOLDER")
        except PermanentError:
            self.close()
            raise
        except Exception as err:
            self.close()
            raise _classify(err, self.where) from err
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.logout()
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):
                self.client.shutdown()
        self.client = None

    def unseen(self, limit: int) -> list[InboxMessage]:
        """The oldest `limit` unseen messages, read without marking them seen (BODY.PEEK)."""
        return sorted(self._fetch(self._search("UNSEEN")[:limit]), key=lambda m: m.uid)

    def recent(self, limit: int, days: int, sender: str = "", today: dt.date | None = None) -> list[InboxMessage]:
        """The newest `limit` messages, seen or not, newest first: from `sender` (any date), else unseen ones and
        those of the last `days` days. Nothing is marked seen."""
        if sender:
            uids = self._search("FROM", _quote_string(sender))
        else:
            since = (today or dt.date.today()) - dt.timedelta(days=days)
            uids = sorted(set(self._search("UNSEEN")) | set(self._search("SINCE", _imap_date(since))))
        return sorted(self._fetch(uids[-limit:]), key=lambda m: m.uid, reverse=True)

    def _search(self, *criteria: str) -> list[int]:
        assert self.client is not None
        try:
            [ids] = _ok(self.client.uid("SEARCH", None, *criteria), f"SEARCH {criteria[0]}")
        except Exception as err:
            raise _classify(err, self.where) from err
        return sorted(int(u) for u in (ids or b"").split())

    def _fetch(self, uids: list[int]) -> list[InboxMessage]:
        assert self.client is not None
        messages: list[InboxMessage] = []
        try:
            for start in range(0, len(uids), FETCH_BATCH):
                batch = ",".join(str(u) for u in uids[start:start + FETCH_BATCH])
                data = _ok(self.client.uid("FETCH", batch, "(UID BODY.PEEK[])"), "FETCH")
                messages += [parse_message(_uid_of(item[0]), item[1]) for item in data if isinstance(item, tuple)]
        except Exception as err:
            raise _classify(err, self.where) from err
        return messages

    def mark_seen(self, uids: list[int]) -> None:
        assert self.client is not None
        if not uids:
            return
        try:
            _ok(self.client.uid("STORE", ",".join(map(str, uids)), "+FLAGS.SILENT", "(\\Seen)"), "STORE +FLAGS")
        except Exception as err:
            raise _classify(err, self.where) from err


def _quote(mailbox: str) -> str:
    return mailbox if re.fullmatch(r"[A-Za-z0-9._/-]+", mailbox) else '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote_string(text: str) -> str:
    """An IMAP quoted string; ReadInbox already refused line breaks, quotes and backslashes in it."""
    return '"' + text + '"'


def _imap_date(day: dt.date) -> str:
    # RFC 3501 date: 03-Mar-2025, month names in English whatever the locale
    return f"{day.day:02d}-{'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split()[day.month - 1]}-{day.year}"


def _uid_of(head: bytes) -> int:
    match = re.search(rb"UID (\d+)", head)
    if not match:
        raise imaplib.IMAP4.error(f"FETCH answer without a UID: {head[:80]!r}")
    return int(match.group(1))


def read_inbox(config: ImapSettings, limit: int = 20) -> list[InboxMessage]:
    """Unseen messages, oldest first; nothing is marked seen."""
    with Mailbox(config) as box:
        return box.unseen(limit)


def read_mail(config: ImapSettings, request: ReadInbox) -> list[InboxMessage]:
    """What `email.read_inbox` answers: unseen mail, or the recent mail (of one sender) newest first."""
    if request.which == "unseen" and not request.sender:
        return read_inbox(config, request.limit)
    with Mailbox(config) as box:
        return box.recent(request.limit, request.days, request.sender)


def triage_inbox(config: ImapSettings, tasks: TaskSink, limit: int = 20, project: str = "inbox") -> list[TriagedEmail]:
    """One task per unseen message (deduped by Message-ID), then mark those messages seen.

    Seen is set only after the tasks exist: a crash in between leaves the messages unseen, and the
    next triage finds their tasks by Message-ID instead of adding new ones."""
    with Mailbox(config) as box:
        messages = box.unseen(limit)
        triaged = []
        for message in messages:
            # the subject is the sender's words: the task keeps that it came from them
            task = tasks.add(task_title(message), project=project, source_event=f"email:{message.message_id}", trust=message.trust)
            triaged.append(TriagedEmail(message_id=message.message_id, task_id=task.id, title=task.title))
        box.mark_seen([m.uid for m in messages])
    return triaged


def imap_health(config: ImapSettings) -> Health:
    """Log in, open the folder, NOOP."""
    config = config.model_copy(update={"timeout_s": min(config.timeout_s, HEALTH_TIMEOUT_S)})
    try:
        with Mailbox(config) as box:
            assert box.client is not None
            status, _ = box.client.noop()
    except Exception as err:
        return Health(ok=False, detail=str(err))
    return Health(ok=status == "OK", detail=f"{box.where} answered NOOP")


IMAP_RETRY = RetryPolicy(attempts=3, base_s=1.0, max_s=15.0, jitter=1.0)


def inbox_capabilities(config: ImapSettings, tasks: TaskSink) -> list[Capability]:
    def read(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return Inbox(messages=read_mail(config, ReadInbox.model_validate(args.model_dump())))

    def triage(args: BaseModel, ctx: EffectContext) -> BaseModel:
        request = TriageInbox.model_validate(args.model_dump())
        return InboxTriaged(tasks=triage_inbox(config, tasks, request.limit, request.project))

    health = lambda: imap_health(config)  # noqa: E731
    return [
        Capability(
            name="email.read_inbox",
            description="Read unseen (or recent, or one sender's) emails as untrusted data, without marking them read.",
            input_model=ReadInbox, output_model=Inbox, risk=RiskClass.READ, side_effect=False, reversible=True,
            compensation=None, idempotency="ledger", retry=IMAP_RETRY, run=read, health=health,
        ),
        Capability(
            name="email.triage_inbox",
            description="Turn each unseen email into a task (one per Message-ID) and mark it read.",
            input_model=TriageInbox, output_model=InboxTriaged, risk=RiskClass.INTERNAL_WRITE, side_effect=True,
            # tasks can be closed and messages marked unread again; nothing leaves Deputy
            reversible=True, compensation=None,
            # the task store dedupes by Message-ID and \\Seen is a flag: acting again changes nothing
            idempotency="natural", retry=IMAP_RETRY, run=triage, health=health,
        ),
    ]
