"""Reading a short answer to a question Deputy asked: a duration, a clock time, one of the offered choices.

Rules, no model: "30 min", "an hour", "1.5h", "3pm", "15:30", "noon", "the second one", "the one at Acme"."""
from __future__ import annotations

import difflib
import re
from typing import Sequence

_UNITS = {"m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60}
_DURATION = re.compile(r"(\d+(?:[.,]\d+)?)\s*(minutes?|mins?|m|hours?|hrs?|hr|h)\b", re.I)
_WORDS = {
    "half an hour": 30, "half hour": 30, "an hour and a half": 90, "hour and a half": 90, "one and a half hours": 90,
    "quarter of an hour": 15, "quarter hour": 15, "an hour": 60, "one hour": 60, "a hour": 60, "two hours": 120,
    "three hours": 180, "forty five minutes": 45, "forty-five minutes": 45, "fifteen minutes": 15, "thirty minutes": 30,
    "ten minutes": 10, "twenty minutes": 20, "ninety minutes": 90,
}
_CLOCK = re.compile(r"\b(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?(?![\d%])", re.I)
_ORDINALS = {"first": 0, "1st": 0, "one": 0, "second": 1, "2nd": 1, "two": 1, "third": 2, "3rd": 2, "three": 2,
             "fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1}
_FILLER = {"the", "one", "a", "an", "at", "with", "in", "on", "please", "meeting", "call", "it", "that", "this", "for", "of", "my"}


def duration_minutes(text: str) -> int | None:
    """Minutes in a short answer; a bare number is minutes ("30"), up to a day."""
    lowered = " ".join(text.lower().replace("-", " ").split())
    for phrase, minutes in sorted(_WORDS.items(), key=lambda kv: -len(kv[0])):
        if phrase.replace("-", " ") in lowered:
            return minutes
    total = 0.0
    for number, unit in _DURATION.findall(lowered):
        total += float(number.replace(",", ".")) * _UNITS[unit.lower()]
    if total:
        return int(round(total)) if 0 < total <= 24 * 60 else None
    bare = re.fullmatch(r"\s*(\d{1,3})\s*", lowered)
    if bare and 5 <= int(bare.group(1)) <= 24 * 60:
        return int(bare.group(1))
    return None


def clock_time(text: str) -> str | None:
    """"HH:MM" (24 h) from "3pm", "15:30", "3.30 pm", "noon", "midnight"; None when there is no clock time."""
    lowered = text.lower()
    if re.search(r"\bnoon\b|\bmidday\b", lowered):
        return "12:00"
    if re.search(r"\bmidnight\b", lowered):
        return "00:00"
    for match in _CLOCK.finditer(lowered):
        hour, minute, half = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").replace(".", "")
        if not half and match.group(2) is None and not re.search(r"\b(?:at|@)\s*$", lowered[: match.start()]) \
                and not re.fullmatch(r"\s*\d{1,2}\s*", lowered):
            continue  # a bare number in a sentence is not a time ("the 2 of us")
        if half == "pm" and hour < 12:
            hour += 12
        elif half == "am" and hour == 12:
            hour = 0
        elif not half and 1 <= hour <= 7:
            hour += 12  # "at 3" during the working day means 15:00
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            return f"{hour:02d}:{minute:02d}"
    return None


def choice(text: str, options: Sequence[tuple[str, str]]) -> str | None:
    """The value of the option a short answer picks: by value, by ordinal, or by the words that set its label apart."""
    lowered = text.strip().lower().strip(" .!")
    for label, value in options:
        if lowered in (value.lower(), label.lower()):
            return value
    words = [w for w in re.findall(r"[\w@.'-]+", lowered) if w not in _FILLER]
    for word in words:
        if word in _ORDINALS and len(words) <= 2:
            index = _ORDINALS[word]
            return options[index][1] if -len(options) <= index < len(options) else None
        if word.isdigit() and 1 <= int(word) <= len(options) and len(words) == 1:
            return options[int(word) - 1][1]
    at = clock_time(lowered) if re.search(r"\d\s*(?:am|pm)|\d:\d\d|\bat \d|\bnoon\b", lowered) else None
    timed = [value for label, value in options if at and at in label]
    if len(timed) == 1:  # "the 5pm one"
        return timed[0]
    scored = []
    for label, value in options:
        label_words = set(re.findall(r"[\w@.'-]+", label.lower()))
        hits = sum(1 for w in words if w in label_words or difflib.get_close_matches(w, label_words, n=1, cutoff=0.85))
        scored.append((hits, value))
    scored.sort(key=lambda s: -s[0])
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
        return scored[0][1]
    return None
