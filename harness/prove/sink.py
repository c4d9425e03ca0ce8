"""An SMTP server (aiosmtpd, on loopback) that can be taken down on purpose, and counts what it delivered.

Outage modes:
  unavailable  every message answered "451 try again later" (SMTP's temporary failure)
  timeout      the server greets, then takes `slow_s` to answer EHLO: the client times out before sending anything
  hang         DATA is held until the outage ends, then the message is delivered: past any job timeout,
               and after the client gave up (the worst case for a sender: it cannot know it went out)"""
from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.controller import Controller

from harness.bench.harness import free_port

Mode = Literal["up", "unavailable", "timeout", "hang"]


@dataclass(frozen=True)
class Attempt:
    subject: str
    # when the client started DATA, when the server answered it
    started: float
    answered: float
    accepted: bool


@dataclass
class OutageHandler:
    slow_s: float = 3.0
    mode: Mode = "up"
    attempts: list[Attempt] = field(default_factory=list)
    # (subject, Message-ID, when delivered)
    delivered: list[tuple[str, str, float]] = field(default_factory=list)
    restored: threading.Event = field(default_factory=threading.Event)
    # when each client connection greeted us: every send attempt opens one
    connections: list[float] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.connections.append(time.time())
        if self.mode == "timeout":
            await asyncio.sleep(self.slow_s)
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        started = time.time()
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        subject = str(message["Subject"])
        if self.mode == "unavailable":
            self.attempts.append(Attempt(subject, started, time.time(), False))
            return "451 4.3.0 Service temporarily unavailable, try again later"
        if self.mode == "hang":
            # delivered once the server is back, whether or not the client is still there to hear the 250
            # (aiosmtpd cancels the handler when the client leaves; the delivery runs on by itself)
            await asyncio.shield(asyncio.ensure_future(self._deliver_when_back(subject, str(message["Message-ID"]), started)))
            return "250 Message accepted for delivery"
        self._deliver(subject, str(message["Message-ID"]), started)
        return "250 Message accepted for delivery"

    async def _deliver_when_back(self, subject: str, message_id: str, started: float) -> None:
        while not self.restored.is_set():
            await asyncio.sleep(0.05)
        self._deliver(subject, message_id, started)

    def _deliver(self, subject: str, message_id: str, started: float) -> None:
        self.delivered.append((subject, message_id, time.time()))
        self.attempts.append(Attempt(subject, started, time.time(), True))


class OutageMailServer:
    def __init__(self, slow_s: float = 3.0) -> None:
        self.handler = OutageHandler(slow_s=slow_s)
        self.handler.restored.set()
        self.port = free_port()
        # a generous server-side timeout: a client that went away must not cut a held DATA short
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, timeout=600)

    def settings(self, sender: str = "deputy@prove.example") -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_SECURITY": "none", "SMTP_FROM": sender}

    def set_mode(self, mode: Mode) -> None:
        if mode == "up":
            self.handler.restored.set()
        else:
            self.handler.restored.clear()
        self.handler.mode = mode

    def __enter__(self) -> "OutageMailServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.set_mode("up")
        self.controller.stop()

    def by_subject(self) -> Counter[str]:
        return Counter(subject for subject, _, _ in self.handler.delivered)

    def tries_by_subject(self) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {}
        for a in self.handler.attempts:
            out.setdefault(a.subject, []).append(a)
        return out
