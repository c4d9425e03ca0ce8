"""`deputy bench connectors`: each connector's call latency through the full invoke path (validate →
ledger claim → breaker → connector → record) against real local servers, plus the cost of a replay
(a retried step answered from the ledger) and the inbound-hook signature check."""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable

from pydantic import SecretStr
from redis import Redis

from harness.bench.harness import base_parser, flush, percentile, scratch_url
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings, ImapSettings, SmtpSettings, WebhookSettings, WebhookTarget
from integrations.breaker import CircuitBreaker
from integrations.capability import Capability, EffectContext
from integrations.invoke import call
from integrations.ledger import EffectLedger
from integrations.registry import build_capabilities
from integrations.webhooks import sign, verify


def _figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2)}


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("connectors")
    parser.add_argument("--calls", type=int, default=100, help="calls per capability")
    args = parser.parse_args(argv)
    # real local servers, the same ones the tests use (aiosmtpd and radicale are test extras)
    from harness.fakes.imap_server import ImapServer
    from harness.fakes.radicale_server import RadicaleServer
    from harness.fakes.smtp_server import SmtpServer
    from harness.fakes.webhook_receiver import WebhookReceiver

    for noisy in ("mail.log", "radicale"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    url = scratch_url(settings, args.redis_url)
    flush(url)
    redis = Redis.from_url(url)
    ws = settings.workspace
    folder = Path(tempfile.mkdtemp(prefix="deputy-bench-"))
    smtp, imap, receiver = SmtpServer().start(), ImapServer().start(), WebhookReceiver().start()
    radicale = RadicaleServer(folder / "radicale").start()
    try:
        import caldav

        with caldav.DAVClient(url=radicale.url, username=radicale.username, password=radicale.password) as dav:
            dav.principal().make_calendar(name="Bench")
        for i in range(args.calls):
            message = EmailMessage()
            message["From"], message["Subject"], message["Message-ID"] = f"c{i}@client.example", f"Hello {i}", f"<{i}@b>"
            message.set_content("body")
            imap.deliver(message)
        config = settings.model_copy(update={
            "workspace": ws, "timezone": "UTC",
            "smtp": SmtpSettings(host="127.0.0.1", port=smtp.port, security="none", sender="me@bench.example"),
            "imap": ImapSettings(host="127.0.0.1", port=imap.port, security="none", username=imap.username,
                                 password=SecretStr(imap.password)),
            "caldav": CalDavSettings(url=radicale.url, username=radicale.username, password=SecretStr(radicale.password)),
            "webhooks": WebhookSettings(outbound={"bench": WebhookTarget(url=receiver.url(), secret=SecretStr("s"))}),
        })
        caps = build_capabilities(config, redis)
        ledger = EffectLedger(redis, ws)
        day = dt.date(2030, 1, 7)
        plans: dict[str, Callable[[int], dict[str, Any]]] = {
            "email.send": lambda i: {"to": [f"c{i}@client.example"], "subject": "Bench", "body": "Hello"},
            "email.triage_inbox": lambda i: {"limit": 1},
            # spread over 20 days, so the agenda below reads a day of calls/20 events
            "calendar.create": lambda i: {"summary": f"Slot {i}", "start": f"{day + dt.timedelta(days=i % 20)}T{8 + i % 10:02d}:00:00"},
            "calendar.agenda": lambda i: {"day": str(day)},
            "webhook.post": lambda i: {"target": "bench", "event": "bench.ping", "data": {"i": i}},
        }
        result: dict[str, Any] = {"calls": args.calls, "agenda_events_per_day": max(1, args.calls // 20)}
        for name, make in plans.items():
            capability: Capability = caps[name]
            breaker = CircuitBreaker(redis, name, ws)
            ms: list[float] = []
            replay_ms: list[float] = []
            for i in range(args.calls):
                ctx = EffectContext(idempotency_key=f"bench-{name}-{i}:0", workspace=ws, trace_id="bench", run_id=f"bench-{i}")
                began = time.perf_counter()
                call(capability, make(i), ctx, ledger, breaker)
                ms.append((time.perf_counter() - began) * 1000)
                if capability.side_effect:
                    began = time.perf_counter()
                    assert call(capability, make(i), ctx, ledger, breaker).replayed
                    replay_ms.append((time.perf_counter() - began) * 1000)
            result[name] = {**_figures(ms), **({"replay_p50_ms": _figures(replay_ms)["p50_ms"]} if replay_ms else {})}
        body = b'{"id": "ord_1", "total": 12.5}'
        began = time.perf_counter()
        for _ in range(10_000):
            verify("secret", body, sign("secret", body, 1_750_000_000), now=1_750_000_000)
        result["hook_signature_verify_us"] = round((time.perf_counter() - began) / 10_000 * 1e6, 2)
        result["delivered"] = {"emails": len(smtp.messages), "webhooks": len(receiver.received)}
    finally:
        smtp.stop()
        imap.stop()
        receiver.stop()
        radicale.stop()
    flush(url)
    return result
