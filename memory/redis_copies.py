"""Copies of a forgotten text in any Redis value of a workspace: found, counted by store, and wiped.

Typed stores (notes, facts, tasks) remove whole records first; what is left are copies quoted in other
records (a console transcript, an event's data, a run, a card, a reply in the outbox). A copy is
replaced by REDACTED where it stands, so the record keeps its shape; a stream entry that quotes it
(a reply in the outbox) is deleted."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from redis import Redis

from kernel.keys import Keys
from memory.text_match import REDACTED

# the first part of a key after its workspace → the store it belongs to, as the operator reads it
STORES = {"console": "console transcript", "events": "event log", "trace": "event log", "outbox": "outbox",
          "tasks": "tasks", "draft": "drafts", "run": "agent runs", "effect": "agent runs", "approval": "approvals",
          "approvals": "approvals", "conversation": "open questions", "card": "cards", "card_copies": "cards",
          "notes": "notes", "fact": "facts", "facts": "facts", "reminder": "reminders", "reminders": "reminders",
          "contacts": "contacts", "replay": "run recordings"}
# channels whose messages were delivered to someone else's servers: listed, never removable by Deputy
UNSENDABLE = ("slack", "telegram")


@dataclass
class Found:
    """Per store: how many values quote the text; per channel: how many of them were delivered there."""

    stores: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)

    def count(self, store: str, value: str) -> None:
        self.stores[store] = self.stores.get(store, 0) + 1
        channel = _channel(value)
        if channel in UNSENDABLE:
            self.delivered[channel] = self.delivered.get(channel, 0) + 1


class RedisCopies:
    """Every key of one workspace (and its replies in the shared outbox stream)."""

    def __init__(self, redis: Redis, workspace: str, skip: tuple[str, ...] = ()) -> None:
        self.redis = redis
        self.keys = Keys(workspace)
        # stores whose whole records another part removes: not counted twice
        self.skip = set(skip)

    def _keys(self) -> Iterator[str]:
        for pattern in (self.keys("*"), Keys.global_("outbox")):
            for raw in self.redis.scan_iter(match=pattern, count=1_000):
                key = raw.decode() if isinstance(raw, bytes) else raw
                if store_of(key) not in self.skip:
                    yield key

    def find(self, pattern: re.Pattern[str]) -> Found:
        found = Found()
        for key in self._keys():
            for value in self._matching(key, pattern, wipe=False):
                found.count(store_of(key), value)
        return found

    def wipe(self, pattern: re.Pattern[str]) -> Found:
        found = Found()
        for key in self._keys():
            for value in self._matching(key, pattern, wipe=True):
                found.count(store_of(key), value)
        return found

    def _matching(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        if pattern.search(key):
            if wipe:
                self.redis.delete(key)
            return [key]
        kind = _text(self.redis.type(key))
        reader = {"string": self._string, "hash": self._hash, "list": self._list, "set": self._set,
                  "zset": self._zset, "stream": self._stream}.get(kind)
        return reader(key, pattern, wipe) if reader else []

    def _string(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        value = _text(self.redis.get(key) or b"")
        if not pattern.search(value):
            return []
        if wipe:
            self.redis.set(key, pattern.sub(REDACTED, value), keepttl=True)
        return [value]

    def _hash(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        out = []
        for raw_field, raw in self.redis.hscan_iter(key, count=1_000):
            name, value = _text(raw_field), _text(raw)
            if pattern.search(name):
                out.append(value)
                if wipe:
                    self.redis.hdel(key, raw_field)
            elif pattern.search(value):
                out.append(value)
                if wipe:
                    self.redis.hset(key, raw_field, pattern.sub(REDACTED, value))
        return out

    def _list(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        out = []
        for index, raw in enumerate(self.redis.lrange(key, 0, -1)):
            value = _text(raw)
            if pattern.search(value):
                out.append(value)
                if wipe:
                    self.redis.lset(key, index, pattern.sub(REDACTED, value))
        return out

    def _set(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        out = [_text(m) for m in self.redis.smembers(key) if pattern.search(_text(m))]
        if wipe and out:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.srem(key, *out)
                pipe.sadd(key, *{pattern.sub(REDACTED, m) for m in out})
                pipe.execute()
        return out

    def _zset(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        out = [(_text(m), score) for m, score in self.redis.zrange(key, 0, -1, withscores=True) if pattern.search(_text(m))]
        if wipe and out:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(key, *(m for m, _ in out))
                pipe.zadd(key, {pattern.sub(REDACTED, m): score for m, score in out})
                pipe.execute()
        return [m for m, _ in out]

    def _stream(self, key: str, pattern: re.Pattern[str], wipe: bool) -> list[str]:
        out, ids = [], []
        for entry_id, fields in self.redis.xrange(key):
            value = json.dumps({_text(k): _text(v) for k, v in fields.items()}, ensure_ascii=False)
            if pattern.search(value):
                out.append(value)
                ids.append(entry_id)
        if wipe and ids:
            self.redis.xdel(key, *ids)
        return out


def store_of(key: str) -> str:
    parts = key.split(":")
    name = parts[2] if len(parts) > 2 else key
    return STORES.get(name, name)


def _channel(value: str) -> str:
    """The channel a stored message or reply names ("" when it names none)."""
    try:
        data: Any = json.loads(value)
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("reply"), str):  # an outbox entry
        return _channel(data["reply"])
    return str(data.get("channel") or "") if isinstance(data, dict) else ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
