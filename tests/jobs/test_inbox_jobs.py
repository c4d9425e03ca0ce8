"""Inbox triage on a schedule, against a real IMAP4rev1 server on loopback."""
from __future__ import annotations

import pytest

from jobs.cron import CRON
from jobs.inbox_jobs import inbox_tick, triage_if_due
from jobs.runtime import open_runtime
from kernel.settings import load_settings
from memory.events import EventLog
from tests.integrations.test_imap import mail

SLOT = 1_800_000_000.0  # a moment at the start of a 15-minute slot


@pytest.fixture
def inbox_settings(settings, imap, monkeypatch):  # type: ignore[no-untyped-def]
    for name, value in {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(imap.port), "IMAP_SECURITY": "none",
                        "IMAP_USERNAME": "me", "IMAP_PASSWORD": "inbox-pass", "INBOX_TRIAGE_EVERY_MIN": "15"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def rt(inbox_settings, redis):  # type: ignore[no-untyped-def]
    """A worker's runtime, built from the settings above."""
    with open_runtime(load_settings(), redis) as runtime:
        yield runtime


def test_unseen_mail_becomes_tasks_once_per_slot(rt, imap, redis):
    imap.deliver(mail("Bob Client <bob@client.example>", "Quote for the new logo?", "Hi, can you send a quote?"))
    # two cron processes tick in the same slot: one triage
    assert triage_if_due(rt, SLOT + 5) == {"ran": True, "ok": True, "tasks": 1}
    assert triage_if_due(rt, SLOT + 65)["ran"] is False
    assert [t.title for t in rt.tasks.list()] == ["Reply to Bob Client: Quote for the new logo?"]
    # the title is the sender's words: the task says so, for /ask and any plan that reads it
    assert [t.trust for t in rt.tasks.list()] == ["untrusted"]
    [triaged] = [e for e in EventLog(redis, rt.settings.workspace).recent(20) if e.kind == "inbox.triaged"]
    assert triaged.data["tasks"][0]["title"].startswith("Reply to Bob Client")

    # the next slot reads only what is new
    imap.deliver(mail("carol@shop.example", "Invoice 2025-014 overdue", "Please pay."))
    assert triage_if_due(rt, SLOT + 15 * 60 + 5)["tasks"] == 1
    assert len(rt.tasks.list()) == 2


def test_a_failing_mail_server_is_recorded_for_the_digest_and_retried_next_slot(rt, imap, redis):
    imap.password = "changed"  # the operator changed the mailbox password
    result = triage_if_due(rt, SLOT + 5)
    assert result["ran"] is True and result["ok"] is False
    [failed] = [e for e in EventLog(redis, rt.settings.workspace).recent(20) if e.kind == "job.failed"]
    assert "inbox_triage" == failed.data["job"] and failed.data["error"]
    # the digest tells the operator, under "Failed"
    from agents.digest import runs_since

    [run] = [r for r in runs_since(EventLog(redis, rt.settings.workspace), 0) if r.trace_id == failed.trace_id]
    assert run.intent == "inbox triage" and run.failed_error
    imap.password = "inbox-pass"
    imap.deliver(mail("dan@x.example", "Hello", "Hi"))
    assert triage_if_due(rt, SLOT + 15 * 60 + 5)["ok"] is True


def test_off_without_imap_or_with_a_zero_interval(settings, redis, monkeypatch):
    with open_runtime(load_settings(), redis) as rt:
        assert triage_if_due(rt, SLOT)["ran"] is False  # no IMAP_HOST
    monkeypatch.setenv("IMAP_HOST", "127.0.0.1")
    monkeypatch.setenv("INBOX_TRIAGE_EVERY_MIN", "0")
    with open_runtime(load_settings(), redis) as rt:
        assert triage_if_due(rt, SLOT)["ran"] is False


def test_the_inbox_tick_is_on_the_cron_list():
    assert any(p.func is inbox_tick and p.interval_s == 60 for p in CRON)
