"""`deputy prove [--quick|--full] [--json]`: every scenario, one table, one JSON object.

--quick is the CI-sized run (a few minutes on two cores); --full is for a workstation: more requests,
more payloads, and the production worker lease (so the recovery bound it measures is the real one)."""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from harness.prove.cluster import PRODUCTION_LEASE, QUICK_LEASE, Lease
from harness.prove.report import Report, Row
from kernel.settings import Settings

log = logging.getLogger("deputy.prove")


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does in a mode."""

    storm_requests: int
    storm_rate: float
    kill_every_s: float
    lease: Lease
    redis_requests: int
    gateway_requests: int
    duplicate_messages: int
    approval_storms: int
    fuzz_console: int
    fuzz_slack: int
    fuzz_telegram: int
    fuzz_hooks: int
    # connector outages: requests per second, seconds the target is down, seconds of traffic after it is back
    outage_rate: float = 2.0
    outage_s: float = 10.0
    outage_after_s: float = 4.0
    # per-platform duplicate storms: Slack events (x4) and Telegram updates (x2), approval cards per platform
    platform_messages: int = 10
    platform_approvals: int = 1
    # corpus cases the injection self-test runs against a weakened build (None: all of them); another corpus
    # in the same YAML format (--corpus) instead of the built-in one
    injection_self_test: int | None = 20
    injection_corpus: Path | None = None


QUICK = Sizes(storm_requests=200, storm_rate=20, kill_every_s=1.0, lease=QUICK_LEASE, redis_requests=120,
              gateway_requests=80, duplicate_messages=24, approval_storms=2,
              fuzz_console=4_000, fuzz_slack=3_000, fuzz_telegram=2_000, fuzz_hooks=1_000)
FULL = Sizes(storm_requests=1_000, storm_rate=15, kill_every_s=2.0, lease=PRODUCTION_LEASE, redis_requests=600,
             gateway_requests=400, duplicate_messages=200, approval_storms=10,
             fuzz_console=20_000, fuzz_slack=15_000, fuzz_telegram=10_000, fuzz_hooks=5_000,
             outage_rate=4.0, outage_s=20.0, outage_after_s=10.0, platform_messages=50, platform_approvals=5,
             injection_self_test=None)

Scenario = Callable[[Path, Sizes], Row]


def _worker_storm(folder: Path, s: Sizes) -> Row:
    from harness.prove.faults import worker_kill_storm

    return worker_kill_storm(folder, s.storm_requests, s.storm_rate, s.kill_every_s, s.lease)


def _redis_restart(folder: Path, s: Sizes) -> Row:
    from harness.prove.faults import redis_restart

    return redis_restart(folder, s.redis_requests, rate=20, down_s=2.0)


def _gateway_kill(folder: Path, s: Sizes) -> Row:
    from harness.prove.faults import gateway_kill

    return gateway_kill(folder, s.gateway_requests, rate=30, claimed_unqueued=5)


def _console_duplicates(folder: Path, s: Sizes) -> Row:
    from harness.prove.storms import console_duplicates

    return console_duplicates(folder, s.duplicate_messages, copies=4)


def _approval_clicks(folder: Path, s: Sizes) -> Row:
    from harness.prove.storms import approval_click_storm

    return approval_click_storm(folder, s.approval_storms, clicks=20)


def _platform_storms(folder: Path, s: Sizes) -> Row:
    from harness.prove.platform_storms import platform_storms

    return platform_storms(folder, s.platform_messages, s.platform_approvals, clicks=20)


def _fuzz_console(folder: Path, s: Sizes) -> Row:
    from harness.prove.fuzzing import console_fuzz

    return console_fuzz(folder, s.fuzz_console)


def _injection(folder: Path, s: Sizes) -> Row:
    from harness.prove.injection import CORPUS, injection_suite

    return injection_suite(folder, s.injection_corpus or CORPUS, s.injection_self_test)


def _browser_attacks(folder: Path, s: Sizes) -> Row:
    from harness.prove.attacks import browser_attacks

    return browser_attacks(folder)


def _job_forgery(folder: Path, s: Sizes) -> Row:
    from harness.prove.forgery import job_forgery

    return job_forgery(folder)


def _fuzz_platforms(folder: Path, s: Sizes) -> Row:
    from harness.prove.platforms import platform_fuzz

    return platform_fuzz(folder, s.fuzz_slack, s.fuzz_telegram, s.fuzz_hooks)


def _outage(mode: str) -> Scenario:
    def scenario(folder: Path, s: Sizes) -> Row:
        from harness.prove.outage import Outage, connector_outage

        # job retries outlast the outage; the breaker opens after 3 failures and rests 2 s
        common = {"JOB_RETRIES": "3", "JOB_RETRY_BACKOFF": "1,2,4"}
        timings = {
            "unavailable": {},
            # the server takes 2.5 s to answer EHLO; we wait 1 s for each answer
            "timeout": {"SMTP_TIMEOUT_S": "1"},
            # the server holds DATA until it is back; the job is cut short after 2 s, and a step whose worker was
            # cut short is found in doubt once its 3 s effect lease lapses
            "hang": {"JOB_TIMEOUT_S": "2", "EFFECT_LEASE_S": "3", "JOB_RETRIES": "4", "JOB_RETRY_BACKOFF": "1,2,4,4"},
        }[mode]
        return connector_outage(folder, Outage(mode=mode, outage_s=s.outage_s, after_s=s.outage_after_s,  # type: ignore[arg-type]
                                               rate=s.outage_rate, settings={**common, **timings}, slow_s=2.5))

    return scenario


# The one list of scenarios, in the order they run.
SCENARIOS: dict[str, Scenario] = {
    "worker-kill": _worker_storm,
    "redis-restart": _redis_restart,
    "gateway-kill": _gateway_kill,
    "console-duplicates": _console_duplicates,
    "approval-clicks": _approval_clicks,
    "platform-storms": _platform_storms,
    "outage-unavailable": _outage("unavailable"),
    "outage-timeout": _outage("timeout"),
    "outage-hang": _outage("hang"),
    "fuzz-console": _fuzz_console,
    "fuzz-platforms": _fuzz_platforms,
    "injection": _injection,
    "browser-attacks": _browser_attacks,
    "job-forgery": _job_forgery,
}


def run_scenario(name: str, sizes: Sizes, keep: bool = False) -> Row:
    """Run one scenario in a fresh temp folder; a scenario that crashes is a failed row, not a crash of the run."""
    folder = Path(tempfile.mkdtemp(prefix=f"deputy-prove-{name}-"))
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    started = time.time()
    try:
        row = SCENARIOS[name](folder, sizes)
    except Exception as err:
        log.error("scenario %s crashed:\n%s", name, traceback.format_exc())
        row = Row(scenario=name, attempts=0, failed_checks=(f"crashed: {type(err).__name__}: {err}"[:300],),
                  notes="")
        keep = True
    row.details["seconds"] = round(time.time() - started, 1)
    if not row.passed:
        keep = True
        row = Row(**{**row.__dict__, "notes": (row.notes + f"; logs in {folder}").lstrip("; ")})
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the CI-sized run (default)")
    mode.add_argument("--full", action="store_true", help="more of everything, production worker lease (local use)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="SCENARIO",
                        help=f"run only these scenarios ({', '.join(SCENARIOS)})")
    parser.add_argument("--out", type=Path, help="folder for last.txt / last.json (default DATA_DIR/prove)")
    parser.add_argument("--keep", action="store_true", help="keep every scenario's temp folder (logs, Redis files)")
    parser.add_argument("--corpus", type=Path, help="an injection corpus in the format of tests/prove/injection_corpus/cases.yaml")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy prove")
    add_arguments(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, settings: Settings) -> Report:
    """Run the scenarios the arguments choose; the report is also written to --out (or DATA_DIR/prove)."""
    sizes = FULL if args.full else QUICK
    if args.corpus:
        sizes = replace(sizes, injection_corpus=args.corpus.resolve())
    report = Report(mode="full" if args.full else "quick")
    for name in args.only or list(SCENARIOS):
        log.info("prove: %s ...", name)
        row = report.add(run_scenario(name, sizes, keep=args.keep))
        log.info("prove: %s: %s", name, "pass" if row.passed else "FAIL")
    report.finished_at = time.time()
    report.write(args.out or settings.data_dir / "prove")
    return report


def main(args: argparse.Namespace, settings: Settings) -> int:
    """`deputy prove`: prints the table (or JSON); exit status 1 when anything was lost, duplicated or let through."""
    import json

    report = run(args, settings)
    print(json.dumps(report.as_json()) if args.json else report.table(), flush=True)
    return 0 if report.passed else 1
