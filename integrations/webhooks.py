"""Webhooks out: an HMAC-signed JSON POST to a configured target, with the effect's key as Idempotency-Key.

Signature (the same scheme inbound hooks are checked with):
    X-Deputy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
The timestamp is signed with the body, so a captured request cannot be replayed after the
receiver's tolerance window; several v1= values may be given while a secret is being rotated.

The HTTP client is the standard library's urllib: workers are sync and send one request per step,
so a connection pool or an event loop (aiohttp would need a private loop per call) buys nothing,
and urllib adds no dependency. Redirects are not followed: a signed POST goes only where it was
configured to go."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping, Protocol

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator

from integrations.capability import (
    Capability, EffectContext, Health, Input, Output, PermanentError, RetryPolicy, RiskClass, TransientError,
)

SIGNATURE_HEADER = "X-Deputy-Signature"
DELIVERY_HEADER = "X-Deputy-Delivery"
DEFAULT_TOLERANCE_S = 300
USER_AGENT = "Deputy-Webhooks/1"


class SignatureError(ValueError):
    """A signature header that is missing, malformed, forged or too old; the message says which."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S) -> int:
    """Check a signature header against the raw body; returns its timestamp or raises SignatureError."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and re.fullmatch(r"[0-9a-f]{64}", value):
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header (expected t=<unix seconds>,v1=<hex>)")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # compare against every candidate so the time taken does not depend on which one matched
    matched = [hmac.compare_digest(expected, c) for c in candidates]
    if not any(matched):
        raise SignatureError("signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"signature timestamp is {int(now - timestamp)} s off (more than {tolerance_s} s): stale or replayed")
    return timestamp


class Target(Protocol):
    url: str
    secret: SecretStr | None


class ReverseCall(Protocol):
    """A target's declared way to take a delivery back (OUTBOUND_WEBHOOKS' "undo")."""

    url: str
    method: str


class PostWebhook(Input):
    # a configured target's name, never a raw URL: where Deputy may post is decided by the operator
    # ("name" and "payload" are accepted too: planners and playbooks name them either way)
    target: str = Field(min_length=1, max_length=64, validation_alias=AliasChoices("target", "name"))
    event: str = Field(default="deputy.notification", min_length=1, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("data", "payload"))

    @field_validator("data", mode="before")
    @classmethod
    def _data_object(cls, value: Any) -> Any:
        # a planner may hand over text: JSON text becomes the object, plain text goes under "text"
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return {"text": value}
            return parsed if isinstance(parsed, dict) else {"value": parsed}
        return value

    @field_validator("event")
    @classmethod
    def _event_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", value):
            raise ValueError("an event name is letters, digits and _ . : - (e.g. invoice.paid)")
        return value


class UndoWebhook(Input):
    target: str = Field(min_length=1, max_length=64)
    # the delivery being taken back (its Idempotency-Key), and what it carried
    undoes: str = Field(min_length=1)
    event: str = "deputy.notification"
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookPosted(Output):
    target: str
    status: int
    delivery_id: str
    response: str = ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def body_for(args: PostWebhook, delivery_id: str) -> bytes:
    """The same step always sends the same bytes (the time lives in the signature header)."""
    return json.dumps({"id": delivery_id, "event": args.event, "data": args.data}, separators=(",", ":"),
                      sort_keys=True, ensure_ascii=False, default=str).encode()


def post_webhook(targets: Mapping[str, Target], args: PostWebhook, key: str, timeout_s: float = 10.0,
                 clock: Any = time.time) -> WebhookPosted:
    """POST once. Raises TransientError (5xx, 429, 408, timeouts, refused) or PermanentError (other 4xx, 3xx)."""
    target = _target(targets, args.target)
    status, text = _send(target.url, "POST", target.secret, body_for(args, key), key, f"webhook {args.target}", timeout_s, clock)
    return WebhookPosted(target=args.target, status=status, delivery_id=key, response=text)


def reverse_webhook(targets: Mapping[str, Target], reverse: Mapping[str, ReverseCall], args: UndoWebhook, key: str,
                    timeout_s: float = 10.0, clock: Any = time.time) -> WebhookPosted:
    """Ask a target to take back the delivery ARGS.undoes, with its declared reverse call, signed with its secret."""
    target, call = _target(targets, args.target), reverse.get(args.target)
    if call is None:
        raise PermanentError(f"webhook {args.target} declares no reverse call, so its deliveries cannot be undone; add "
                             f"\"undo\": {{\"url\": ...}} to its entry in OUTBOUND_WEBHOOKS")
    body = json.dumps({"id": key, "event": args.event, "undoes": args.undoes, "data": args.data}, separators=(",", ":"),
                      sort_keys=True, ensure_ascii=False, default=str).encode()
    status, text = _send(call.url, call.method, target.secret, body, key, f"webhook {args.target}'s reverse call", timeout_s, clock)
    return WebhookPosted(target=args.target, status=status, delivery_id=key, response=text)


def _target(targets: Mapping[str, Target], name: str) -> Target:
    target = targets.get(name)
    if target is None:
        known = ", ".join(sorted(targets)) or "none"
        raise PermanentError(f"there is no webhook target named {name!r} (configured: {known}); add it to OUTBOUND_WEBHOOKS")
    return target


def _send(url: str, method: str, secret: SecretStr | None, body: bytes, key: str, where: str, timeout_s: float,
          clock: Any) -> tuple[int, str]:
    """One signed request: the status and the start of the answer, or TransientError / PermanentError."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Idempotency-Key": key, DELIVERY_HEADER: key}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret.get_secret_value(), body, int(clock()))
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            return response.status, response.read(2_000).decode("utf-8", errors="replace")[:500]
    except urllib.error.HTTPError as err:
        detail = err.read(500).decode("utf-8", errors="replace") if err.fp else ""
        if err.code >= 500 or err.code in (408, 425, 429):
            raise TransientError(f"{where} answered {err.code} {detail}".strip()) from err
        if 300 <= err.code < 400:
            raise PermanentError(f"{where} redirected ({err.code}) to {err.headers.get('Location')}; update its URL in WEBHOOKS") from err
        raise PermanentError(f"{where} refused the delivery: {err.code} {detail}".strip()) from err
    except urllib.error.URLError as err:
        raise TransientError(f"{where} unreachable: {err.reason}") from err
    except (TimeoutError, socket.timeout, ConnectionError) as err:
        raise TransientError(f"{where} did not answer within {timeout_s} s ({type(err).__name__})") from err


