from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.recurrence import Repeat, find_repeat
from agents.reminders import ReminderError, parse

LISBON = "Europe/Lisbon"
MADRID = "Europe/Madrid"
# Wednesday 5 March 2025, noon in Lisbon
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=ZoneInfo(LISBON))


def local(*args: int, tz: str = LISBON) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize("text, what, label, first", [
    ("remind me every Monday at 9 to send the invoice", "send the invoice", "every Monday at 09:00", local(2025, 3, 10, 9)),
    ("every day at 8am stretch", "stretch", "every day at 08:00", local(2025, 3, 6, 8)),
    ("every weekday at 9 check the bank", "check the bank", "every weekday at 09:00", local(2025, 3, 6, 9)),
    ("pay the rent on the 1st of each month", "pay the rent", "on the 1st of each month at 09:00", local(2025, 4, 1, 9)),
    ("every month on the 15th send payroll at 10:30", "send payroll", "on the 15th of each month at 10:30", local(2025, 3, 15, 10, 30)),
    ("water the plants every tuesday and thursday at 7pm", "water the plants", "every Tuesday and Thursday at 19:00",
     local(2025, 3, 6, 19)),
    ("remind me to review the week every friday at 4pm", "review the week", "every Friday at 16:00", local(2025, 3, 7, 16)),
    ("close the books on the last day of each month", "close the books", "on the last day of each month at 09:00",
     local(2025, 3, 31, 9)),
])
def test_recurring_requests_become_a_rule_and_a_first_occurrence(text, what, label, first):
    draft = parse(text, LISBON, NOW)
    assert draft.what == what
    assert draft.repeat is not None and draft.repeat.label() == label
    assert draft.due == first


def test_a_one_off_request_has_no_rule():
    assert parse("remind me to call Ana Friday 10am", LISBON, NOW).repeat is None
    assert find_repeat("call Ana Friday 10am about the monthly report", LISBON, NOW) is None


def test_a_rule_without_what_says_how_to_write_one():
    with pytest.raises(ReminderError, match="What should I remind you of every Monday"):
        parse("remind me every Monday at 9", LISBON, NOW)


def occurrences(repeat: Repeat, start: datetime, n: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(n):
        moment = repeat.next_after(moment)
        found.append(moment)
    return found


def test_every_day_at_8_stays_at_8_on_the_wall_clock_across_daylight_saving():
    # Madrid springs forward on 30 March 2025 and falls back on 26 October 2025
    daily = Repeat(freq="daily", hour=8, tz=MADRID)
    spring = occurrences(daily, local(2025, 3, 28, 12, tz=MADRID), 3)
    assert [(d.day, d.hour, d.minute) for d in spring] == [(29, 8, 0), (30, 8, 0), (31, 8, 0)]
    assert [d.utcoffset().total_seconds() / 3600 for d in spring] == [1, 2, 2]
    # 23 hours between the two mornings that straddle the change, 24 on ordinary days
    assert (spring[1].timestamp() - spring[0].timestamp()) / 3600 == 23
    autumn = occurrences(daily, local(2025, 10, 25, 12, tz=MADRID), 2)
    assert [(d.day, d.hour) for d in autumn] == [(26, 8), (27, 8)]
    assert (autumn[0].timestamp() - local(2025, 10, 25, 8, tz=MADRID).timestamp()) / 3600 == 25


def test_a_time_skipped_or_repeated_by_daylight_saving_fires_once():
    early = Repeat(freq="daily", hour=2, minute=30, tz=MADRID)
    # 02:30 does not exist on 30 March: it fires once, an hour on, then at 02:30 again
    skipped = occurrences(early, local(2025, 3, 29, 12, tz=MADRID), 2)
    assert [(d.astimezone(ZoneInfo(MADRID)).day, d.astimezone(ZoneInfo(MADRID)).hour) for d in skipped] == [(30, 3), (31, 2)]
    # 02:30 happens twice on 26 October: once is enough
    twice = occurrences(early, local(2025, 10, 25, 12, tz=MADRID), 2)
    assert [d.day for d in twice] == [26, 27]


def test_monthly_rules_at_month_ends_and_on_the_first():
    first = Repeat(freq="monthly", monthday=1, hour=9, tz=LISBON)
    assert [(d.month, d.day) for d in occurrences(first, NOW, 3)] == [(4, 1), (5, 1), (6, 1)]
    # the 31st in a month without one is that month's last day; the 30th in February is the 28th (29th in a leap year)
    last = Repeat(freq="monthly", monthday=31, hour=9, tz=LISBON)
    assert [(d.month, d.day) for d in occurrences(last, local(2024, 1, 5, 12), 4)] == [(1, 31), (2, 29), (3, 31), (4, 30)]
    thirtieth = Repeat(freq="monthly", monthday=30, hour=9, tz=LISBON)
    assert [(d.month, d.day) for d in occurrences(thirtieth, local(2025, 1, 31, 12), 2)] == [(2, 28), (3, 30)]


def test_weekdays_skip_the_weekend():
    weekdays = Repeat(freq="weekly", weekdays=(0, 1, 2, 3, 4), hour=9, tz=LISBON)
    # Friday 7 March after nine: next is Monday 10
    assert [d.day for d in occurrences(weekdays, local(2025, 3, 7, 10), 3)] == [10, 11, 12]


def test_an_occurrence_is_recognised_as_one():
    monday = Repeat(freq="weekly", weekdays=(0,), hour=9, tz=LISBON)
    assert monday.is_occurrence(local(2025, 3, 10, 9))
    assert not monday.is_occurrence(local(2025, 3, 10, 10))
    assert not monday.is_occurrence(local(2025, 3, 11, 9))
