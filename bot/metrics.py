"""The gateway's /metrics: every Deputy process's counts (kernel/metrics.py) and what Redis holds
(bot/store_metrics.py), in Prometheus's text format. Who may read it is bot/web_guard.py's to say."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kernel.metric_files import MetricFiles
from kernel.metrics import Metrics

log = logging.getLogger("deputy.metrics")

# how often a scrape also folds the files of finished processes into the archive
FOLD_EVERY_S = 60.0


class _Registered(Collector):
    """What one process's own registry holds (a gateway whose metrics are not written to files)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class Exposition:
    """The page /metrics serves: the processes' counts, from their files when they write them, and `store`."""

    def __init__(self, metrics: Metrics, store: Collector, fold_every_s: float = FOLD_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self.files = MetricFiles(metrics.directory) if metrics.directory is not None else None
        self.registry.register(self.files if self.files is not None else _Registered(metrics.registry))
        self.registry.register(store)
        self.fold_every_s = fold_every_s
        self.clock = clock
        self._folded_at: float | None = None

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The page and its content type, in the format the scraper's Accept header asks for (Prometheus's text
        format unless it asks for OpenMetrics); blocking (files and Redis), so run off the event loop."""
        if self.files is not None and (self._folded_at is None or self.clock() - self._folded_at >= self.fold_every_s):
            self._folded_at = self.clock()
            try:
                self.files.fold_dead()
            except OSError:
                log.exception("metrics: could not fold the files of finished processes in %s", self.files.directory)
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


EXPOSITION = web.AppKey("exposition", Exposition)


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = await asyncio.to_thread(request.app[EXPOSITION].render, request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
