"""The metrics files every Deputy process writes (kernel/metrics.py), read by the gateway and kept tidy by
the gateway and the worker pool.

Prometheus's client writes one file per kind of metric per process and never removes a dead process's
counters (they must not go down), so a machine whose workers come and go would collect files forever and
each scrape would read them all. A dead process's counters and histograms are folded into one archive
file per kind (the sums Prometheus sees do not change), and its gauges are dropped. Folding and reading
take a lock on the folder: a scrape never sees a file half folded, nor one folded twice."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from kernel.metrics import parse_process_id, this_host

log = logging.getLogger("deputy.metrics")

ARCHIVE = "archive"
FOLDED_KINDS = ("counter", "histogram", "summary")
LOCK = ".lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_here(ident: str) -> bool:
    """A process of this host that is gone. Another host's processes (containers) are its own to fold:
    their pids mean nothing here."""
    parsed = parse_process_id(ident)
    return parsed is not None and parsed[0] == this_host() and not pid_alive(parsed[1])


@dataclass(frozen=True)
class MetricFile:
    path: Path
    kind: str  # counter, histogram, summary, gauge
    ident: str  # the process id it belongs to, or "archive"

    @classmethod
    def parse(cls, path: Path) -> "MetricFile | None":
        parts = path.name[: -len(".db")].split("_")
        if len(parts) < 2:
            return None
        return cls(path, parts[0], parts[-1])


class MetricFiles(Collector):
    """Every process's metrics in `directory`, added up: a collector for the gateway's /metrics registry."""

    def __init__(self, directory: Path, dead: Callable[[str], bool] = dead_here) -> None:
        self.directory = directory
        self.dead = dead
        directory.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[MetricFile]:
        return [f for f in (MetricFile.parse(p) for p in sorted(self.directory.glob("*.db"))) if f is not None]

    def collect(self) -> Iterable[Metric]:
        with self._locked(fcntl.LOCK_SH):
            return MultiProcessCollector.merge([str(f.path) for f in self.files()], accumulate=True)

    def fold_dead(self) -> int:
        """Fold the files of processes `dead` says are gone into the archives; returns how many processes."""
        with self._locked(fcntl.LOCK_EX):
            files = self.files()
            dead = {f.ident for f in files if f.ident != ARCHIVE and self.dead(f.ident)}
            if not dead:
                return 0
            by_kind: dict[str, list[MetricFile]] = defaultdict(list)
            for f in files:
                if f.ident in dead:
                    by_kind[f.kind].append(f)
            for kind, gone in by_kind.items():
                if kind in FOLDED_KINDS:
                    self._fold(kind, gone)
                for f in gone:
                    f.path.unlink(missing_ok=True)
        log.info("metrics: folded the counts of %d finished process(es) into the archive", len(dead))
        return len(dead)

    def _fold(self, kind: str, gone: list[MetricFile]) -> None:
        """archive + gone → a new archive, swapped in whole (a crash leaves the old one or the new one)."""
        archive = self.directory / f"{kind}_{ARCHIVE}.db"
        sources = [str(p) for p in (archive, *(f.path for f in gone)) if p.exists()]
        merged = MultiProcessCollector.merge(sources, accumulate=False)
        fresh = self.directory / f".{kind}_{ARCHIVE}.new"
        fresh.unlink(missing_ok=True)
        out = MmapedDict(str(fresh))
        try:
            for key, value in _entries(merged):
                out.write_value(key, value, 0.0)
        finally:
            out.close()
        os.replace(fresh, archive)

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with open(self.directory / LOCK, "a+b") as handle:
            fcntl.flock(handle, mode)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _entries(metrics: Iterable[Metric]) -> Iterator[tuple[str, float]]:
    """The keys and values a process would have written, from merged (not accumulated) metrics."""
    for metric in metrics:
        for sample in metric.samples:
            names, labels = tuple(sample.labels), tuple(sample.labels.values())
            yield mmap_key(metric.name, sample.name, list(names), list(labels), metric.documentation), sample.value
