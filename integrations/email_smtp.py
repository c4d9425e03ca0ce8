"""Email out over SMTP: one message per effect, its Message-ID derived from the effect's idempotency key.

A resend after a crash (the worker died after the server took the message but before the ledger
recorded it) carries the same Message-ID, so the receiving side can recognise it as the same message."""
from __future__ import annotations

import hashlib
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from pydantic import BaseModel, Field, field_validator

from integrations.capability import (
    Args,
    Capability,
    EffectContext,
    Health,
    Input,
    Output,
    PermanentError,
    RetryPolicy,
    RiskClass,
    TransientError,
)
from integrations.tls import tls_context
from kernel.settings_models import SmtpSettings

# `deputy check` runs every health check in turn: a dead host must not hold it up for long
HEALTH_TIMEOUT_S = 5.0


ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+")
NAMED = re.compile(r"[^<>]*<([^<>]+)>")
# one or more "<id@host>" separated by spaces: nothing that could end the header
MSG_IDS = r"^\s*(<[^<>\s]+>\s*)*$"


def _address(value: str) -> str:
    """A bare address from `a@b` or `Name <a@b>`; anything looser (two addresses, header tricks) is refused."""
    value = value.strip()
    named = NAMED.fullmatch(value)
    addr = named.group(1).strip() if named else value
    if not ADDRESS.fullmatch(addr):
        raise ValueError(f"'{value}' is not one email address")
    return addr


class SendEmail(Input):
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    subject: str = Field(min_length=1, max_length=998)
    body: str
    # the Message-ID this answers and the thread's earlier ones (msg-ids separated by spaces), so the
    # recipient's mail program files the reply in the same thread
    in_reply_to: str | None = Field(default=None, max_length=998, pattern=MSG_IDS)
    references: str | None = Field(default=None, max_length=20_000, pattern=MSG_IDS)

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [_address(v) for v in values]

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("a subject is one line")
        return value


class EmailSent(Output):
    message_id: str
    accepted: list[str]
    # recipients the server refused while taking the message for the others
    refused: dict[str, str] = Field(default_factory=dict)


def email_preview(args: Args) -> str:
    """The email as its recipient will see it."""
    lines = [f"To: {', '.join(args.get('to') or [])}"]
    if args.get("cc"):
        lines.append(f"Cc: {', '.join(args['cc'])}")
    lines.append(f"Subject: {args.get('subject', '')}")
    if args.get("in_reply_to"):
        lines.append(f"In-Reply-To: {args['in_reply_to']}")
    lines += ["", str(args.get("body", ""))]
    return "\n".join(lines)


def sent_summary(args: Args, output: Args) -> str:
    return f"Sent “{args.get('subject', '')}” to {', '.join(output.get('accepted') or args.get('to') or [])}."


def message_id_for(key: str, sender: str) -> str:
    """The same idempotency key always gives the same Message-ID (RFC 5322 msg-id form)."""
    domain = sender.rsplit("@", 1)[-1] or "deputy.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}.deputy@{domain}>"


def build_message(config: SmtpSettings, args: SendEmail, key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((config.sender_name, config.sender)) if config.sender_name else config.sender
    message["To"] = ", ".join(args.to)
    if args.cc:
        message["Cc"] = ", ".join(args.cc)
    message["Subject"] = args.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id_for(key, config.sender)
    if args.in_reply_to:
        message["In-Reply-To"] = args.in_reply_to.strip()
    if args.references or args.in_reply_to:
        message["References"] = " ".join((args.references or args.in_reply_to or "").split())
    message.set_content(args.body)
    return message


def _tls_context(config: SmtpSettings) -> ssl.SSLContext:
    return tls_context(config.ca_file)


def _connect(config: SmtpSettings) -> smtplib.SMTP:
    if config.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=_tls_context(config))
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    try:
        client.ehlo()
        if config.security == "starttls":
            client.starttls(context=_tls_context(config))
            client.ehlo()
        if config.username:
            client.login(config.username, config.password.get_secret_value() if config.password else "")
    except BaseException:
        client.close()
        raise
    return client


