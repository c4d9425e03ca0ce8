"""The journey cluster works end to end: what a user types on each channel reaches a real worker through
the real gateway, Deputy's answers (text, cards, buttons) come back where the user is, and what it does
lands in the real servers (mail) that journeys read back."""
from __future__ import annotations

import datetime as dt


def test_console_task_is_added_then_marked_done(console):
    added = console.ask("/task add send the invoice")
    assert "Added task #" in added.text and "send the invoice" in added.text
    assert added.card is not None and added.card.labels == ["Mark done", "Snooze to tomorrow", "Delete"]

    console.click("Mark done")
    done = console.reply()
    assert done.edit and done.id == added.id
    assert "Done" in done.card.resolution and done.card.buttons == ()


def test_slack_remembers_then_answers_from_memory(slack):
    noted = slack.ask("/remember Ana prefers calls after 10am")
    assert noted.text.startswith("Noted.")

    answer = slack.ask("/ask when does Ana prefer calls?")
    assert "10am" in answer.shown


def test_telegram_remembers_then_answers_from_memory(telegram):
    noted = telegram.ask("/remember the office wifi password is bluebird42")
    assert noted.text.startswith("Noted.")

    answer = telegram.ask("/ask what is the office wifi password?")
    assert "bluebird42" in answer.shown


def test_an_approved_email_reaches_the_mail_server(console, cluster):
    card = console.ask("/email ana@acme.io Contract | Hi Ana, the contract is attached.")
    assert card.card is not None and card.card.labels == ["Approve", "Reject"]
    assert cluster.emails() == []

    console.click("Approve")
    assert console.reply(containing="Sent").text == "Sent “Contract” to ana@acme.io."
    [email] = cluster.emails()
    assert (email.to, email.subject, email.body.strip()) == (("ana@acme.io",), "Contract", "Hi Ana, the contract is attached.")


def test_a_message_sent_while_no_worker_runs_is_answered_once_one_is_back(console, cluster):
    cluster.stop_worker()
    try:
        console.say("/task add pay the rent")
    finally:
        cluster.start_worker()
    assert "pay the rent" in console.reply(containing="Added task").text


def test_events_seeded_in_the_calendar_read_back_in_the_clusters_zone(cluster):
    cluster.add_event("Call with Bob", dt.datetime(2030, 1, 7, 15, 0), attendees=("bob@client.example",))

    [event] = [e for e in cluster.calendar_events() if e.summary == "Call with Bob"]
    assert (event.start.hour, event.end - event.start, event.attendees) == (15, dt.timedelta(minutes=30), ("bob@client.example",))
