"""Forgetting a text: each store gives up its records, copies elsewhere are wiped, the audit stays."""
from __future__ import annotations

import json
import time
from pathlib import Path

from redis import Redis

from kernel.keys import Keys
from memory.events import EventLog
from memory.facts import FactStore
from memory.forgetting import Forgetting
from memory.notes import NoteStore
from memory.redis_copies import RedisCopies
from memory.sqlite_store import SqliteStore
from memory.tasks import TaskStore
from memory.text_match import Copies, Matcher
from tests.memory.test_weaviate_store import WordEmbedder, item

WS = "acme"
SECRET = "Rioja Gran Reserva 2015"
NOTE = f"Bob's favourite wine is {SECRET}"


def forgetting(redis: Redis, backends: dict | None = None) -> Forgetting:  # type: ignore[type-arg]
    return Forgetting(NoteStore(redis, WS), FactStore(redis, WS), TaskStore(redis, WS), backends or {}, EventLog(redis, WS))


def every_value(redis: Redis) -> str:
    """Every byte Redis holds for the workspace, as one text (keys, members, fields, stream entries)."""
    parts = []
    for key in redis.scan_iter(match="*"):
        kind = redis.type(key).decode()
        parts.append(key.decode())
        if kind == "string":
            parts.append(redis.get(key).decode(errors="replace"))
        elif kind == "hash":
            parts += [f"{k!r}{v!r}" for k, v in redis.hgetall(key).items()]
        elif kind == "list":
            parts += [repr(v) for v in redis.lrange(key, 0, -1)]
        elif kind == "set":
            parts += [repr(v) for v in redis.smembers(key)]
        elif kind == "zset":
            parts += [repr(v) for v in redis.zrange(key, 0, -1)]
        elif kind == "stream":
            parts += [repr(f) for _, f in redis.xrange(key)]
    return "\n".join(parts).lower()


def test_a_text_matches_by_phrase_or_by_all_its_words() -> None:
    assert Matcher("rioja gran").matches(NOTE)
    assert Matcher("Bob's wine").matches(NOTE)
    assert not Matcher("Bob's beer").matches(NOTE)


def test_a_forgotten_note_is_gone_and_no_longer_answers(redis: Redis) -> None:
    notes = NoteStore(redis, WS)
    notes.add(NOTE)
    notes.add("Ana prefers calls after 10am")
    sweep = forgetting(redis).forget("Bob's wine", actor="U1")
    assert sweep.stores["notes"] == 1
    assert [n.text for n in notes.matching(lambda t: True)] == ["Ana prefers calls after 10am"]
    assert notes.search("Rioja") == []


def test_a_forgotten_fact_leaves_only_a_tombstone(redis: Redis) -> None:
    facts = FactStore(redis, WS)
    facts.set("bob wine", "Rioja 2010")
    facts.set("bob wine", SECRET)
    assert facts.forget("bob wine", actor="U1") == 2
    assert facts.history("bob wine") == [] and facts.all_current() == []
    [tombstone] = facts.tombstones()
    assert tombstone["by"] == "U1" and set(tombstone) == {"forgotten_at", "by"}
    assert "rioja" not in every_value(redis)


def test_a_task_quoting_it_is_deleted(redis: Redis) -> None:
    tasks = TaskStore(redis, WS)
    tasks.add(f"buy {SECRET} for Bob")
    kept = tasks.add("send the invoice")
    sweep = forgetting(redis).forget(SECRET, actor="U1")
    assert sweep.stores["tasks"] == 1 and [t.id for t in tasks.list()] == [kept.id]


def test_events_keep_who_when_and_kind_but_not_the_text(redis: Redis) -> None:
    events = EventLog(redis, WS)
    events.record("t1", "inbound.received", actor="U1", channel="slack", text=f"/remember {NOTE}")
    sweep = forgetting(redis).forget(SECRET, actor="U1", trace_id="t2")
    [event] = events.timeline("t1")
    assert (event.kind, event.actor) == ("inbound.received", "U1") and SECRET.lower() not in json.dumps(event.data).lower()
    assert sweep.delivered == {"slack": 1}
    [forgotten] = [e for e in events.recent(10) if e.kind == "memory.forgotten"]
    assert forgotten.actor == "U1" and SECRET.lower() not in json.dumps(forgotten.data).lower()
    assert SECRET.lower() not in every_value(redis)