def _classify(err: Exception, what: str) -> Exception:
    """SMTP's own rule: 4xx means try again later, 5xx means never; network trouble is transient."""
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return PermanentError(f"the SMTP server refused the login ({err.smtp_code}); check SMTP_USERNAME and SMTP_PASSWORD")
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = {rcpt: code for rcpt, (code, _) in err.recipients.items()}
        if all(400 <= code < 500 for code in codes.values()):
            return TransientError(f"{what}: recipients deferred {codes}")
        return PermanentError(f"{what}: the server refused every recipient {codes}")
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return PermanentError(f"{what}: {err}; check SMTP_SECURITY")
    if isinstance(err, smtplib.SMTPResponseException):
        text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        if 400 <= err.smtp_code < 500:
            return TransientError(f"{what}: {err.smtp_code} {text}")
        return PermanentError(f"{what}: {err.smtp_code} {text}")
    if isinstance(err, ssl.SSLCertVerificationError):
        return PermanentError(f"{what}: the server's certificate is not trusted ({err.verify_message}); set SMTP_CA_FILE")
    if isinstance(err, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout, OSError)):
        return TransientError(f"{what}: {type(err).__name__}: {err}")
    return err


def send_email(config: SmtpSettings, args: SendEmail, key: str) -> EmailSent:
    """Send one message. Raises TransientError (try again) or PermanentError (do not)."""
    message = build_message(config, args, key)
    recipients = [*args.to, *args.cc]
    try:
        client = _connect(config)
        try:
            refused = client.send_message(message, from_addr=config.sender, to_addrs=recipients)
        except BaseException:
            # the server may be hung mid-reply: saying goodbye would wait on it again (past a job's timeout)
            client.close()
            raise
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
    except Exception as err:
        raise _classify(err, f"sending to {', '.join(recipients)} via {config.host}:{config.port}") from err
    # the message went to the others: retrying would send them a second copy, so report instead
    return EmailSent(
        message_id=str(message["Message-ID"]),
        accepted=[r for r in recipients if r not in refused],
        refused={r: f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}" for r, (code, text) in refused.items()},
    )


def smtp_health(config: SmtpSettings) -> Health:
    """Connect, greet, log in if configured, NOOP: proves the relay would take a message."""
    config = config.model_copy(update={"timeout_s": min(config.timeout_s, HEALTH_TIMEOUT_S)})
    try:
        client = _connect(config)
        try:
            code, _ = client.noop()
        finally:
            client.quit()
    except Exception as err:
        return Health(ok=False, detail=str(_classify(err, f"SMTP {config.host}:{config.port}")))
    return Health(ok=code == 250, detail=f"SMTP {config.host}:{config.port} answered NOOP with {code}")


def send_email_capability(config: SmtpSettings) -> Capability:
    def run(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return send_email(config, SendEmail.model_validate(args.model_dump()), ctx.idempotency_key)

    return Capability(
        name="email.send",
        description="Send an email from the operator's address over SMTP.",
        input_model=SendEmail,
        output_model=EmailSent,
        risk=RiskClass.EXTERNAL_WRITE,
        side_effect=True,
        # a sent email cannot be taken back
        reversible=False,
        compensation=None,
        # Not "natural": the Message-ID derived from the key lets a mailbox spot a copy, but SMTP
        # servers deliver it anyway. A send interrupted between the server's 250 and our record is
        # therefore reported as in doubt (check the Sent folder), never sent a second time.
        idempotency="ledger",
        retry=RetryPolicy(attempts=4, base_s=1.0, max_s=30.0, jitter=1.0),
        run=run,
        health=lambda: smtp_health(config),
        recipient_fields=("to", "cc"),
        title="Send this email?",
        preview=email_preview,
        summary=sent_summary,
    )
