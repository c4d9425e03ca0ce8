"""What Deputy knows about each operator's clock: their time zone and working hours.

Learned without a settings file: a channel's hint (the console's browser zone, Slack's users.info),
an answer to a question asked once, or the operator saying so in chat. What the operator said wins
over a hint; a hint never overwrites it."""
from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from kernel.keys import WorkspaceStore

# where a stored zone came from: a channel's hint, or the operator's own words
Origin = Literal["hint", "operator"]


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    timezone: str | None = None
    timezone_from: Origin | None = None
    # working hours, local whole hours [work_start, work_end); None until known
    work_start: int | None = None
    work_end: int | None = None
    # questions asked once: never again, answered or not
    asked: tuple[str, ...] = ()


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return "/" in name or name == "UTC"


class Profiles(WorkspaceStore):
    """One hash per operator: dp:<ws>:profile:<user_id>."""

    def _key(self, user_id: str) -> str:
        return self.keys("profile", user_id)

    def get(self, user_id: str) -> Profile:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(self._key(user_id)).items()}
        return Profile(
            user_id=user_id,
            timezone=raw.get("timezone") or None,
            timezone_from=raw.get("timezone_from") or None,  # type: ignore[arg-type]
            work_start=int(raw["work_start"]) if raw.get("work_start") else None,
            work_end=int(raw["work_end"]) if raw.get("work_end") else None,
            asked=tuple(sorted(q for q in raw.get("asked", "").split(",") if q)),
        )

    def set_timezone(self, user_id: str, zone: str, origin: Origin = "operator") -> bool:
        """Store `zone` for the operator; a hint only fills a gap. True when it was stored."""
        if not valid_zone(zone):
            raise ValueError(f"unknown time zone {zone!r}; use an IANA name such as Europe/Madrid")
        if origin == "hint" and not self.redis.hsetnx(self._key(user_id), "timezone", zone):
            return False
        self.redis.hset(self._key(user_id), mapping={"timezone": zone, "timezone_from": origin})
        return True

    def set_hours(self, user_id: str, start: int, end: int) -> None:
        if not 0 <= start < end <= 24:
            raise ValueError("working hours go from an earlier hour to a later one, between 0 and 24")
        self.redis.hset(self._key(user_id), mapping={"work_start": start, "work_end": end})

    def ask_once(self, user_id: str, question: str) -> bool:
        """True the first time `question` is asked of this operator, False ever after."""
        key = self.keys("profile", user_id, "asked", question)
        if not self.redis.set(key, 1, nx=True):
            return False
        asked = set(self.get(user_id).asked) | {question}
        self.redis.hset(self._key(user_id), "asked", ",".join(sorted(asked)))
        return True
