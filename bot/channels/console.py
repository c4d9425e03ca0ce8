"""The web console channel: threads and messages kept in Redis, live updates over SSE."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline

from bot.status import Working
from kernel.messages import Inbound, Reply
from kernel.keys import WorkspaceStore
from kernel.live_text import console_live_channel

CHANNEL = "console"
DEFAULT_TITLE = "New conversation"


class ConsoleThreads(WorkspaceStore):
    """Sync store of console threads: the page reads it, the dispatcher writes Deputy's side."""

    @property
    def live_channel(self) -> str:
        return console_live_channel(self.keys.workspace)

    def new_thread(self, title: str = "") -> dict[str, Any]:
        """A new thread id. An untitled thread is stored with its first message, named after it."""
        thread = {"id": uuid.uuid4().hex[:12], "title": title.strip()[:80] or DEFAULT_TITLE, "created_at": time.time()}
        if title.strip():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.keys("console", "threads"), thread["id"], json.dumps(thread))
            pipe.zadd(self.keys("console", "recent"), {thread["id"]: thread["created_at"]})
            pipe.execute()
        return thread

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys("console", "threads"), thread_id)
        return json.loads(raw) if raw else None

    def threads(self, limit: int = 50) -> list[dict[str, Any]]:
        ids = self.redis.zrevrange(self.keys("console", "recent"), 0, limit - 1)
        rows = self.redis.hmget(self.keys("console", "threads"), ids) if ids else []
        return [json.loads(r) for r in rows if r]

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        ids = self.redis.lrange(self.keys("console", "thread", thread_id), 0, -1)
        rows = self.redis.hmget(self.keys("console", "messages"), ids) if ids else []
        return [json.loads(r) for r in rows if r]

    def add_user_message(self, thread_id: str, text: str, user: str, trace_id: str, pipe: Pipeline | None = None) -> dict[str, Any]:
        """Store the operator's message (inside the gateway's transaction when given one)."""
        message = {"id": f"u-{trace_id}", "thread_id": thread_id, "role": "user", "author": user, "text": text,
                   "trace_id": trace_id, "ts": time.time(), "card": None}
        self._store(message, new=True, title_hint=text, pipe=pipe)
        return message

    def deliver(self, reply: Reply) -> dict[str, Any]:
        """Append Deputy's reply, or replace the card it updates; publish it to open pages."""
        card = reply.card.model_dump(mode="json") if reply.card else None
        # a card keeps one message id for life, so an update replaces it where it stands
        card_id = reply.updates_card or (reply.card.card_id if reply.card else None)
        message_id = f"card-{card_id}" if card_id else f"d-{reply.reply_id}"
        message = {"id": message_id, "thread_id": reply.thread_id, "role": "deputy", "author": "Deputy", "text": reply.text,
                   "trace_id": reply.trace_id, "ts": time.time(), "card": card, "ok": reply.ok, "image_png": reply.image_png}
        exists = self.redis.hexists(self.keys("console", "messages"), message_id)
        if exists and not reply.updates_card:
            # a card shown again in answer to a new message ("rename task 3 …") moves under that message,
            # in its new state, rather than changing silently far up the thread
            self.redis.lrem(self.keys("console", "thread", reply.thread_id), 0, message_id)
            exists = False
        self._store(message, new=not exists)
        return message

    def _store(self, message: dict[str, Any], new: bool, title_hint: str = "", pipe: Pipeline | None = None) -> None:
        thread_id = message["thread_id"]
        own = pipe is None
        p = self.redis.pipeline(transaction=True) if own else pipe
        # a thread that was never stored is named after its first message (no read: it may be inside a MULTI)
        thread = {"id": thread_id, "title": title_hint.strip()[:60] or DEFAULT_TITLE, "created_at": message["ts"]}
        p.hsetnx(self.keys("console", "threads"), thread_id, json.dumps(thread))
        p.hset(self.keys("console", "messages"), message["id"], json.dumps(message))
        if new:
            p.rpush(self.keys("console", "thread", thread_id), message["id"])
        p.zadd(self.keys("console", "recent"), {thread_id: message["ts"]})
        p.publish(self.live_channel, json.dumps({"type": "message", "new": new, "message": message}))
        if own:
            p.execute()


def live_status(aredis: AsyncRedis, threads: ConsoleThreads) -> Working:
    """The console's working sign: a status event on the live stream; the page shows it until the reply."""

    async def working(inbound: Inbound, trace_id: str) -> None:
        event = {"type": "status", "state": "working", "thread_id": inbound.thread_id, "trace_id": trace_id}
        await aredis.publish(threads.live_channel, json.dumps(event))

    return working


class ConsoleSender:
    """Sender for the console: writing to the thread store is the delivery."""

    def __init__(self, threads: ConsoleThreads) -> None:
        self.threads = threads

    async def send(self, reply: Reply) -> None:
        await asyncio.to_thread(self.threads.deliver, reply)

