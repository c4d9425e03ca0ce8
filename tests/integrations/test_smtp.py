"""email.send against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS + login, implicit TLS."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from pydantic import SecretStr
from redis import Redis

from integrations.breaker import CircuitBreaker
from integrations.capability import EffectContext, PermanentError, TransientError
from integrations.email_smtp import EmailSent, SendEmail, message_id_for, send_email, send_email_capability, smtp_health
from integrations.invoke import call
from integrations.ledger import EffectLedger
from harness.fakes.smtp_server import SmtpServer, free_port
from harness.fakes.tls import LocalCert, make_cert
from kernel.settings import Settings
from kernel.settings_models import SmtpSettings

MAIL = SendEmail(to=["client@example.com"], subject="Your invoice", body="Hello,\n\nattached as promised.\n")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def cert(tmp_path: Path) -> LocalCert:
    return make_cert(tmp_path / "tls")


def plain(server: SmtpServer, **extra: object) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=server.port, security="none", sender="me@studio.example", **extra)


def ctx(key: str = "run-1:0") -> EffectContext:
    return EffectContext(idempotency_key=key, workspace="w", trace_id="t1", run_id=key.split(":")[0])


def test_the_message_arrives_with_a_message_id_derived_from_the_key(smtp: SmtpServer) -> None:
    sent = send_email(plain(smtp, sender_name="Ada's Studio"), MAIL, "run-1:0")

    [message] = smtp.messages
    assert message["Subject"] == "Your invoice"
    assert message["To"] == "client@example.com"
    assert "Ada's Studio" in message["From"] and "me@studio.example" in message["From"]
    assert "attached as promised" in message.get_content()
    assert message["Message-ID"] == sent.message_id == message_id_for("run-1:0", "me@studio.example")
    assert sent.message_id.endswith("@studio.example>")
    assert message_id_for("run-1:0", "me@studio.example") != message_id_for("run-1:1", "me@studio.example")
    assert sent.accepted == ["client@example.com"]


def test_invoking_twice_with_the_same_key_sends_one_message(smtp: SmtpServer, redis: Redis) -> None:
    capability = send_email_capability(plain(smtp))
    ledger, breaker = EffectLedger(redis, "w"), CircuitBreaker(redis, "email.send", "w")

    first = call(capability, MAIL.model_dump(), ctx(), ledger, breaker)
    again = call(capability, MAIL.model_dump(), ctx(), ledger, breaker)

    assert len(smtp.messages) == 1
    assert not first.replayed and again.replayed
    assert again.output == first.output
    call(capability, MAIL.model_dump(), ctx("run-1:1"), ledger, breaker)
    assert len(smtp.messages) == 2


def test_a_deferral_is_retried_with_growing_waits_and_delivers_once(smtp: SmtpServer, redis: Redis) -> None:
    smtp.recorder.fail_data = ["451 4.3.0 Mailbox busy, try later", "421 4.7.0 Too many connections"]
    capability = send_email_capability(plain(smtp))
    waits: list[float] = []

    result = call(capability, MAIL, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, "email.send", "w"), sleep=waits.append)

    assert result.attempts == 3
    assert smtp.recorder.data_attempts == 3
    assert len(smtp.messages) == 1
    policy = capability.retry
    assert len(waits) == 2
    for n, wait in enumerate(waits):
        assert policy.base_s * 2**n <= wait <= min(policy.max_s, policy.base_s * 2**n + policy.jitter)


def test_a_permanent_refusal_is_reported_once_and_not_retried(smtp: SmtpServer, redis: Redis) -> None:
    smtp.recorder.fail_data = ["554 5.7.1 Message rejected as spam"]
    ledger = EffectLedger(redis, "w")
    waits: list[float] = []

    with pytest.raises(PermanentError, match="554"):
        call(send_email_capability(plain(smtp)), MAIL, ctx(), ledger, CircuitBreaker(redis, "email.send", "w"), sleep=waits.append)

    assert smtp.recorder.data_attempts == 1 and waits == []
    assert smtp.messages == []
    # nothing was sent, so the key is free: a corrected retry of the step may send
    assert ledger.claim("run-1:0").state == "new"


def test_deferrals_that_never_end_give_up_after_the_policy_attempts(smtp: SmtpServer, redis: Redis) -> None:
    smtp.recorder.fail_data = ["451 4.3.0 try later"] * 10
    capability = send_email_capability(plain(smtp))

    with pytest.raises(TransientError, match="451"):
        call(capability, MAIL, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, "email.send", "w"), sleep=lambda s: None)

    assert smtp.recorder.data_attempts == capability.retry.attempts
    assert smtp.messages == []


def test_one_refused_recipient_does_not_resend_to_the_others(smtp: SmtpServer) -> None:
    smtp.recorder.refuse_rcpt = {"gone@example.com": "550 5.1.1 No such user"}
    mail = SendEmail(to=["client@example.com"], cc=["gone@example.com"], subject="Hi", body="x")

    sent = send_email(plain(smtp), mail, "k")

    assert sent.accepted == ["client@example.com"]
    assert "550" in sent.refused["gone@example.com"]
    assert len(smtp.messages) == 1 and smtp.recorder.envelopes[0][1] == ["client@example.com"]


def test_every_recipient_refused_is_a_permanent_error(smtp: SmtpServer) -> None:
    smtp.recorder.refuse_rcpt = {"gone@example.com": "550 5.1.1 No such user"}

    with pytest.raises(PermanentError, match="refused every recipient"):
        send_email(plain(smtp), SendEmail(to=["gone@example.com"], subject="Hi", body="x"), "k")


def test_starttls_with_login(cert: LocalCert) -> None:
    server = SmtpServer(tls=cert.server_context(), credentials=("me", "s3cret")).start()
    try:
        config = SmtpSettings(host="127.0.0.1", port=server.port, security="starttls", username="me",
                              password="s3cret", sender="me@studio.example", ca_file=str(cert.cert_file))
        send_email(config, MAIL, "k")
        assert len(server.messages) == 1

        wrong = config.model_copy(update={"password": SecretStr("nope")})
        with pytest.raises(PermanentError, match="SMTP_PASSWORD"):
            send_email(wrong, MAIL, "k2")
        untrusted = config.model_copy(update={"ca_file": None})
        with pytest.raises(PermanentError, match="SMTP_CA_FILE"):
            send_email(untrusted, MAIL, "k3")
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_implicit_tls(cert: LocalCert) -> None:
    server = SmtpServer(tls=cert.server_context(), implicit_tls=True).start()
    try:
        config = SmtpSettings(host="127.0.0.1", port=server.port, security="ssl", sender="me@studio.example",
                              ca_file=str(cert.cert_file))
        assert send_email(config, MAIL, "k").accepted == ["client@example.com"]
        assert len(server.messages) == 1
    finally:
        server.stop()


def test_nobody_listening_is_transient() -> None:
    config = SmtpSettings(host="127.0.0.1", port=free_port(), security="none", sender="me@studio.example", timeout_s=2)

    with pytest.raises(TransientError, match="Connection"):
        send_email(config, MAIL, "k")


def test_health_check_says_whether_the_relay_answers(smtp: SmtpServer) -> None:
    assert smtp_health(plain(smtp)).ok
    down = smtp_health(SmtpSettings(host="127.0.0.1", port=free_port(), security="none", sender="me@x.example", timeout_s=2))
    assert not down.ok and "refused" in down.detail.lower()
    assert smtp.messages == []


@pytest.mark.parametrize("bad", [
    {"to": [], "subject": "s", "body": "b"},
    {"to": ["not-an-address"], "subject": "s", "body": "b"},
    {"to": ["a@b.example"], "subject": "two\nlines", "body": "b"},
    {"to": ["a@b.example>, evil@x.example"], "subject": "s", "body": "b"},
    {"to": ["a@b.example, evil@x.example"], "subject": "s", "body": "b"},
    {"to": ["a@b.example\r\nBcc: evil@x.example"], "subject": "s", "body": "b"},
    {"to": ["a@b.example"], "subject": "s", "body": "b", "in_reply_to": "<a@b>\r\nBcc: evil@x.example"},
    {"to": ["a@b.example"], "subject": "s", "body": "b", "references": "not a msg-id"},
])
def test_malformed_input_is_refused_before_anything_is_sent(bad: dict[str, object], smtp: SmtpServer, redis: Redis) -> None:
    from integrations.invoke import InvalidInput

    with pytest.raises(InvalidInput):
        call(send_email_capability(plain(smtp)), bad, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, "email.send", "w"))
    assert smtp.messages == []


def test_a_reply_carries_the_thread_headers_and_keeps_its_own_message_id(smtp: SmtpServer, redis: Redis) -> None:
    capability = send_email_capability(plain(smtp))
    args = {"to": ["ana@lopez.example"], "subject": "Re: Workshop", "body": "Tuesday works.",
            "in_reply_to": "<a2@lopez.example>", "references": "<a1@lopez.example>  <a2@lopez.example>"}
    ledger, breaker = EffectLedger(redis, "w"), CircuitBreaker(redis, "email.send", "w")

    first = call(capability, args, ctx(), ledger, breaker)
    again = call(capability, args, ctx(), ledger, breaker)

    [message] = smtp.messages
    assert message["In-Reply-To"] == "<a2@lopez.example>"
    assert message["References"] == "<a1@lopez.example> <a2@lopez.example>"
    assert again.replayed and first.output.message_id == message["Message-ID"] == message_id_for("run-1:0", "me@studio.example")


def test_a_reply_without_references_refers_to_the_message_it_answers(smtp: SmtpServer) -> None:
    send_email(plain(smtp), SendEmail(to=["a@b.example"], subject="Re: x", body="b", in_reply_to="<m1@b.example>"), "k")
    [message] = smtp.messages
    assert message["In-Reply-To"] == message["References"] == "<m1@b.example>"


def test_a_named_address_is_reduced_to_the_address(smtp: SmtpServer) -> None:
    send_email(plain(smtp), SendEmail(to=["Client Name <client@example.com>"], subject="s", body="b"), "k")
    assert smtp.recorder.envelopes == [("me@studio.example", ["client@example.com"])]


def test_the_output_survives_the_ledger_round_trip() -> None:
    sent = EmailSent(message_id="<a@b>", accepted=["x@y.example"], refused={"z@y.example": "550 no"})
    assert EmailSent.model_validate_json(sent.model_dump_json()) == sent


def test_the_registry_offers_email_send_only_when_smtp_is_configured(smtp: SmtpServer) -> None:
    from integrations.registry import build_capabilities, check_health

    caps = build_capabilities(Settings(smtp=plain(smtp)), None)
    assert caps["email.send"].side_effect and not caps["email.send"].reversible
    assert check_health({"email.send": caps["email.send"]})["email.send"].ok
    assert "email.send" not in build_capabilities(Settings(), None)


def test_a_send_interrupted_before_its_record_is_in_doubt_and_not_sent_again(smtp: SmtpServer, redis: Redis) -> None:
    import pytest

    from integrations.invoke import EffectInDoubt
    from tests.waiting import redis_now, wait_past

    capability = send_email_capability(plain(smtp))
    ledger = EffectLedger(redis, "w", lease_s=0.05)
    # a worker claimed the key, sent, and died before recording the result
    assert ledger.claim("run-9:0").state == "new"
    claimed_by = redis_now(redis)
    send_email(plain(smtp), MAIL, "run-9:0")
    wait_past(redis, claimed_by + 0.05)  # its lease lapses

    with pytest.raises(EffectInDoubt, match="Check it by hand"):
        call(capability, MAIL, ctx("run-9:0"), ledger, CircuitBreaker(redis, "email.send", "w"))
    [only] = smtp.messages
    # the Message-ID derived from the key lets the operator find it in the Sent folder
    assert only["Message-ID"] == message_id_for("run-9:0", "me@studio.example")


class HeldData:
    """An SMTP handler that holds DATA until released (a hung server) and notes whether QUIT ever came."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.quit_seen = False

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        import asyncio

        while not self.release.is_set():
            await asyncio.sleep(0.02)
        return "250 accepted late"

    async def handle_QUIT(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.quit_seen = True
        return "221 Bye"


def test_a_send_cut_short_while_the_server_hangs_does_not_wait_to_say_goodbye():
    """A job timeout that interrupts a hung DATA must end the call, not leave it waiting on QUIT's answer."""
    import signal

    from aiosmtpd.controller import Controller

    class CutShort(Exception):
        pass

    def cut(signum, frame):  # type: ignore[no-untyped-def]
        raise CutShort()

    handler, port = HeldData(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    previous = signal.signal(signal.SIGALRM, cut)
    try:
        config = SmtpSettings(host="127.0.0.1", port=port, security="none", sender="me@studio.example", timeout_s=30)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(CutShort):
            send_email(config, MAIL, "run-1:0")
        # the call came back while the server still held the message, and left without a QUIT it would wait on
        assert not handler.release.is_set()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        handler.release.set()
        controller.stop()
    assert not handler.quit_seen
