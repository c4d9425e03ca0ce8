"""`python -m harness.prove.worker`: the production worker pool with its lease timings given on the command line.

The proof kills workers and measures how fast their jobs come back; in its CI-sized run it shortens the
lease (the mechanism is the same, only the numbers are smaller)."""
from __future__ import annotations

import argparse

from bot.logs import configure_logging
from kernel.settings import load_settings
from memory.redaction import secret_values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.prove.worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lease", type=float, required=True, help="seconds a job's lease lasts without renewal")
    parser.add_argument("--beat", type=float, required=True, help="seconds between lease renewals")
    parser.add_argument("--maintenance", type=int, required=True, help="seconds between searches for abandoned jobs")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(secret_values(settings))

    import jobs.worker as worker

    worker.DeputyWorker.abandoned_after_s = args.lease
    worker.DeputyWorker.job_heartbeat_s = args.beat
    worker.JOB_HEARTBEAT_S = max(1.0, args.beat)
    worker.MAINTENANCE_INTERVAL_S = args.maintenance
    # an idle worker wakes from its blocking dequeue every worker_ttl - 15 s to run maintenance
    worker.WORKER_TTL_S = args.maintenance + 15
    worker.run_pool(settings.redis_url, args.workers)


if __name__ == "__main__":
    main()
