"""Tasks managed in plain words through the real gateway and a burst worker: rename, snooze and delete a task by
what it is about, as the operator would say it."""
from __future__ import annotations

from tests.bot.conftest import Deputy


async def said(deputy: Deputy, text: str) -> str:
    await deputy.say(text)
    await deputy.work()
    # the answer is the thread's last message, even when it is a task card shown before (it moves down)
    return (await deputy.messages())[-1]["text"]


async def test_a_task_is_renamed_snoozed_and_deleted_in_plain_words(deputy: Deputy) -> None:
    await said(deputy, "/task add renew the TLS certificate")
    await said(deputy, "/task add buy printer paper")
    assert (await said(deputy, "add task send the invoice #billing")).startswith("Added task #3: send the invoice")
    assert "(billing)" in await said(deputy, "/task list")

    assert "order the new TLS certificate" in await said(deputy, "rename the TLS certificate task to order the new TLS certificate")
    assert "Snoozed" in await said(deputy, "snooze the printer paper task until monday")
    listed = await said(deputy, "/task list")
    assert "order the new TLS certificate" in listed and "printer paper" not in listed

    assert (await said(deputy, "delete the task about the TLS certificate")).startswith("Deleted task #1")
    assert "TLS" not in await said(deputy, "/task list")
