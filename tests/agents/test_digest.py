import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest

from agents import skills
from agents.approvals import Approval, ApprovalStore
from agents.costs import CostLedger, Spend
from agents.digest import DigestBuilder, Mark
from integrations.calendar import CalendarClient, CreateEvent
from kernel.settings_models import CalDavSettings
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore
from harness.fakes.radicale_server import RadicaleServer

ZONE = "Europe/Lisbon"


@pytest.fixture
def radicale(tmp_path: Path):
    server = RadicaleServer(tmp_path / "radicale").start()
    with caldav.DAVClient(url=server.url, username=server.username, password=server.password) as client:
        client.principal().make_calendar(name="Work")
    yield server
    server.stop()


def seed_approval(redis, workspace: str) -> Approval:
    now = time.time()
    return ApprovalStore(redis, workspace).create(Approval(
        id="ap1", run_id="run-ap1", step_index=0, trace_id="feedc0de00000001", capability="email.send",
        args={"to": ["ana@client.example"], "subject": "Invoice 12", "body": "Attached."}, digest="d" * 64,
        rationale="you asked me to send the invoice", risk_score=62, risk_reasons=("external recipient",),
        title="Send this email?", preview="To: ana@client.example\nSubject: Invoice 12\n\nAttached.",
        deciders=("operator",), created_at=now, expires_at=now + 3600,
    ))


async def test_digest_of_a_seeded_workspace(deputy, settings, monkeypatch, radicale, redis):
    monkeypatch.setenv("TIMEZONE", ZONE)
    monkeypatch.setenv("CALDAV_URL", radicale.url)
    monkeypatch.setenv("CALDAV_USERNAME", radicale.username)
    monkeypatch.setenv("CALDAV_PASSWORD", radicale.password)
    monkeypatch.setenv("CALDAV_CALENDAR", "Work")
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    calendar = CalendarClient(CalDavSettings(url=radicale.url, username=radicale.username, password=radicale.password,
                                             calendar="Work"), ZONE)
    calendar.create(CreateEvent(summary="Call with Bob", start=dt.datetime.combine(today, dt.time(15, 30)), duration_min=45,
                                location="Zoom"), key="seed:0")
    seed_approval(redis, settings.workspace)
    await deputy.say("/task add Send the invoice to Ana")
    await deputy.say("/task add Renew the domain #admin")
    await deputy.say("/remember Ana prefers email")
    await deputy.work()
    done = await deputy.say("/task done 1")
    await deputy.work()

    def broken(ctx, intent):
        raise ConnectionError("search backend unreachable")

    monkeypatch.setitem(skills.SKILLS, "ask", broken)
    failed = await deputy.say("/ask what did Ana say")
    await deputy.work()
    monkeypatch.undo()  # restores SKILLS and the env: the digest itself runs with the settings above
    for name, value in (("TIMEZONE", ZONE), ("CALDAV_URL", radicale.url), ("CALDAV_USERNAME", radicale.username),
                        ("CALDAV_PASSWORD", radicale.password), ("CALDAV_CALENDAR", "Work"), ("REDIS_URL", settings.redis_url)):
        monkeypatch.setenv(name, value)

    await deputy.say("/digest", thread_id="morning")
    await deputy.work()
    messages = await deputy.messages("morning")
    digest = next(m for m in messages if m["text"].startswith("☀️ Your digest"))
    text = digest["text"]
    sections = {block.split("\n")[0].strip("*"): block.split("\n")[1:] for block in text.split("\n\n")[1:]}

    assert sections["Needs your decision"] == ["• Send this email? (card below)"]
    assert any(done["trace_id"] in line and "/task done 1" in line for line in sections["Done"])
    assert "• closed task #1 Send the invoice to Ana" in sections["Done"]
    [failure] = sections["Failed, and what I did"]
    assert "search backend unreachable" in failure and f"tried {settings.job.retries + 1} times" in failure
    assert "told you in the thread" in failure and failed["trace_id"] in failure
    assert sections["Today's calendar"] == ["• 15:30–16:15 Call with Bob (Zoom)"]
    assert "• #2 Renew the domain (admin)" in sections["New tasks"]
    assert sections["Memory"] == ["• 1 notes, 0 facts"]

    # the pending approval comes along with its buttons, still live
    [approval] = [m for m in messages if m["card"] and m["card"]["title"] == "Send this email?"]
    assert [b["action"] for b in approval["card"]["buttons"]] == ["approval.approve", "approval.reject"]
    assert "That's your digest: 1 waiting for you, 4 done, 1 failed." in [m["text"] for m in messages]


def test_memory_growth_and_spend_since_the_last_digest(redis):
    ledger = CostLedger(redis, "ws", ZONE)
    ledger.record(Spend(run_id="r", project="inbox", model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=100,
                        cost=12_300, day=ledger.today().isoformat()))
    NoteStore(redis, "ws").add("one")
    NoteStore(redis, "ws").add("two")
    FactStore(redis, "ws").set("vat id", "PT123")

    from agents.budget import Budgets, Caps

    budgets = Budgets(redis, ledger, Caps.parse(1.0, 20.0))
    builder = DigestBuilder(EventLog(redis, "ws"), TaskStore(redis, "ws"), NoteStore(redis, "ws"), FactStore(redis, "ws"), ZONE,
                            budgets=budgets)
    digest = builder.build(dt.datetime.now(dt.timezone.utc), previous=Mark(sent_at=time.time() - 3600, notes=1, facts=1))
    text = digest.text
    assert "2 notes (+1), 1 facts (+0) since the last digest" in text
    assert "inbox: today $0.0123 of $1.00, this month $0.0123 of $20.00" in text
    assert "Spend, 14 days: ▁▁▁▁▁▁▁▁▁▁▁▁▁█ (today $0.0123" in text
    assert "no calendar connected" in text
    assert digest.chart_png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_calendar_outage_costs_one_line_not_the_digest(redis):
    class Down:
        def agenda(self, day):
            raise ConnectionError("caldav.example unreachable")

    builder = DigestBuilder(EventLog(redis, "ws"), TaskStore(redis, "ws"), NoteStore(redis, "ws"), FactStore(redis, "ws"), ZONE,
                            agenda=Down())
    text = builder.build(dt.datetime.now(dt.timezone.utc)).text
    assert "could not read the calendar (ConnectionError: caldav.example unreachable)" in text
    assert "Nothing is waiting for you." in text
