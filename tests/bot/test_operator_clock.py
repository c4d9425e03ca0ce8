"""The operator's clock, learned without a settings file: the browser's zone as a hint, and what the
operator says in chat (which a hint never overrides), through the console, the gateway and a worker."""
from __future__ import annotations

from memory.profiles import Profiles


async def _say(deputy, text: str, timezone: str = "") -> str:
    body = {"thread_id": "clock", "text": text, "client_id": f"c-{text}-{timezone}"}
    if timezone:
        body["timezone"] = timezone
    resp = await deputy.client.post("/api/messages", json=body)
    assert resp.status == 202
    await deputy.work()
    return (await deputy.messages("clock"))[-1]["text"]


def _profile(deputy):
    return Profiles(deputy.redis, "default").get("operator")


async def test_the_browsers_zone_is_kept_until_the_operator_says_otherwise(deputy):
    await _say(deputy, "/task list", timezone="America/Chicago")
    assert (_profile(deputy).timezone, _profile(deputy).timezone_from) == ("America/Chicago", "hint")

    reply = await _say(deputy, "/timezone Madrid")
    assert reply.startswith("Got it: your time zone is *Europe/Madrid*")
    await _say(deputy, "/task list", timezone="America/Chicago")  # the laptop is still on Chicago time
    assert (_profile(deputy).timezone, _profile(deputy).timezone_from) == ("Europe/Madrid", "operator")

    shown = await _say(deputy, "/timezone")
    assert "Europe/Madrid* (you told me" in shown


async def test_time_zone_and_hours_are_changed_in_words(deputy):
    assert "*America/New_York*" in await _say(deputy, "i'm in new york time now")
    assert "*Europe/Paris*" in await _say(deputy, "set my timezone to CET")
    assert "*9:00–18:00*" in await _say(deputy, "I work 9 to 6")
    profile = _profile(deputy)
    assert (profile.timezone, profile.work_start, profile.work_end) == ("Europe/Paris", 9, 18)
    # asked, not set: "whats my timezone" tells it
    assert "Your time zone is *Europe/Paris*" in await _say(deputy, "whats my timezone")


async def test_hours_by_command_and_a_zone_nobody_knows_gets_its_usage(deputy):
    assert "*8:00–17:00*" in await _say(deputy, "/hours 8am-5pm")
    assert (_profile(deputy).work_start, _profile(deputy).work_end) == (8, 17)
    reply = await _say(deputy, "/timezone Atlantis")
    assert "I don't know the time zone 'Atlantis'" in reply and "Usage: /timezone [ZONE]" in reply
    assert _profile(deputy).timezone is None
