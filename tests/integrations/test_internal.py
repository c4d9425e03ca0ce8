"""Tasks, notes and contacts as capabilities: a retried step never creates a second task."""
from __future__ import annotations

from integrations.breaker import CircuitBreaker
from integrations.capability import EffectContext
from integrations.invoke import call
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
