"""The dotted names of Deputy's job functions. Redis keeps them (queued and scheduled jobs, reminders,
approval resumes, spend requests), so they outlive deploys: a function that moves keeps its old name
working (jobs/registry.py lists every name a worker will run)."""
from __future__ import annotations

# the gateway's: one job per message and per button click
HANDLE_MESSAGE = "jobs.tasks.handle_message"
HANDLE_DECISION = "jobs.tasks.handle_decision"
# the failure callback of every interactive and scheduled job: tell the operator in the thread
REPORT_FAILURE = "jobs.tasks.report_failure"
# agent runs, and runs resumed after an approval
RUN_PLAN = "jobs.agent_jobs.run_plan"
RESUME_RUN = "jobs.agent_jobs.resume"
# a reminder at its due time
FIRE_REMINDER = "jobs.reminder_jobs.fire_reminder"
# periodic (jobs/cron.py)
DIGEST_TICK = "jobs.digest_jobs.digest_tick"
INBOX_TICK = "jobs.inbox_jobs.inbox_tick"
SWEEP_RETENTION = "jobs.ingest.sweep_retention"
# `deputy ingest`: one file
INGEST_FILE = "jobs.ingest.ingest_file"
# a job that only answers: a worker's liveness, and the queue benchmark
PING = "jobs.health.ping"
