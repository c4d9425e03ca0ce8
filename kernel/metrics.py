"""What Deputy's processes count, in Prometheus's own client: deliveries and acks (gateway), jobs and
retries (workers), free-text recognition (workers), periodic jobs (cron).

One `Metrics` per process, passed to what counts. A gateway, worker or cron started by the `deputy`
command writes its counts to files in METRICS_DIR (`process_metrics`), and the gateway's /metrics adds
up every process's files (bot/metrics.py); values that live in Redis (queues, outbox, approvals,
breakers, spend) are read by the gateway when it is scraped, not counted here. docs/metrics.md says why
files rather than Redis."""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values

# the gateway's acknowledgement is a few milliseconds; a slow one is a Redis in trouble
ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024)
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONFIDENCE_BUCKETS = tuple(round(0.1 * n, 1) for n in range(1, 11))
# the job a failed or refused job names when it is not one of Deputy's (its name is someone else's words)
UNREGISTERED = "unregistered"
CLARIFIED = "clarified"
CARRIED_OUT = "carried_out"


class Metrics:
    """This process's instruments, registered in `registry`. The gateway's /metrics reads that registry
    when `directory` is None (tests, one process), and the files in `directory` otherwise."""

    def __init__(self, registry: CollectorRegistry | None = None, directory: Path | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.directory = directory
        r = self.registry
        self.deliveries = Counter("deputy_deliveries", "Messages and clicks the gateway took, by channel and what became of them "
                                  "(accepted, duplicate, refused)", ["channel", "status"], registry=r)
        self.ack_seconds = Histogram("deputy_ack_seconds", "Time from taking a delivery to acknowledging it, in the gateway",
                                     ["channel"], buckets=ACK_BUCKETS, registry=r)
        self.job_seconds = Histogram("deputy_job_duration_seconds", "Time a worker spent on one job, by kind of job",
                                     ["job"], buckets=JOB_BUCKETS, registry=r)
        self.job_failures = Counter("deputy_job_failures", "Job attempts that failed (retried or for good), by kind of job",
                                    ["job"], registry=r)
        self.job_retries = Counter("deputy_job_retries", "Failed job attempts scheduled to run again, by kind of job", ["job"], registry=r)
        self.intent_confidence = Histogram("deputy_intent_confidence", "Classifier confidence of free-text messages, by source",
                                           ["source"], buckets=CONFIDENCE_BUCKETS, registry=r)
        self.intents = Counter("deputy_intents", "Free-text messages recognised, by outcome (carried_out, clarified)",
                               ["outcome"], registry=r)
        self.cron_enqueued = Counter("deputy_cron_enqueued", "Periodic jobs the scheduler put on a queue", ["job"], registry=r)
        # label children, looked up once: the gateway counts on every acknowledgement
        self._acks: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def delivery(self, channel: str, status: str, seconds: float) -> None:
        """One delivery taken by the gateway, and how long its acknowledgement took."""
        pair = self._acks.get((channel, status))
        if pair is None:
            pair = self._acks[(channel, status)] = (self.deliveries.labels(channel, status), self.ack_seconds.labels(channel))
        pair[0].inc()
        pair[1].observe(seconds)

    def job_done(self, job: str, seconds: float) -> None:
        self.job_seconds.labels(job).observe(seconds)

    def job_failed(self, job: str, retrying: bool) -> None:
        self.job_failures.labels(job).inc()
        if retrying:
            self.job_retries.labels(job).inc()

    def intent(self, clarified: bool, confidence: float, source: str) -> None:
        """One free-text message recognised: carried out, or answered with a clarifying question."""
        self.intents.labels(CLARIFIED if clarified else CARRIED_OUT).inc()
        self.intent_confidence.labels(source).observe(confidence)


def job_kind(func_name: str | None, registered: frozenset[str] | None = None) -> str:
    """`jobs.tasks.handle_message` → `handle_message`; a name Deputy does not register → `unregistered`."""
    if not func_name or (registered is not None and func_name not in registered):
        return UNREGISTERED
    return func_name.rpartition(".")[2]


def metrics_dir(data_dir: Path, configured: Path | None) -> Path:
    return configured or data_dir / "metrics"


_HOST = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()) or "host"


def process_id() -> str:
    """`<host>-<pid>`: distinct for processes on different hosts (containers) sharing one METRICS_DIR.
    The client library names each process's files by it and splits file names at '_', so it has none."""
    return f"{_HOST}-{os.getpid()}"


def parse_process_id(ident: str) -> tuple[str, int] | None:
    host, _, pid = ident.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def this_host() -> str:
    return _HOST


def process_metrics(directory: Path) -> Metrics:
    """This process's Metrics, written to files in `directory` for the gateway to add up. Called once, at
    the start of a gateway, worker or cron process (a forked worker calls it after the fork)."""
    directory.mkdir(parents=True, exist_ok=True)
    # Prometheus's client keeps its multiprocess switch process-wide (the class every value is made of)
    # and reads its directory only from the environment, so both are set here, once per process, before
    # any instrument exists. The identifier is ours: pids alone collide between containers.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue(process_id)
    return Metrics(CollectorRegistry(), directory)
