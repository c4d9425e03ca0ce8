"""Facts: versioned key → value records. A new value supersedes the old one; nothing is deleted.

A fact is about a subject (a person, a company, a deal, the business) and one of its attributes
(email, phone, stage); its key is "SUBJECT/ATTRIBUTE". Where it came from (the operator, an email, a
webhook, a file) and the trust that follows are kept with every version."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict
from redis import Redis

from kernel.keys import WorkspaceStore
from memory.store import Trust

# Close the current version and append the new one in one atomic step.
# Writing the value that is already current changes nothing (retries stay idempotent).
SUPERSEDE = """
local last = redis.call('LINDEX', KEYS[1], -1)
local version = 1
if last then
  local cur = cjson.decode(last)
  if cur['valid_to'] == nil or cur['valid_to'] == cjson.null then
    if cur['value'] == ARGV[2] then return last end
    cur['valid_to'] = tonumber(ARGV[3])
    cur['superseded_by_event'] = ARGV[4]
    redis.call('LSET', KEYS[1], -1, cjson.encode(cur))
  end
  version = cur['version'] + 1
end
local rec = {key=ARGV[1], value=ARGV[2], valid_from=tonumber(ARGV[3]), valid_to=cjson.null,
             source_event=ARGV[4], version=version, author=ARGV[5], trust=ARGV[6],
             subject=ARGV[7], attribute=ARGV[8], source=ARGV[9]}
local encoded = cjson.encode(rec)
redis.call('RPUSH', KEYS[1], encoded)
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[7] ~= '' then redis.call('SADD', KEYS[3], ARGV[1]) end
return encoded
"""

RETIRE = """
local last = redis.call('LINDEX', KEYS[1], -1)
if not last then return nil end
local cur = cjson.decode(last)
if cur['valid_to'] ~= nil and cur['valid_to'] ~= cjson.null then return nil end
cur['valid_to'] = tonumber(ARGV[1])
cur['superseded_by_event'] = ARGV[2]
redis.call('LSET', KEYS[1], -1, cjson.encode(cur))
return cjson.encode(cur)
"""

# Take back the version a change wrote (ARGV[1]): the version it replaced (ARGV[2]; 0: none) becomes current again
# as a new version that says it was restored, or the fact ends; the version taken back is marked undone. The current
# version stands for the one written when it is that one or a restored copy of it (a later change undone first).
# Taking back twice changes nothing; a fact that changed since is left alone. ARGV[6] = '1' only says what it would do.
RESTORE = """
local last = redis.call('LINDEX', KEYS[1], -1)
if not last then return 'changed' end
local cur = cjson.decode(last)
local written, previous = tonumber(ARGV[1]), tonumber(ARGV[2])
local open = cur['valid_to'] == nil or cur['valid_to'] == cjson.null
local stands = cur['version'] == written or cur['restored_from'] == written
if (not open and stands and cur['undone'] == true)
   or (open and previous > 0 and cur['restored_from'] == previous and cur['version'] > written) then return 'already' end
if not (open and stands) then return 'changed' end
local old = nil
if previous > 0 then
  local raw = redis.call('LINDEX', KEYS[1], previous - 1)
  if not raw then return 'changed' end
  old = cjson.decode(raw)
  if old['version'] ~= previous then return 'changed' end
end
if ARGV[6] == '1' then return 'restorable' end
cur['valid_to'] = tonumber(ARGV[3])
cur['superseded_by_event'] = ARGV[4]
cur['undone'] = true
redis.call('LSET', KEYS[1], -1, cjson.encode(cur))
if old == nil then return 'retired' end
old['version'] = cur['version'] + 1
old['valid_from'] = tonumber(ARGV[3])
old['valid_to'] = cjson.null
old['superseded_by_event'] = cjson.null
old['source_event'] = ARGV[4]
old['author'] = ARGV[5]
old['restored_from'] = previous
old['undone'] = false
redis.call('RPUSH', KEYS[1], cjson.encode(old))
return 'restored'
"""

Restored = Literal["restored", "retired", "already"]


class ChangedSince(ValueError):
    """What an undo would take back has changed since it was done: nothing was taken back."""


class Rewrite(BaseModel):
    """One attribute a change wrote: the version it made current and the one it replaced (0: there was none)."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    written: int
    previous: int = 0


class Fact(BaseModel):
    key: str
    value: str
    valid_from: float
    valid_to: float | None = None
    source_event: str = ""
    superseded_by_event: str | None = None
    version: int
    author: str = ""
    # "untrusted": the value came from someone else's text; it is not the operator's to reach
    trust: Trust = "operator"
    # what the fact is about and which of its attributes ("" for a fact kept by key alone)
    subject: str = ""
    attribute: str = ""
    # who said so: operator, email, webhook, file (a confirmed proposal keeps its source)
    source: str = "operator"
    # an undo took this version back; the version an undo put back (a copy of that one, kept with its source)
    undone: bool = False
    restored_from: int | None = None

    @property
    def current(self) -> bool:
        return self.valid_to is None


def fact_key(subject: str, attribute: str) -> str:
    return f"{_norm(subject)}/{_norm(attribute)}"