def webhooks_health(targets: Mapping[str, Target], timeout_s: float = 3.0) -> Health:
    """Open (and close) a TCP connection to each target: proves it is reachable without posting anything."""
    down = []
    for name, target in sorted(targets.items()):
        parts = urllib.parse.urlsplit(target.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), timeout=timeout_s).close()
        except OSError as err:
            down.append(f"{name} ({parts.hostname}:{port}: {err})")
    if down:
        return Health(ok=False, detail="unreachable: " + "; ".join(down))
    return Health(ok=True, detail=f"{len(targets)} target(s) reachable")


def webhook_capabilities(targets: Mapping[str, Target], timeout_s: float = 10.0,
                         reverse: Mapping[str, ReverseCall] | None = None) -> list[Capability]:
    """webhook.post to TARGETS; and webhook.undo where some target declares a REVERSE call (by target name)."""
    if not targets:
        return []
    reverse = dict(reverse or {})
    for name, url in [*((n, t.url) for n, t in targets.items()), *((n, r.url) for n, r in reverse.items())]:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook target {name!r} needs an http(s) URL, not {url!r}")
    unknown = sorted(set(reverse) - set(targets))
    if unknown:
        raise ValueError(f"reverse calls for {', '.join(unknown)}, which are not webhook targets")
    return [_post_capability(targets, reverse, timeout_s), *([_undo_capability(targets, reverse, timeout_s)] if reverse else [])]


def _named(args: Mapping[str, Any]) -> str:
    return str(args.get("target") or args.get("name") or "")


def _post_capability(targets: Mapping[str, Target], reverse: Mapping[str, ReverseCall], timeout_s: float) -> Capability:

    def post(args: BaseModel, ctx: EffectContext) -> BaseModel:
        return post_webhook(targets, PostWebhook.model_validate(args.model_dump()), ctx.idempotency_key, timeout_s)

    def undo(args: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any] | None:
        if _named(args) not in reverse:
            return None
        posted = PostWebhook.model_validate(dict(args))
        return UndoWebhook(target=posted.target, undoes=str(output["delivery_id"]), event=posted.event,
                           data=posted.data).model_dump()

    return Capability(
        name="webhook.post",
        description="POST a signed JSON event to one of the configured webhook targets: " + ", ".join(sorted(targets)) + ".",
        input_model=PostWebhook, output_model=WebhookPosted, risk=RiskClass.EXTERNAL_WRITE, side_effect=True,
        # what another system did with the event is undone only by that system: where the target declares a
        # reverse call, and only for that target
        reversible=bool(reverse), compensation="webhook.undo" if reverse else None,
        undo=undo if reverse else None, reversible_if=lambda args: _named(args) in reverse,
        # receivers dedupe by the Idempotency-Key header (and the body's id), which is our key
        idempotency="natural",
        retry=RetryPolicy(attempts=4, base_s=0.5, max_s=8.0, jitter=0.5),
        run=post,
        health=lambda: webhooks_health(targets),
        # the configured target, as the model may spell it (its field is `target`, `name` is an alias)
        target_fields=("target", "name"),
        title="Post to this webhook?",
    )


def _undo_capability(targets: Mapping[str, Target], reverse: Mapping[str, ReverseCall], timeout_s: float) -> Capability:

    def take_back(args: BaseModel, ctx: EffectContext) -> BaseModel:
        assert isinstance(args, UndoWebhook)
        return reverse_webhook(targets, reverse, args, ctx.idempotency_key, timeout_s)

    return Capability(
        name="webhook.undo",
        description="Ask a webhook target to take back a delivery, with the reverse call it declares: " + ", ".join(sorted(reverse)) + ".",
        input_model=UndoWebhook, output_model=WebhookPosted, risk=RiskClass.EXTERNAL_WRITE, side_effect=True,
        reversible=False, compensation=None,
        # the reverse call carries our key as Idempotency-Key too
        idempotency="natural",
        retry=RetryPolicy(attempts=4, base_s=0.5, max_s=8.0, jitter=0.5),
        run=take_back,
        target_fields=("target",),
        title="Take back this webhook delivery?",
        summary=lambda args, output: f"Asked {args.get('target')} to take back delivery {args.get('undoes')}.",
    )
