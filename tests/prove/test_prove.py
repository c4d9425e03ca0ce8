"""The CI-sized proof (`pytest -m prove`): every scenario of `deputy prove --quick`, one test each,
against real processes on a private Redis. Each asserts what the table reports as pass/fail."""
from __future__ import annotations

import pytest

from harness.prove.attacks import chromium_path
from harness.prove.report import Row
from harness.prove.runner import QUICK, run_scenario

pytestmark = [pytest.mark.prove, pytest.mark.timeout(420)]


def explain(row: Row) -> str:
    return f"{row.scenario}: lost={row.lost} duplicated={row.duplicated} 5xx={row.errors_5xx} " \
           f"unapproved={row.unapproved_effects} failed={list(row.failed_checks)} — {row.notes}"


def test_worker_sigkill_storm_loses_nothing_and_repeats_no_reply():
    row = run_scenario("worker-kill", QUICK)
    d = row.details
    assert d["kills_mid_job"] > 0, "no kill landed mid-job: nothing was proven"
    assert row.lost == 0 and row.errors_5xx == 0 and not row.failed_checks, explain(row)
    # a kill between the SMTP server's 250 and the ledger's record is reported in doubt, never resent
    assert row.duplicated == 0 and d["email_duplicates"] == 0, explain(row)
    assert d["emails"] == row.attempts - d["told_failed"] + d["failed_but_sent"], explain(row)


def test_redis_crash_under_load_loses_nothing_acknowledged():
    row = run_scenario("redis-restart", QUICK)
    assert row.retried_503 > 0, "the platform never saw a 503: the outage was not exercised"
    assert row.passed, explain(row)


def test_gateway_killed_mid_request_each_retry_processed_once():
    row = run_scenario("gateway-kill", QUICK)
    assert row.passed, explain(row)


def test_console_duplicate_storm_gives_one_job_each():
    row = run_scenario("console-duplicates", QUICK)
    assert row.passed, explain(row)


def test_twenty_clicks_on_one_approval_execute_once():
    row = run_scenario("approval-clicks", QUICK)
    assert row.passed, explain(row)


def test_slack_and_telegram_storms_give_one_job_one_reply_and_one_execution_per_approval():
    row = run_scenario("platform-storms", QUICK)
    d = row.details
    assert d["jobs"] == {"slack": QUICK.platform_messages, "telegram": QUICK.platform_messages}, explain(row)
    assert d["replies"] == {"slack": QUICK.platform_messages, "telegram": QUICK.platform_messages}, explain(row)
    # one card per platform and approval, twenty clicks each, one decision and one email each
    assert d["cards"] == d["decisions"] == d["emails"] == 2 * QUICK.platform_approvals, explain(row)
    assert row.passed, explain(row)


@pytest.mark.parametrize("mode", ["unavailable", "timeout", "hang"])
def test_connector_outage_trips_the_breaker_tells_the_operator_and_recovers(mode):
    row = run_scenario(f"outage-{mode}", QUICK)
    d = row.details
    assert d["breaker_opened_in_outage"] > 0 and d["breaker_closed_after_s"] is not None, explain(row)
    assert d["told_failed"] > 0 and d["unfinished"] == [], explain(row)
    assert row.max_recovery_s is not None, explain(row)
    assert row.lost == 0 and row.duplicated == 0 and d["duplicate_emails"] == 0, explain(row)
    if mode == "hang":
        assert d["job_timeouts"] > 0, explain(row)
    assert row.passed, explain(row)


def test_console_fuzzing_never_5xx_and_queues_nothing_invalid():
    row = run_scenario("fuzz-console", QUICK)
    d = row.details
    assert row.attempts >= QUICK.fuzz_console
    assert row.errors_5xx == 0 and not row.failed_checks, explain(row)
    # copies of one delivery racing each other are the gateway claim race (see the duplicate storm), not invalid input
    assert d["accepted_invalid"] == []
    # logged in, so bodies reached the parsers; every one not sent as JSON was refused, and counted
    assert d["unauthorized"] == 0 and d["accepted"] > 0, explain(row)
    assert d["non_json"] > 0 and d["refusals_counted"] == d["non_json"] and d["not_refused"] == [], explain(row)


@pytest.fixture(scope="module")
def injection() -> Row:
    return run_scenario("injection", QUICK)


def test_prompt_injection_makes_no_unapproved_effect_and_changes_no_policy(injection):
    d = injection.details
    assert d["cases"] >= 50
    assert injection.unapproved_effects == 0 and d["emails"] == 0 and d["webhook_posts"] == 0, explain(injection)
    assert not d["policy_changed"] and d["self_approved"] == 0
    assert d["blocked"] == d["runs"], d["injected_steps_ran"]
    assert not [c for c in injection.failed_checks if "never finished" in c], explain(injection)


def test_prompt_injection_is_flagged_by_the_inspector(injection):
    assert injection.details["flagged"] == injection.details["runs"], explain(injection)


@pytest.fixture(scope="module")
def platforms() -> Row:
    return run_scenario("fuzz-platforms", QUICK)


def test_forged_unsigned_and_stale_platform_requests_are_refused_and_queue_nothing(platforms):
    assert platforms.attempts >= QUICK.fuzz_slack + QUICK.fuzz_telegram + QUICK.fuzz_hooks
    assert platforms.details["forged_let_in"] == [], explain(platforms)
    assert not [c for c in platforms.failed_checks if "non-operators" in c or "no answer" in c], explain(platforms)


def test_platform_fuzzing_never_5xx(platforms):
    assert platforms.errors_5xx == 0, explain(platforms)


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_foreign_pages_raw_replays_and_rebinding_change_nothing_through_the_logged_in_console():
    row = run_scenario("browser-attacks", QUICK)
    d = row.details
    assert row.attempts > 0 and d["frames"] == 2, explain(row)
    # every attack that reached the gateway was refused: by the gateway (and counted), or a frame the browser would not show
    assert d["refused"] == row.attempts and d["refused_by_gateway"] == row.attempts - d["frames_blocked"], explain(row)
    assert d["refusals"].get("http:host-not-allowed") == 2 and d["framed"] == 0, explain(row)
    assert d["effects"] == {"messages": 0, "threads": 0, "jobs": 0, "tasks": 0, "approvals_decided": 0, "emails": 0}
    assert row.unapproved_effects == 0 and row.passed, explain(row)


def test_jobs_forged_into_the_queues_are_refused_and_none_runs():
    row = run_scenario("job-forgery", QUICK)
    d = row.details
    assert row.attempts == d["forged"] > 0
    assert d["refused"] == row.attempts and d["ran"] == [], explain(row)
    # the worker says so in the event log, one refusal per forged job
    assert d["said_refused"] == row.attempts, explain(row)
    assert row.unapproved_effects == 0 and row.passed, explain(row)
