"""`deputy bench intents`: how soon and how fast Deputy answers free text.

  startup_s        `deputy up` started → console link printed (it waits for a worker that can answer free text)
  first_answer_s   link printed → the answer to a first free-text message, through the console API (then
                   `first_unsure_answer_s`: the first dev message the large model reads, sent next)
  p50_ms / p99_ms  one message classified, slots included, over --passes passes of the operator dev set after
                   a warm-up pass: the recogniser of `deputy eval intents --operator` (harness/bench/operator_intents.py)
  worker_pss_mb    proportional set size of each `deputy up` worker (the largest) after they answered the dev set
                   through the console, so pages the workers share count once (`pool_pss_mb`: the pool process that
                   loaded what they share, holding its part of it)
and from the same run: the share of messages the large model read, in-scope accuracy, out-of-scope
messages not acted on, messages clarified, and the load average."""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench import operator_intents
from harness.bench.harness import ROOT, flush, scratch_url
from harness.bench.startup import Console, deputy_up, pss_mb, worker_pids
from kernel.settings import Settings

DEV_SET = ROOT.parent / "shared" / "eval" / "operator" / "operator_intents_dev.jsonl"
# the first message a new user types, in no particular style: not from the dev set
FIRST_MESSAGE = "add a task to renew the domain name"
UP_FIGURES = ("startup_s", "first_answer_s", "first_unsure_answer_s", "dev_messages_unanswered", "worker_pss_mb",
              "worker_pss_each_mb", "pool_pss_mb")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy bench intents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_SET, help="operator messages, JSON lines {text, intent} (default: the dev set)")
    parser.add_argument("--passes", type=int, default=10, help="timed passes over the messages (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="`deputy up` workers (default 2)")
    parser.add_argument("--no-up", action="store_true", help="only the per-message figures (no `deputy up`)")
    parser.add_argument("--redis-url", help="a Redis database the benchmark may flush (default: db 15 of REDIS_URL)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the link or an answer")
    args = parser.parse_args(argv)
    if not args.data.exists():
        parser.error(f"{args.data} does not exist (the operator dev set lives in ../shared/eval/operator)")
    return args


def per_message(settings: Settings, rows: list[tuple[str, str]], passes: int) -> tuple[dict[str, Any], list[str]]:
    """Figures over `passes` timed passes after one warm-up pass, and the messages the large model read."""
    recognizer = operator_intents.worker_recognizer(settings, False, False)
    recognizer.watcher.current()
    operator_intents.load_models(recognizer)
    warm = operator_intents.answer_all(recognizer, rows)
    load_before = os.getloadavg()
    answers = [a for _ in range(passes) for a in operator_intents.answer_all(recognizer, rows)]
    load_after = os.getloadavg()
    times = np.array([a.ms for a in answers])
    quality = operator_intents.figures(answers[:len(rows)])
    figures = {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "messages_timed": len(answers),
        # the two paths of the cascade apart: read by the small model only, and by both
        **{f"{model}_p{q}_ms": round(float(np.percentile(part, q)), 2) for model in ("small", "large")
           if len(part := [a.ms for a in answers if getattr(a, "model", "") == model]) for q in (50, 99)},
        "large_model_share": quality.get("large_model_share", 0.0),
        "in_scope_accuracy": quality["in_scope_accuracy"],
        "oos_not_acted": quality["oos_not_acted"],
        "clarified": quality["clarified"],
        "features": operator_intents.features_name(recognizer),
        "load_avg": [round(x, 2) for x in (*load_before[:1], *load_after[:1])],
    }
    return figures, [a.text for a in warm if getattr(a, "model", "") == "large"]


async def _through_console(up: Any, texts: list[str], unsure: list[str], timeout_s: float) -> dict[str, Any]:
    async with Console(up) as console:
        first = await console.ask(FIRST_MESSAGE, timeout_s) - up.linked
        first_unsure = None
        if unsure:
            sent = time.perf_counter()
            first_unsure = await console.ask(unsure[0], timeout_s) - sent
        missing = 0
        for text in texts:
            try:
                await console.ask(text, timeout_s=30)
            except asyncio.TimeoutError:
                missing += 1
    return {"first_answer_s": round(first, 2),
            "first_unsure_answer_s": round(first_unsure, 2) if first_unsure is not None else None,
            "dev_messages_unanswered": missing}


def startup(settings: Settings, redis_url: str, workers: int, texts: list[str], unsure: list[str], timeout_s: float) -> dict[str, Any]:
    flush(redis_url)
    try:
        with deputy_up(redis_url, workers, timeout_s) as up:
            result = {"startup_s": round(up.linked - up.started, 2)}
            result.update(asyncio.run(_through_console(up, texts, unsure, timeout_s)))
            pools, workers = worker_pids(up.proc.pid)
            each = [round(pss_mb(pid), 1) for pid in workers]
            # the pool process holds a share of what its workers share with it: reported, so the total is whole
            result.update(worker_pss_mb=max(each) if each else None, worker_pss_each_mb=each,
                          pool_pss_mb=round(sum(pss_mb(pid) for pid in pools), 1))
    finally:
        flush(redis_url)
    return result


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    args = _parse(argv)
    rows = operator_intents.read_labelled(args.data)
    started = time.perf_counter()
    # in-process first: it also reads back (or trains and saves) the classifier `deputy up`'s workers read
    figures, unsure = per_message(settings, rows, args.passes)
    # --no-up leaves the `deputy up` figures empty, so the shape of the result stays the same
    result: dict[str, Any] = dict.fromkeys(UP_FIGURES)
    if not args.no_up:
        result.update(startup(settings, scratch_url(settings, args.redis_url), args.workers, [t for t, _ in rows], unsure,
                              args.timeout))
    result.update(figures)
    result["bench_s"] = round(time.perf_counter() - started, 1)
    return result
