"""Reminders you can manage, through the console: set a recurring one, list them, cancel by number, by words and by button."""
from __future__ import annotations

from agents.skills import SKILLS
from jobs.runtime import open_runtime
from jobs.skill_contexts import skill_context
from kernel.messages import Intent
from kernel.settings import load_settings


async def click(deputy, thread_id: str, button: dict, client_id: str) -> None:  # type: ignore[no-untyped-def]
    resp = await deputy.client.post("/api/decisions", json={"thread_id": thread_id, "action": button["action"],
                                                             "value": button["value"], "client_id": client_id})
    assert resp.status == 202
    await deputy.work()


async def last(deputy, text: str, thread_id: str = "r1") -> dict:  # type: ignore[no-untyped-def]
    await deputy.say(text, thread_id=thread_id)
    await deputy.work()
    return (await deputy.messages(thread_id))[-1]


async def test_list_and_cancel_reminders_by_number_words_and_button(deputy):
    weekly = await last(deputy, "/remind every Monday at 9 to send the invoices")
    assert weekly["text"].startswith("OK, I'll remind you to send the invoices every Monday at 09:00 (")
    assert "/reminders cancel 1 stops it" in weekly["text"]
    await last(deputy, "/remind call the dentist tomorrow at 10am")
    await last(deputy, "/remind pay the rent on the 1st of each month")

    listing = await last(deputy, "/reminders")
    lines = listing["text"].splitlines()
    assert lines[0] == "Your reminders:" and lines[-1] == "Cancel one with /reminders cancel N."
    assert any(line.startswith("1. send the invoices — every Monday at 09:00 (next Mon ") for line in lines)
    assert any(line.startswith("2. call the dentist — ") for line in lines)
    assert any(line.startswith("3. pay the rent — on the 1st of each month at 09:00 (next ") for line in lines)
    assert sorted(b["label"] for b in listing["card"]["buttons"]) == [
        "Cancel 1. send the invoices", "Cancel 2. call the dentist", "Cancel 3. pay the rent"]

    by_number = await last(deputy, "/reminders cancel 1")
    assert by_number["text"].startswith("Cancelled: send the invoices (every Monday at 09:00") and "No more reminders" in by_number["text"]
    by_words = await last(deputy, "/reminders cancel the dentist")
    assert by_words["text"].startswith("Cancelled: call the dentist")
    unknown = await last(deputy, "/reminders cancel the gym")
    assert unknown["ok"] is False and "could not find a reminder matching 'the gym'" in unknown["text"]

    [rent] = (await last(deputy, "/reminders"))["card"]["buttons"]
    await click(deputy, "r1", rent, "cancel-rent")
    assert (await deputy.messages("r1"))[-1]["text"].startswith("Cancelled: pay the rent")
    await click(deputy, "r1", rent, "cancel-rent-again")
    assert (await deputy.messages("r1"))[-1]["text"] == "That reminder was already cancelled."
    empty = await last(deputy, "/reminders")
    assert empty["text"].startswith("No reminders pending.") and empty["card"] is None


async def test_free_text_cancel_asks_which_when_several_match(deputy):
    await last(deputy, "/remind every day at 8am to stretch", thread_id="r2")
    await last(deputy, "/remind every friday at 5pm to stretch the budget", thread_id="r2")
    # free text reaches the skill as the recogniser hands it over: the action and the words that name the reminder
    with open_runtime(load_settings(), deputy.redis) as rt:
        ctx = skill_context(rt, "trace-c", "operator", "r2", "console")
        both = SKILLS["reminders"](ctx, Intent(name="reminders", text="cancel my stretch reminder",
                                               slots={"action": "cancel", "query": "my stretch reminder"}))
        assert both.text.startswith("Which one? 1. stretch; 2. stretch the budget") and both.card is not None
        one = SKILLS["reminders"](ctx, Intent(name="reminders", text="stop reminding me about the budget",
                                              slots={"action": "cancel", "query": "the budget"}))
        assert one.text.startswith("Cancelled: stretch the budget (every Friday at 17:00")
