"""The event log: an append-only Redis Stream per workspace, indexed by trace id."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterable

from pydantic import BaseModel
from redis import Redis

from kernel.keys import WorkspaceStore
from memory.redaction import Redactor

TRACE_TTL_S = 90 * 86_400


class Event(BaseModel):
    id: str
    trace_id: str
    kind: str
    ts: float
    actor: str = ""
    data: dict[str, Any] = {}

    @property
    def summary(self) -> str:
        interesting = {k: v for k, v in self.data.items() if v not in (None, "", [], {})}
        return json.dumps(interesting, ensure_ascii=False, default=str)[:300]


class EventLog(WorkspaceStore):
    """Every inbound message, intent, job step, decision and reply, in order, per workspace."""

    def __init__(self, redis: Redis, workspace: str, maxlen: int = 1_000_000, secrets: Iterable[str] = ()) -> None:
        """`secrets`: the configured secret values, masked wherever they occur in an event's data."""
        super().__init__(redis, workspace)
        self.maxlen = maxlen
        self.redactor = Redactor(secrets)

    @property
    def stream(self) -> str:
        return self.keys("events")

    @property
    def data_key(self) -> str:
        """The hash of every event's data, by the reference its stream entry holds."""
        return self.keys("events", "data")

    def record(self, trace_id: str, kind: str, actor: str = "", pipe: Any = None, expire: bool = True, **data: Any) -> str | None:
        """Append one event; inside a caller's pipeline when given (then the id is not known yet).

        `expire=False` skips refreshing the trace stream's expiry, for a caller that already queued
        an event of the same trace in the same pipeline."""
        # the stream keeps who, when and what kind; the data (which may quote the operator's words)
        # lies by reference in a hash, so forgetting can wipe a text and leave the record
        ref = uuid.uuid4().hex[:20]
        fields = {"trace_id": trace_id, "kind": kind, "ts": repr(time.time()), "actor": actor, "data_ref": ref}
        encoded = self.redactor.json(data)
        # the workspace stream is the log; a short stream per trace makes a timeline one read.
        # Plain commands, no script: a script inside a caller's pipeline costs an extra round trip.
        own = pipe is None
        p = self.redis.pipeline(transaction=True) if own else pipe
        p.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        p.xadd(self.keys("trace", trace_id), fields, maxlen=1_000, approximate=True)
        p.hset(self.data_key, ref, encoded)
        if expire:
            p.expire(self.keys("trace", trace_id), TRACE_TTL_S)
        if not own:
            return None
        event_id = p.execute()[0]
        return event_id.decode() if isinstance(event_id, bytes) else event_id

    def timeline(self, trace_id: str) -> list[Event]:
        """The events of one request, oldest first."""
        return self._decoded(self.redis.xrange(self.keys("trace", trace_id)))

    def recent(self, count: int = 100, kinds: Iterable[str] | None = None, since: float | None = None) -> list[Event]:
        wanted = set(kinds) if kinds else None
        start = f"{int(since * 1000)}-0" if since else "-"
        out: list[Event] = []
        rows = self.redis.xrevrange(self.stream, max="+", min=start, count=count * 4 if wanted else count)
        for event in self._decoded(rows):
            if wanted is None or event.kind in wanted:
                out.append(event)
            if len(out) >= count:
                break
        return list(reversed(out))

    def since(self, ts: float, kinds: Iterable[str] | None = None) -> list[Event]:
        wanted = set(kinds) if kinds else None
        return [e for e in self._scan(start=f"{int(ts * 1000)}-0") if wanted is None or e.kind in wanted]

    def _scan(self, start: str = "-", batch: int = 2_000) -> Iterable[Event]:
        cursor = start
        while True:
            rows = self.redis.xrange(self.stream, min=cursor, max="+", count=batch)
            yield from self._decoded(rows)
            if len(rows) < batch:
                return
            last = rows[-1][0]
            last = last.decode() if isinstance(last, bytes) else last
            cursor = "(" + last

    def _decoded(self, rows: list[tuple[Any, dict[Any, Any]]]) -> list[Event]:
        """Events from stream entries, their data read by reference (inline in entries from before)."""
        entries = [(_text(raw_id), {_text(k): _text(v) for k, v in fields.items()}) for raw_id, fields in rows]
        refs = [f["data_ref"] for _, f in entries if f.get("data_ref")]
        data = dict(zip(refs, self.redis.hmget(self.data_key, refs))) if refs else {}
        out = []
        for event_id, f in entries:
            raw = data.get(f["data_ref"]) if f.get("data_ref") else f.get("data")
            out.append(Event(id=event_id, trace_id=f.get("trace_id", ""), kind=f.get("kind", ""), ts=float(f.get("ts", "0")),
                             actor=f.get("actor", ""), data=json.loads(_text(raw)) if raw else {}))
        return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
