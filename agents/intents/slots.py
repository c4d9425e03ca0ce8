"""Slot extraction: dates and times in the operator's time zone, people, amounts, email addresses.

Rules and dateparser, no model: it runs offline and the same way every time."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agents.intents.registry import IntentSpec
from kernel.text import EMAIL, STOPWORDS, find_emails

_CURRENCY_WORDS = {
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
    "chf": "CHF", "francs": "CHF", "¥": "JPY", "jpy": "JPY", "yen": "JPY",
}
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(k)?"
_SYMBOL_FIRST = re.compile(rf"([$€£¥]|\b(?:usd|eur|gbp|chf|jpy)\b)\s?{_NUMBER}", re.IGNORECASE)
_WORD_AFTER = re.compile(
    rf"{_NUMBER}\s?(usd|eur|gbp|chf|jpy|dollars?|euros?|pounds?|bucks|quid|francs|yen)\b", re.IGNORECASE
)
_BARE = re.compile(rf"(?<![\w.:/-]){_NUMBER}(?![\w.:/%-])", re.IGNORECASE)

# words that look like names when capitalised, or follow "call"/"with" without being people
_NOT_PEOPLE = STOPWORDS | {
    "i", "i'm", "i'll", "me", "my", "you", "your", "we", "our", "us", "he", "she", "him", "her", "they", "them",
    "it", "this", "that", "the", "a", "an", "all", "everyone", "team", "back", "about", "some", "someone",
    "please", "deputy", "ok", "okay", "hi", "hello", "hey", "thanks", "can", "could", "would", "will", "what",
    "when", "where", "who", "why", "how", "remind", "add", "draft", "write", "schedule", "book", "set",
    "today", "tonight", "tomorrow", "yesterday", "noon", "midnight", "morning", "afternoon", "evening", "next",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "weekend", "week", "month",
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "am", "pm", "at", "on", "in", "for", "to", "and", "or", "of", "by", "from", "with",
    "mom", "mum", "dad", "bank", "client", "clients", "customer", "supplier", "accountant", "landlord",
    "meet", "call", "email", "send", "put", "tell", "ask", "follow", "chase", "ping", "text", "message", "show",
    "list", "note", "remember", "make", "give", "check", "find", "get", "let", "don't", "do", "is", "are",
}
_WORD = re.compile(r"(?<![\w@.])[A-Za-zà-ÿ][\w'-]*")
# lowercase names are only taken right after a verb that is usually followed by a person
_AFTER_VERB = re.compile(r"\b(?:call|phone|ring|email|e-mail|meet|with|tell|ask|ping|text|message)\s+(?:with\s+)?([a-zà-ÿ][\w'-]+)")
_TIME_WORDS = re.compile(r"\d\s*(?:am|pm)\b|\d:\d\d|\bnoon\b|\bmidnight\b|\bmorning\b|\bafternoon\b|\bevening\b|\btonight\b|\bin \w+ (?:minutes?|hours?)\b|\bat \d", re.IGNORECASE)
# "a 1 hour", "30 min": a meeting's length, which dateparser would read as a moment from now
_LENGTH_ONLY = re.compile(r"(?:for\s+)?(?:a|an|one|half an?)?\s*[\d.]*\s*(?:minutes?|mins?|hours?|hrs?|h)", re.IGNORECASE)
# dateparser reads these as dates on their own; alone they are almost always something else
_WEAK_DATE_PHRASES = {"now", "second", "may", "march", "sun", "sat", "mon", "a", "to", "at", "on", "in", "the"}


@dataclass(frozen=True)
class When:
    iso: str
    phrase: str
    has_time: bool


def _number(whole: str, cents: str | None, thousands: str | None) -> float:
    value = float(whole.replace(",", "")) + (float(f"0.{cents}") if cents else 0.0)
    return value * 1000 if thousands else value


def find_amount(text: str, bare_numbers: bool = False) -> dict[str, Any] | None:
    """The first money amount: {"value": 20.0, "currency": "USD"}; currency None for a bare number."""
    without_emails = EMAIL.sub(" ", text)
    found: list[tuple[int, dict[str, Any]]] = []
    for m in _SYMBOL_FIRST.finditer(without_emails):
        found.append((m.start(), {"value": _number(m.group(2), m.group(3), m.group(4)), "currency": _CURRENCY_WORDS[m.group(1).lower()]}))
    for m in _WORD_AFTER.finditer(without_emails):
        found.append((m.start(), {"value": _number(m.group(1), m.group(2), m.group(3)), "currency": _CURRENCY_WORDS[m.group(4).lower()]}))
    if found:
        return min(found, key=lambda f: f[0])[1]
    if bare_numbers:
        m = _BARE.search(without_emails)
        if m:
            return {"value": _number(m.group(1), m.group(2), m.group(3)), "currency": None}
    return None


def find_people(text: str) -> list[str]:
    people: list[str] = []
    without_emails = EMAIL.sub(" ", text)
    run: list[str] = []
    last_end = -2
    for m in _WORD.finditer(without_emails):
        word = m.group(0)
        is_name = word[0].isupper() and word.lower() not in _NOT_PEOPLE
        # "Bob Smith" is one person: consecutive capitalised words separated by one space
        if run and (not is_name or m.start() != last_end + 1):
            people.append(" ".join(run))
            run = []
        if is_name:
            run.append(word)
        last_end = m.end()
    if run:
        people.append(" ".join(run))
    for m in _AFTER_VERB.finditer(without_emails):
        word = m.group(1)
        if word.lower() not in _NOT_PEOPLE and not word.isdigit():
            people.append(word[0].upper() + word[1:])
    seen: dict[str, str] = {}
    for person in people:
        # "Ana's last email" is about Ana
        person = re.sub(r"['’]s$", "", person)
        seen.setdefault(person.lower(), person)
    return list(seen.values())


# a day named in a request ("friday", "tomorrow", "the 14th"), as opposed to a length ("an hour") or a bare clock time
DAY_WORDS = re.compile(r"\b(?:today|tonight|tomorrow|tmrw|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|monday|tuesday|wednesday|"
                       r"thursday|friday|saturday|sunday|next week|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|"
                       r"\d{1,2}(?:st|nd|rd|th)|\d{4}-\d\d-\d\d|\d{1,2}/\d{1,2})\b", re.I)


# "friday at 10" is read by dateparser as the 10th; "friday at 10:00" is what people mean
_BARE_HOUR = re.compile(r"\bat (\d{1,2})\b(?![:.]\d|\s*(?:am|pm|%|percent|o'clock))", re.IGNORECASE)


def _clock(text: str) -> str:
    return _BARE_HOUR.sub(lambda m: f"at {m.group(1)}:00" if int(m.group(1)) <= 23 else m.group(0), text)


# "the 12th" alone: dateparser reads the number as a month ("12th" → December); people mean a day of this month
_ORDINAL_DAY = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|each|every|the\s+month))", re.IGNORECASE)


def _day_of_month(text: str, base: datetime) -> str:
    """"the 12th" as a full date: this month's when it is still to come, else next month's."""
    def full(match: re.Match[str]) -> str:
        day = int(match.group(1))
        if not 1 <= day <= 31:
            return match.group(0)
        year, month = base.year, base.month
        if day < base.day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        try:
            return datetime(year, month, day).strftime("%B %d %Y")
        except ValueError:  # "the 31st" in a shorter month
            return match.group(0)
    return _ORDINAL_DAY.sub(full, text)


def _normalised(text: str, base: datetime) -> str:
    """The text as dateparser reads it right: bare hours with minutes, ordinal days as full dates."""
    return _day_of_month(_clock(text), base)


def _base(timezone: str, now: datetime | None) -> datetime:
    zone = ZoneInfo(timezone)
    return (now.astimezone(zone) if now else datetime.now(zone)).replace(tzinfo=None)


def find_when(text: str, timezone: str, now: datetime | None = None) -> When | None:
    """The first date or time in the text, resolved in the operator's time zone, preferring the future."""
    return _find_when(text, timezone, now or datetime.now(ZoneInfo(timezone)))