def test_copies_in_every_kind_of_redis_value_are_wiped(redis: Redis) -> None:
    k = Keys(WS)
    redis.set(k("run", "r1", "plan"), json.dumps({"goal": f"buy {SECRET}"}), ex=600)
    redis.hset(k("console", "messages"), "m1", json.dumps({"text": f"I noted \"{SECRET}\""}))
    redis.rpush(k("conversation", "x"), f"about {SECRET}")
    redis.sadd(k("misc", "set"), f"{SECRET}!")
    redis.zadd(k("misc", "zset"), {f"{SECRET}?": 3})
    redis.xadd(Keys.global_("outbox"), {"reply": json.dumps({"channel": "telegram", "text": SECRET})})
    redis.xadd(Keys.global_("outbox"), {"reply": json.dumps({"channel": "console", "text": "other"})})
    pattern = Copies(Matcher(SECRET)).pattern()
    copies = RedisCopies(redis, WS)
    found = copies.find(pattern)
    assert found.stores == {"agent runs": 1, "console transcript": 1, "open questions": 1, "misc": 2, "outbox": 1}
    assert found.delivered == {"telegram": 1}
    copies.wipe(pattern)
    assert SECRET.lower() not in every_value(redis)
    assert redis.ttl(k("run", "r1", "plan")) > 0 and redis.xlen(Keys.global_("outbox")) == 1
    assert redis.zscore(k("misc", "zset"), "[forgotten]?") == 3


def test_the_embedded_file_keeps_no_copy_after_forgetting(redis: Redis, tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    with SqliteStore(path, WordEmbedder()) as store:
        store.add([item(f"n{i}", f"filler note number {i} about nothing much " * 5, workspace=WS) for i in range(200)])
        store.add([item("wine", NOTE, workspace=WS, created_at=time.time())])
        sweep = forgetting(redis, {"sqlite": store}).forget("Bob's wine", actor="U1")
        assert sweep.stores["semantic memory"] == 1 and store.count(WS) == 200
        assert all("Rioja" not in h.item.text for h in store.search(WS, "Rioja Gran Reserva", limit=3))
    for file in tmp_path.iterdir():
        assert b"Rioja" not in file.read_bytes() and b"rioja" not in file.read_bytes(), file.name


def test_preview_removes_nothing_and_a_held_request_is_taken_once(redis: Redis) -> None:
    NoteStore(redis, WS).add(NOTE)
    f = forgetting(redis)
    sweep = f.preview(SECRET)
    assert sweep.stores == {"notes": 1} and sweep.examples == [NOTE]
    assert NoteStore(redis, WS).count() == 1
    request = f.hold(SECRET, "U1")
    assert f.take(request) == ("U1", SECRET) and f.take(request) is None


def test_retention_default_spares_projects_that_set_their_own(redis: Redis, tmp_path: Path) -> None:
    from memory.retention import DAY, apply_retention
    from memory.workspaces import Workspaces

    now = time.time()
    workspaces = Workspaces(redis)
    workspaces.set_retention(WS, "legal", 365)
    with SqliteStore(tmp_path / "m.sqlite3", WordEmbedder()) as store:
        store.add([item("old-inbox", "an old inbox memory", workspace=WS, created_at=now - 100 * DAY),
                   item("old-legal", "an old legal memory", workspace=WS, project="legal", created_at=now - 100 * DAY),
                   item("new-inbox", "a new inbox memory", workspace=WS, created_at=now - DAY)])
        deleted = apply_retention({"sqlite": store}, workspaces, WS, EventLog(redis, WS), now=now, default_days=90)
        assert deleted == {"legal": 0, "*": 1}
        assert sorted(i.id for i in store.matching(WS, lambda t: True)) == ["new-inbox", "old-legal"]


def test_weaviate_gives_up_what_matches_too(redis: Redis) -> None:
    from harness.fakes.weaviate_server import FakeWeaviate
    from memory.weaviate_store import WeaviateStore

    server = FakeWeaviate().start()
    try:
        store = WeaviateStore.open(server.url, WordEmbedder(), grpc_port=server.grpc_port)
        try:
            store.add([item("wine", NOTE, workspace=WS), item("beer", "Bob likes pale ale", workspace=WS)])
            sweep = forgetting(redis, {"weaviate": store}).forget("Bob's wine", actor="U1")
            assert sweep.stores["semantic memory"] == 1
            assert [i.id for i in store.matching(WS, lambda t: True)] == ["beer"]
        finally:
            store.close()
    finally:
        server.stop()


def test_deputy_forget_text_shows_what_goes_and_forgets_only_when_told(settings, redis: Redis, capsys) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import main

    notes = NoteStore(redis, "default")
    notes.add(NOTE)
    assert main(["forget", "Bob's wine"]) == 1
    out = capsys.readouterr().out
    assert "Would forget: 1 from notes" in out and NOTE in out and "nothing was removed" in out and notes.count() == 1
    assert main(["forget", "Bob's wine", "--yes"]) == 0
    assert "Forgot 1 from notes" in capsys.readouterr().out and notes.count() == 0
