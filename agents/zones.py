"""Time zones and working hours as people say them: "Europe/Madrid", "madrid", "I'm in New York time now",
"CET", "I work 9 to 6". A name is accepted only where it means one zone; otherwise the caller asks."""
from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

from memory.profiles import valid_zone

# abbreviations and everyday names that mean one zone's clock for most people who type them; CST (US or
# China) and IST (India, Ireland or Israel) are left out on purpose, and so are short ones that are also
# words ("et", "la", "west"): those are asked about
ABBREVIATIONS = {
    "utc": "UTC", "gmt": "UTC", "zulu": "UTC",
    "cet": "Europe/Paris", "cest": "Europe/Paris", "central european": "Europe/Paris",
    "eet": "Europe/Athens", "eest": "Europe/Athens", "wet": "Europe/Lisbon",
    "bst": "Europe/London", "uk": "Europe/London", "msk": "Europe/Moscow",
    "est": "America/New_York", "edt": "America/New_York", "eastern": "America/New_York", "cdt": "America/Chicago",
    "mst": "America/Denver", "mdt": "America/Denver", "mountain": "America/Denver",
    "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles", "pacific": "America/Los_Angeles",
    "akst": "America/Anchorage", "hst": "Pacific/Honolulu", "jst": "Asia/Tokyo", "kst": "Asia/Seoul",
    "aest": "Australia/Sydney", "aedt": "Australia/Sydney", "nzst": "Pacific/Auckland", "nzdt": "Pacific/Auckland",
    "sf": "America/Los_Angeles", "san francisco": "America/Los_Angeles", "nyc": "America/New_York", "los angeles": "America/Los_Angeles",
    "washington": "America/New_York", "boston": "America/New_York", "miami": "America/New_York", "seattle": "America/Los_Angeles",
    "austin": "America/Chicago", "dallas": "America/Chicago", "houston": "America/Chicago", "barcelona": "Europe/Madrid",
    "munich": "Europe/Berlin", "milan": "Europe/Rome", "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata", "beijing": "Asia/Shanghai", "tel aviv": "Asia/Jerusalem",
}
# the regions whose cities a bare city name is looked up among (not US/…, Etc/…, and no compass points)
REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
NOT_CITIES = {"north", "south", "east", "west", "central", "center", "general", "continental"}
# words around a zone in a sentence, never part of its name
FILLER = re.compile(
    r"\b(?:my|the|time ?zone|tz|zone|is|it's|its|to|in|at|i'm|i am|im|now|time|set|change|update|switch|use|please|"
    r"based|living|live|moved|we're|we are|currently|local|standard|daylight)\b",
    re.I,
)


@lru_cache(maxsize=1)
def _cities() -> dict[str, str]:
    """'madrid' → 'Europe/Madrid', for every city name that names one zone in REGIONS."""
    by_city: dict[str, set[str]] = {}
    for zone in available_timezones():
        region, _, rest = zone.partition("/")
        if region in REGIONS and rest:
            city = rest.rsplit("/", 1)[-1].replace("_", " ").lower()
            if city not in NOT_CITIES:
                by_city.setdefault(city, set()).add(zone)
    # a city under two names (America/Buenos_Aires, America/Argentina/Buenos_Aires): the shorter is its usual name
    return {city: min(zones, key=lambda z: (z.count("/"), z)) for city, zones in by_city.items()
            if len({z.count("/") for z in zones}) == len(zones) or len(zones) == 1}


def zone_named(name: str) -> str | None:
    """The IANA zone `name` is (an IANA name in any case, a city, or an everyday abbreviation), else None."""
    cleaned = " ".join(name.strip().strip(".!?,").split())
    if not cleaned:
        return None
    iana = cleaned.replace(" ", "_")
    if valid_zone(iana):
        return iana
    matches = [z for z in available_timezones() if z.lower() == iana.lower() and valid_zone(z)]
    if matches:
        return matches[0]
    lowered = cleaned.lower()
    return ABBREVIATIONS.get(lowered) or _cities().get(lowered)


def zone_in(text: str) -> str | None:
    """The one zone a sentence names ("i'm in new york time now", "set my timezone to CET"), else None."""
    for part in re.findall(r"[\w+-]+/[\w+/-]+", text):  # an IANA name written out wins
        if (zone := zone_named(part)) is not None:
            return zone
    words = FILLER.sub(" ", re.sub(r"[^\w\s'/+-]", " ", text)).split()
    found = {zone for size in (3, 2, 1) for i in range(len(words) - size + 1)
             if (zone := zone_named(" ".join(words[i : i + size]))) is not None}
    return found.pop() if len(found) == 1 else None


_HOURS = re.compile(
    r"\b(\d{1,2})(?::00)?\s*(am|pm)?\s*(?:-|–|—|to|till|until|til|and\s+(?:finish|end|stop|leave)\s+(?:at\s+)?)\s*"
    r"(\d{1,2})(?::00)?\s*(am|pm)?\b", re.I)


def _hour(value: str, half: str | None) -> int:
    hour = int(value)
    if half and half.lower() == "pm" and hour < 12:
        return hour + 12
    if half and half.lower() == "am" and hour == 12:
        return 0
    return hour


def hours_in(text: str) -> tuple[int, int] | None:
    """Working hours as [start, end) whole hours from "9 to 6", "9-18", "8am-5pm"; None when there are none."""
    match = _HOURS.search(text)
    if match is None:
        return None
    start, end = _hour(match.group(1), match.group(2)), _hour(match.group(3), match.group(4))
    if not match.group(4) and end <= start < 12 and end + 12 <= 24:
        end += 12  # "9 to 6": six in the evening
    return (start, end) if 0 <= start < end <= 24 else None
