"""Tasks, notes and contacts as capabilities: a retried step never creates a second task; an undo puts things back once."""
from __future__ import annotations

import pytest

from integrations.breaker import CircuitBreaker
from integrations.capability import EffectContext, PermanentError
from integrations.invoke import call
from integrations.internal import task_undo
from integrations.ledger import EffectLedger
from integrations.registry import build_capabilities, check_health
from kernel.settings import Settings
from memory.tasks import TaskStore


def test_internal_writes_happen_once_per_key_and_reads_see_the_latest_state(redis):
    caps = build_capabilities(Settings(workspace="ws"), redis)
    ledger, breaker = EffectLedger(redis, "ws"), CircuitBreaker(redis, "internal", "ws")

    def run(name: str, args: dict, key: str):  # type: ignore[no-untyped-def]
        return call(caps[name], args, EffectContext(key, "ws", "t", "r"), ledger, breaker)

    first = run("tasks.create", {"title": "Call Ana"}, "r:0")
    again = run("tasks.create", {"title": "Call Ana"}, "r:0")  # a retried step
    assert again.replayed and again.output == first.output
    assert [t.title for t in run("tasks.list", {}, "r:1").output.tasks] == ["Call Ana"]
    run("tasks.create", {"title": "Send the invoice"}, "r:2")
    # a read asked again under the same key is read again, never answered from the ledger
    relisted = run("tasks.list", {}, "r:1")
    assert not relisted.replayed and [t.title for t in relisted.output.tasks] == ["Call Ana", "Send the invoice"]
    run("notes.add", {"text": "Ana prefers calls after 2pm"}, "r:3")
    assert run("notes.search", {"query": "Ana"}, "r:4").output.notes == ["Ana prefers calls after 2pm"]
    assert all(h.ok for h in check_health(caps).values())


def test_registry_without_redis_has_no_internal_capabilities():
    assert build_capabilities(Settings(), None) == {}


def test_task_created_once_even_when_the_ledger_record_was_lost(redis):
    caps = build_capabilities(Settings(workspace="ws"), redis)
    ctx = EffectContext(idempotency_key="run9:0", workspace="ws", trace_id="t", run_id="run9")
    ledger = EffectLedger(redis, "ws", lease_s=0.01)
    first = call(caps["tasks.create"], {"title": "Call Ana"}, ctx, ledger, CircuitBreaker(redis, "tasks"))
    redis.delete(ledger._key("run9:0"))  # as if the record never happened
    second = call(caps["tasks.create"], {"title": "Call Ana"}, ctx, ledger, CircuitBreaker(redis, "tasks"))
    assert first.output == second.output
    assert [t.title for t in TaskStore(redis, "ws").list()] == ["Call Ana"]


def test_contacts_upsert_merges_and_lookup_finds_by_name(redis):
    caps = build_capabilities(Settings(workspace="ws"), redis)
    breaker = CircuitBreaker(redis, "contacts")
    ledger = EffectLedger(redis, "ws")
    for i, args in enumerate([{"email": "Ana@Acme.io", "name": "Ana"}, {"email": "ana@acme.io", "company": "Acme"}]):
        call(caps["contacts.upsert"], args, EffectContext(f"r:{i}", "ws", "t", "r"), ledger, breaker)
    found = call(caps["contacts.lookup"], {"query": "ana"}, EffectContext("r:9", "ws", "t", "r"), ledger, breaker).output
    assert [(c.email, c.name, c.company) for c in found.contacts] == [("ana@acme.io", "Ana", "Acme")]


def _runner(redis):  # type: ignore[no-untyped-def]
    caps = build_capabilities(Settings(workspace="ws"), redis)
    ledger, breaker = EffectLedger(redis, "ws"), CircuitBreaker(redis, "internal", "ws")

    def run(name: str, args: dict, key: str):  # type: ignore[no-untyped-def]
        return call(caps[name], args, EffectContext(key, "ws", "t", key.split(":")[0]), ledger, breaker)

    return caps, run


def test_an_undone_task_creation_removes_the_task_once(redis):
    caps, run = _runner(redis)
    made = run("tasks.create", {"title": "Call Ana"}, "r:0").output.model_dump()
    back = caps["tasks.create"].undo({"title": "Call Ana"}, made)

    assert caps["tasks.create"].compensation == "tasks.restore"
    assert run("tasks.restore", back, "undo-r:0").output.changed
    assert run("tasks.restore", back, "undo-r:0").replayed  # the same undo again: nothing done twice
    assert not run("tasks.restore", back, "undo-again:0").output.changed  # another undo of it: already gone
    assert TaskStore(redis, "ws").list() == [] and TaskStore(redis, "ws").get(made["id"]) is None


def test_a_changed_task_is_put_back_as_it_was(redis):
    _, run = _runner(redis)
    tasks = TaskStore(redis, "ws")
    before = tasks.add("Send the invoice", project="billing")
    after, _ = tasks.done(before.id)
    run("tasks.restore", task_undo(before.id, before, after), "undo-c1:0")
    assert tasks.get(before.id) == before and [t.id for t in tasks.list("open")] == [before.id] and tasks.list("done") == []

    gone = tasks.delete(before.id)
    run("tasks.restore", task_undo(before.id, gone, None), "undo-c2:0")
    assert tasks.get(before.id) == before and [t.title for t in tasks.list("open")] == ["Send the invoice"]


def test_a_task_changed_again_since_is_left_alone(redis):
    _, run = _runner(redis)
    tasks = TaskStore(redis, "ws")
    before = tasks.add("Send the invoice")
    renamed = tasks.edit(before.id, title="Send the invoice to Acme")
    tasks.done(before.id)  # a later change the undo must not clobber
    with pytest.raises(PermanentError, match="changed again since"):
        run("tasks.restore", task_undo(before.id, before, renamed), "undo-c3:0")
    assert tasks.get(before.id).status == "done" and tasks.get(before.id).title == "Send the invoice to Acme"


def test_an_undone_note_goes_only_when_this_effect_made_it(redis):
    caps, run = _runner(redis)
    made = run("notes.add", {"text": "Ana prefers calls after 2pm"}, "n:0").output.model_dump()
    again = run("notes.add", {"text": "Ana prefers calls after 2pm"}, "n2:0").output.model_dump()

    assert caps["notes.add"].undo({}, again) is None  # it was there already: nothing of this effect to take back
    back = caps["notes.add"].undo({}, made)
    assert run("notes.remove", back, "undo-n:0").output.removed
    assert not run("notes.remove", back, "undo-n-again:0").output.removed
    assert run("notes.search", {"query": "Ana"}, "n:1").output.notes == []
