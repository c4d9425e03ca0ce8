"""`deputy replay TRACE [--dry-run] [--json]`: a recorded run carried out again by today's planner, inspector,
policy and executor on the recorded model answers and capability results (no model call, no effect), with the
first place it goes another way. Exit status: 0 reproduced, 1 diverged, 2 nothing to replay, 3 inputs forgotten."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from kernel.settings import Settings

if TYPE_CHECKING:
    from agents.replay import ReplayReport

EXIT = {"reproduced": 0, "diverged": 1, "no_recording": 2, "inputs_forgotten": 3}


def replay_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace_id")
    parser.add_argument("--dry-run", action="store_true",
                        help="plan, inspect and put each step to the policy, executing nothing (results and approvals are "
                             "not compared)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    from redis import Redis

    from agents.policy import PolicyError
    from jobs.replay_wiring import replay_trace

    try:
        report = replay_trace(settings, Redis.from_url(settings.redis_url), args.trace_id, dry_run=args.dry_run)
    except PolicyError as err:
        print(f"deputy: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(), ensure_ascii=False) if args.json else render(report, settings.workspace))
    return EXIT[report.status]


def render(report: "ReplayReport", workspace: str) -> str:
    head = f"replay of trace {report.trace_id}" + (" (dry run: nothing executed)" if report.dry_run else "")
    if report.status == "no_recording":
        return (f"no recording of trace {report.trace_id} in workspace '{workspace}': a run is recorded when it is planned, "
                "and kept as long as its trace")
    if report.status == "inputs_forgotten":
        return (f"{head}: inputs forgotten — {', '.join(report.forgotten)}. They were forgotten at your request, so the "
                "run cannot be replayed; this is not a divergence.")
    lines = [f"{head}: " + (f"diverges at {report.divergence}" if report.divergence else "reproduced, no divergence")]
    if report.steps:
        lines.append(f"{'step':<5} {'capability':<18} {'recorded':<28} now")
        for row in report.steps:
            lines.append(f"{row['step']:<5} {row['now']['capability'] or row['recorded']['capability']:<18} "
                         f"{_said(row['recorded']):<28} {_said(row['now'])}")
    lines.append(f"model answers taken from the record: {report.answers_used} of {report.answers_recorded}; "
                 "no model was called and no capability acted.")
    return "\n".join(lines)


def _said(view: dict[str, object]) -> str:
    decision, status = view["decision"], view["status"]
    return str(decision) if status == "not reached" or decision == status else f"{decision}, {status}"