# a clarifying question fills the slots of two candidate intents from the same text at the same moment: dateparser
# (~3 ms a call here) parses it once. Keyed by the moment too, so nothing is reused once time has moved on
@functools.lru_cache(maxsize=16)
def _find_when(text: str, timezone: str, now: datetime) -> When | None:
    from dateparser.search import search_dates

    base = _base(timezone, now)
    settings = {"TIMEZONE": timezone, "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "future", "RELATIVE_BASE": base}
    matches = search_dates(_normalised(EMAIL.sub(" ", text), base), languages=["en"], settings=settings) or []
    for phrase, moment in matches:
        core = phrase.strip().lower()
        if core in _WEAK_DATE_PHRASES or core.isdigit() or len(core) < 3 or _LENGTH_ONLY.fullmatch(core):
            continue
        has_time = bool(_TIME_WORDS.search(phrase))
        iso = moment.isoformat(timespec="minutes") if has_time else moment.date().isoformat()
        return When(iso=iso, phrase=phrase.strip(), has_time=has_time)
    return None


_LEADING_POLITENESS = re.compile(r"^(?:(?:hey|hi|ok|okay|so|deputy|please|can you|could you|would you|will you|pls)[\s,]+)+", re.IGNORECASE)


def strip_phrases(text: str, phrases: tuple[str, ...]) -> str:
    """The request without its trigger words: "remind me to call Ana" → "call Ana"."""
    out = _LEADING_POLITENESS.sub("", text.strip()).strip()
    ordered = sorted((p.lower() for p in phrases), key=len, reverse=True)
    changed = True
    while changed and out:
        changed = False
        for phrase in ordered:
            lowered = out.lower()
            if lowered.startswith(phrase) and (len(out) == len(phrase) or not out[len(phrase)].isalnum()):
                out, changed = out[len(phrase):].lstrip(" :,-"), True
            elif lowered.endswith(phrase) and (len(out) == len(phrase) or not out[-len(phrase) - 1].isalnum()):
                out, changed = out[: -len(phrase)].rstrip(" :,-"), True
    return out.strip(" ?!.,").strip() or text.strip()


def extract_slots(spec: IntentSpec, text: str, timezone: str, now: datetime | None = None) -> dict[str, Any]:
    """The slots `spec` asks for, found in `text`; absent ones are left out rather than guessed."""
    slots: dict[str, Any] = dict(spec.defaults)
    rest = text
    if "when" in spec.slots:
        when = find_when(text, timezone, now)
        if when:
            rest = _normalised(rest, _base(timezone, now))
            slots["when"], slots["when_text"] = when.iso, when.phrase
            rest = re.sub(r"\s*" + re.escape(when.phrase) + r"\s*", " ", rest, count=1).strip()
    if "emails" in spec.slots and (emails := find_emails(text)):
        slots["emails"] = emails
    if "people" in spec.slots and (people := find_people(text)):
        slots["people"] = people
    if "amount" in spec.slots and (amount := find_amount(text, bare_numbers=True)):
        slots["amount"] = amount
    if spec.text_slot:
        slots[spec.text_slot] = strip_phrases(rest, spec.strip)
    return slots