@dataclass(frozen=True)
class Subject:
    """What the current facts say about one subject (a person, a company, a deal), by attribute."""

    subject: str
    name: str
    facts: dict[str, "Fact"]

    def get(self, attribute: str) -> str:
        fact = self.facts.get(attribute)
        return fact.value if fact else ""


def _norm(key: str) -> str:
    key = " ".join(key.strip().lower().split())
    if not key:
        raise ValueError("a fact needs a key")
    return key


class FactStore(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str) -> None:
        super().__init__(redis, workspace)
        self._supersede = redis.register_script(SUPERSEDE)
        self._retire = redis.register_script(RETIRE)
        self._restore = redis.register_script(RESTORE)

    def set(self, key: str, value: str, source_event: str = "", author: str = "", trust: Trust = "operator") -> Fact:
        return self._write(_norm(key), value, source_event, author, trust, "", "", "operator")

    def state(self, subject: str, attribute: str, value: str, source: str = "operator", source_event: str = "",
              author: str = "", trust: Trust = "operator") -> Fact:
        """Record SUBJECT's ATTRIBUTE; a different value supersedes the current one, the same value changes nothing."""
        subject, attribute = _norm(subject), _norm(attribute)
        return self._write(fact_key(subject, attribute), value, source_event, author, trust, subject, attribute, source)

    def _write(self, key: str, value: str, source_event: str, author: str, trust: Trust, subject: str, attribute: str,
               source: str) -> Fact:
        raw = self._supersede(
            keys=[self.keys("fact", key), self.keys("facts"), self.keys("facts", "about", subject)],
            args=[key, value, repr(time.time()), source_event, author, trust, subject, attribute, source],
        )
        return Fact.model_validate_json(raw)

    def about(self, subject: str) -> list[Fact]:
        """SUBJECT's current facts, by attribute."""
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in self.redis.smembers(self.keys("facts", "about", _norm(subject))))
        return [f for f in (self.get(k) for k in keys) if f]

    def previous(self, key: str) -> Fact | None:
        """The version the current one replaced, if any (what changed, and when)."""
        versions = self.history(key)
        return versions[-2] if len(versions) > 1 and versions[-1].current else None

    def retire(self, key: str, source_event: str = "") -> Fact | None:
        """End the current version without a successor (the history stays)."""
        raw = self._retire(keys=[self.keys("fact", _norm(key))], args=[repr(time.time()), source_event])
        return Fact.model_validate_json(raw) if raw else None

    def restore(self, subject: str, rewrites: Sequence[Rewrite], source_event: str = "", author: str = "") -> dict[str, Restored]:
        """Take back a change to SUBJECT: each attribute's previous version becomes current again (one it had none
        for ends), recorded as an undo. Raises ChangedSince, taking nothing back, when any has changed since."""
        keys = {r.attribute: self.keys("fact", fact_key(subject, r.attribute)) for r in rewrites}

        def run(rewrite: Rewrite, check: bool) -> str:
            raw = self._restore(keys=[keys[rewrite.attribute]], args=[rewrite.written, rewrite.previous, repr(time.time()),
                                                                    source_event, author, "1" if check else "0"])
            return raw.decode() if isinstance(raw, bytes) else str(raw)

        changed = [r.attribute for r in rewrites if run(r, check=True) == "changed"]
        if changed:
            raise ChangedSince(f"{', '.join(changed)} changed again since; nothing was undone")
        return {r.attribute: run(r, check=False) for r in rewrites}  # type: ignore[misc]

    def get(self, key: str) -> Fact | None:
        raw = self.redis.lindex(self.keys("fact", _norm(key)), -1)
        fact = Fact.model_validate_json(raw) if raw else None
        return fact if fact and fact.current else None

    def history(self, key: str) -> list[Fact]:
        return [Fact.model_validate_json(r) for r in self.redis.lrange(self.keys("fact", _norm(key)), 0, -1)]

    def as_of(self, key: str, ts: float) -> Fact | None:
        for fact in reversed(self.history(key)):
            if fact.valid_from <= ts and (fact.valid_to is None or ts < fact.valid_to):
                return fact
        return None

    def all_current(self) -> list[Fact]:
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in self.redis.smembers(self.keys("facts")))
        return [f for f in (self.get(k) for k in keys) if f]

    def matching(self, test: Callable[[str], bool]) -> list[list[Fact]]:
        """The histories of facts whose key or any version's value passes `test` (for forgetting)."""
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in self.redis.smembers(self.keys("facts")))
        return [h for h in map(self.history, keys) if any(test(f.key) or test(f.value) for f in h)]

    def forget(self, key: str, actor: str) -> int:
        """Remove a fact with its whole history; the tombstone left says only that something was
        forgotten, when and by whom. Returns the versions removed."""
        versions = self.history(key)
        if not versions:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys("fact", _norm(key)))
        pipe.srem(self.keys("facts"), versions[-1].key)
        if versions[-1].subject:
            pipe.srem(self.keys("facts", "about", versions[-1].subject), versions[-1].key)
        pipe.rpush(self.keys("facts", "forgotten"), json.dumps({"forgotten_at": time.time(), "by": actor}))
        pipe.execute()
        return len(versions)

    def tombstones(self) -> list[dict[str, object]]:
        return [json.loads(raw) for raw in self.redis.lrange(self.keys("facts", "forgotten"), 0, -1)]
