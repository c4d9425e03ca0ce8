"""What the gateway process is made of, and what each channel adds to it: a channel factory takes the
first and returns the second. bot/server.py holds the one list of factories and assembles the app."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bot.channels import Sender
from bot.gateway import Gateway
from bot.refusals import Refusals
from bot.status import Working
from bot.web_guard import WebGuard
from kernel.metrics import Metrics
from kernel.settings import Settings
from memory.events import EventLog


@dataclass
class Services:
    """What the gateway process is made of; channel factories take what they need from it."""

    settings: Settings
    redis: Redis
    aredis: AsyncRedis
    gateway: Gateway
    events: EventLog
    refusals: Refusals
    guard: WebGuard
    # this process's instruments (kernel/metrics.py)
    metrics: Metrics = field(default_factory=Metrics)


@dataclass
class ChannelParts:
    name: str
    routes: list[web.RouteDef]
    sender: Sender
    middlewares: list[Callable[..., Awaitable[web.StreamResponse]]] = field(default_factory=list)
    # long-running tasks some channels need (Socket Mode, long polling)
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # the channel's "working on it" sign, shown as soon as a message is accepted
    working: Working | None = None


ChannelFactory = Callable[[Services], "ChannelParts | None"]
