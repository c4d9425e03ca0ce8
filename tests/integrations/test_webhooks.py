"""webhook.post against a local HTTP receiver that records requests and can answer 500s, 4xx and timeouts."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator

import pytest
from pydantic import SecretStr
from redis import Redis

from integrations.breaker import CircuitBreaker, CircuitOpen
from integrations.capability import Capability, EffectContext, PermanentError, TransientError
from integrations.invoke import call
from integrations.ledger import EffectLedger
from integrations.webhooks import (
    SIGNATURE_HEADER,
    PostWebhook,
    SignatureError,
    post_webhook,
    sign,
    verify,
    webhook_capabilities,
    webhooks_health,
)
from harness.fakes.smtp_server import free_port
from harness.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec-test-5f2a"
EVENT = {"target": "crm", "event": "lead.qualified", "data": {"name": "Dana", "email": "dana@shop.example", "value": 1200}}


@dataclass(frozen=True)
class Target:
    url: str
    secret: SecretStr | None = SecretStr(SECRET)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def capability(receiver: WebhookReceiver, timeout_s: float = 5.0) -> Capability:
    [cap] = webhook_capabilities({"crm": Target(receiver.url("/deputy"))}, timeout_s=timeout_s)
    return cap


def ctx(key: str = "run-3:2") -> EffectContext:
    return EffectContext(idempotency_key=key, workspace="w", trace_id="t", run_id=key.split(":")[0])


def test_a_delivery_is_signed_and_carries_the_effect_key(receiver: WebhookReceiver) -> None:
    posted = post_webhook({"crm": Target(receiver.url("/deputy"))}, PostWebhook.model_validate(EVENT), "run-3:2")

    [got] = receiver.received
    assert posted.status == 200 and posted.delivery_id == "run-3:2"
    assert got.path == "/deputy"
    assert got.headers["Idempotency-Key"] == "run-3:2"
    assert json.loads(got.body) == {"id": "run-3:2", "event": "lead.qualified", "data": EVENT["data"]}
    timestamp = verify(SECRET, got.body, got.headers[SIGNATURE_HEADER], now=time.time())
    assert abs(timestamp - time.time()) < 60
    with pytest.raises(SignatureError):
        verify("another-secret", got.body, got.headers[SIGNATURE_HEADER], now=time.time())


def test_the_same_key_twice_posts_once(receiver: WebhookReceiver, redis: Redis) -> None:
    cap = capability(receiver)
    ledger, breaker = EffectLedger(redis, "w"), CircuitBreaker(redis, cap.name, "w")

    first = call(cap, EVENT, ctx(), ledger, breaker)
    second = call(cap, EVENT, ctx(), ledger, breaker)

    assert len(receiver.received) == 1 and second.replayed and second.output == first.output


def test_server_errors_are_retried_with_backoff_and_the_same_key(receiver: WebhookReceiver, redis: Redis) -> None:
    receiver.script = [500, 503, 429]
    cap = capability(receiver)
    waits: list[float] = []

    result = call(cap, EVENT, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, cap.name, "w"), sleep=waits.append)

    assert result.attempts == 4 and len(receiver.received) == 4
    assert {r.headers["Idempotency-Key"] for r in receiver.received} == {"run-3:2"}
    assert len({r.body for r in receiver.received}) == 1
    for n, wait in enumerate(waits):
        assert cap.retry.base_s * 2**n <= wait <= min(cap.retry.max_s, cap.retry.base_s * 2**n + cap.retry.jitter)


def test_a_timeout_is_retried(receiver: WebhookReceiver, redis: Redis) -> None:
    receiver.script = ["slow"]
    receiver.slow_s = 2.0
    cap = capability(receiver, timeout_s=0.3)

    result = call(cap, EVENT, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, cap.name, "w"), sleep=lambda s: None)

    assert result.attempts == 2 and len(receiver.received) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_client_error_is_not_retried(status: int, receiver: WebhookReceiver, redis: Redis) -> None:
    receiver.script = [status]
    cap = capability(receiver)

    with pytest.raises(PermanentError, match=str(status)):
        call(cap, EVENT, ctx(), EffectLedger(redis, "w"), CircuitBreaker(redis, cap.name, "w"), sleep=lambda s: None)

    assert len(receiver.received) == 1


def test_repeated_failures_open_the_breaker_and_later_calls_fail_fast(receiver: WebhookReceiver, redis: Redis) -> None:
    receiver.script = [500] * 20
    cap = capability(receiver)
    breaker = CircuitBreaker(redis, cap.name, "w", failure_threshold=3, cooldown_s=60)

    with pytest.raises(CircuitOpen):
        call(cap, EVENT, ctx("run-4:0"), EffectLedger(redis, "w"), breaker, sleep=lambda s: None)
    assert len(receiver.received) == 3 and breaker.status().state == "open"

    with pytest.raises(CircuitOpen, match="stopped calling it"):
        call(cap, EVENT, ctx("run-5:0"), EffectLedger(redis, "w"), breaker, sleep=lambda s: None)
    assert len(receiver.received) == 3
    # the other worker's breaker object reads the same state from Redis
    assert CircuitBreaker(redis, cap.name, "w", failure_threshold=3, cooldown_s=60).status().state == "open"


def test_a_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.script = ["redirect"]

    with pytest.raises(PermanentError, match="redirected"):
        post_webhook({"crm": Target(receiver.url())}, PostWebhook.model_validate(EVENT), "k")
    assert len(receiver.received) == 1


def test_only_configured_targets(receiver: WebhookReceiver) -> None:
    with pytest.raises(PermanentError, match="configured: crm"):
        post_webhook({"crm": Target(receiver.url())}, PostWebhook(target="https://evil.example/x", event="x"), "k")
    assert receiver.received == []
    with pytest.raises(ValueError, match="http"):
        webhook_capabilities({"files": Target("file:///etc/passwd")})
    assert webhook_capabilities({}) == []


def test_nobody_listening_is_transient() -> None:
    with pytest.raises(TransientError, match="unreachable"):
        post_webhook({"crm": Target(f"http://127.0.0.1:{free_port()}/")}, PostWebhook.model_validate(EVENT), "k", timeout_s=2)


def test_an_unsigned_target_gets_no_signature(receiver: WebhookReceiver) -> None:
    post_webhook({"crm": Target(receiver.url(), secret=None)}, PostWebhook.model_validate(EVENT), "k")
    assert SIGNATURE_HEADER not in receiver.received[0].headers


def test_health_connects_without_posting(receiver: WebhookReceiver) -> None:
    assert webhooks_health({"crm": Target(receiver.url())}).ok
    down = webhooks_health({"crm": Target(receiver.url()), "erp": Target(f"http://127.0.0.1:{free_port()}/")}, timeout_s=1)
    assert not down.ok and "erp" in down.detail and "crm" not in down.detail
    assert receiver.received == []


# --- the signature scheme itself (shared with inbound hooks)

BODY = b'{"order":1042}'


def test_verify_accepts_a_fresh_signature_and_a_rotated_secret() -> None:
    now = 1_750_000_000
    assert verify(SECRET, BODY, sign(SECRET, BODY, now), now=now + 10) == now
    rotated = sign("old-secret", BODY, now) + "," + sign(SECRET, BODY, now).split(",")[1]
    assert verify(SECRET, BODY, rotated, now=now) == now


@pytest.mark.parametrize("header, reason", [
    (None, "missing"),
    ("", "missing"),
    ("sha256=abc", "malformed"),
    ("t=abc,v1=" + "0" * 64, "malformed"),
    ("t=1750000000,v1=" + "0" * 64, "does not match"),
])
def test_verify_refuses_bad_headers(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, BODY, header, now=1_750_000_000)


def test_verify_refuses_a_tampered_body_and_a_stale_timestamp() -> None:
    now = 1_750_000_000
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, b'{"order":9999}', sign(SECRET, BODY, now), now=now)
    with pytest.raises(SignatureError, match="stale"):
        verify(SECRET, BODY, sign(SECRET, BODY, now - 301), now=now)
    with pytest.raises(SignatureError, match="stale"):
        verify(SECRET, BODY, sign(SECRET, BODY, now + 301), now=now)


def test_the_registry_offers_webhook_post_for_configured_targets(receiver: WebhookReceiver) -> None:
    from integrations.registry import build_capabilities, check_health
    from kernel.settings import Settings
    from kernel.settings_models import WebhookSettings, WebhookTarget

    crm = WebhookTarget(url=receiver.url(), secret=SecretStr(SECRET))
    caps = build_capabilities(Settings(webhooks=WebhookSettings(outbound={"crm": crm})), None)
    assert check_health({"webhook.post": caps["webhook.post"]})["webhook.post"].ok
    # a playbook may say "name" and "payload"
    posted = caps["webhook.post"].run(caps["webhook.post"].parse({"name": "crm", "payload": {"a": 1}}), ctx())
    assert posted.status == 200 and json.loads(receiver.received[0].body)["data"] == {"a": 1}
    assert "webhook.post" not in build_capabilities(Settings(), None)


def test_a_post_is_put_to_the_operator_as_the_event_it_sends(receiver: WebhookReceiver) -> None:
    [post] = webhook_capabilities({"crm": Target(url=receiver.url())})
    assert post.approval_title == "Post to this webhook?" and post.reversibility == "cannot be undone"
    assert post.preview(EVENT) == "data:\n  email: dana@shop.example\n  name: Dana\n  value: 1200\nevent: lead.qualified\ntarget: crm"
    assert post.summarize(EVENT, {"status": 200}) == "webhook.post: done."


@dataclass(frozen=True)
class Reverse:
    url: str
    method: str = "DELETE"


def test_a_post_to_a_target_with_a_reverse_call_is_undone_by_calling_it_once(receiver: WebhookReceiver, redis: Redis) -> None:
    post, undo = webhook_capabilities({"crm": Target(receiver.url("/deputy")), "chat": Target(receiver.url("/chat"))},
                                      reverse={"crm": Reverse(receiver.url("/deputy/undo"))})
    ledger, breaker = EffectLedger(redis, "w"), CircuitBreaker(redis, "webhook", "w")
    assert post.undoable(EVENT) and post.reversibility_of(EVENT) == "undone by webhook.undo"
    done = call(post, EVENT, ctx("run-3:0"), ledger, breaker).output

    back = post.undo(EVENT, done.model_dump()) if post.undo else None
    assert back == {"target": "crm", "undoes": "run-3:0", "event": "lead.qualified", "data": EVENT["data"]}
    for _ in range(2):  # an undo run carried out twice (a retried job): one reverse call
        call(undo, back, ctx("undo-run-3:0"), ledger, breaker)

    [posted, reversed_] = receiver.received
    assert (reversed_.method, reversed_.path) == ("DELETE", "/deputy/undo")
    assert reversed_.headers["Idempotency-Key"] == "undo-run-3:0"
    assert verify(SECRET, reversed_.body, reversed_.headers[SIGNATURE_HEADER], now=time.time())
    assert json.loads(reversed_.body) == {"id": "undo-run-3:0", "event": "lead.qualified", "undoes": "run-3:0", "data": EVENT["data"]}


def test_a_post_to_a_target_without_a_reverse_call_says_it_cannot_be_undone(receiver: WebhookReceiver) -> None:
    post, _ = webhook_capabilities({"crm": Target(receiver.url()), "chat": Target(receiver.url())},
                                   reverse={"crm": Reverse(receiver.url("/undo"))})
    to_chat = {**EVENT, "target": "chat"}
    done = post.run(post.parse(to_chat), ctx())
    assert not post.undoable(to_chat) and post.reversibility_of(to_chat) == "cannot be undone"
    assert post.undo is not None and post.undo(to_chat, done.model_dump()) is None
    # with no reverse call anywhere, there is nothing that undoes a post
    [only] = webhook_capabilities({"crm": Target(receiver.url())})
    assert not only.reversible and only.undo is None and not only.undoable(EVENT)


def test_a_reverse_call_is_declared_in_outbound_webhooks(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from integrations.registry import build_capabilities
    from kernel.settings import Settings

    hooks = json.dumps({"crm": {"url": receiver.url(), "undo": {"url": receiver.url("/undo")}}, "chat": {"url": receiver.url()}})
    monkeypatch.setenv("OUTBOUND_WEBHOOKS", hooks)
    caps = build_capabilities(Settings(), None)
    assert caps["webhook.post"].compensation == "webhook.undo" and "webhook.undo" in caps
    assert caps["webhook.post"].undoable({"target": "crm"}) and not caps["webhook.post"].undoable({"name": "chat"})
