"""The effect ledger: one claim wins, a done key returns its result, a dead worker's lease goes stale."""
from __future__ import annotations

import threading

from integrations.ledger import EffectLedger
from tests.waiting import redis_now, wait_past


def test_first_claim_acts_and_a_retry_gets_the_recorded_result(redis):
    ledger = EffectLedger(redis, "ws")
    first = ledger.claim("run1:0")
    assert first.state == "new"
    ledger.record("run1:0", '{"message_id": "<a@b>"}')
    again = ledger.claim("run1:0")
    assert again.state == "done" and again.result == '{"message_id": "<a@b>"}'
    assert ledger.result("run1:0") == '{"message_id": "<a@b>"}'


def test_concurrent_claims_have_exactly_one_winner(redis):
    ledger = EffectLedger(redis, "ws")
    states: list[str] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        states.append(ledger.claim("run2:1").state)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(states) == ["in_progress"] * 7 + ["new"]


def test_expired_lease_without_a_result_is_stale_and_taken_over(redis):
    ledger = EffectLedger(redis, "ws", lease_s=0.05)
    assert ledger.claim("run3:0").state == "new"
    claimed_by = redis_now(redis)
    # the worker "died" here: no record, no release
    wait_past(redis, claimed_by + 0.05)
    taken = ledger.claim("run3:0")
    assert taken.state == "stale"
    assert ledger.claim("run3:0").state == "in_progress"  # the taker's lease is live


def test_release_lets_a_later_try_act_but_only_the_lease_holder_may_release(redis):
    ledger = EffectLedger(redis, "ws")
    mine = ledger.claim("run4:0")
    intruder = ledger.claim("run4:0")
    assert intruder.state == "in_progress"
    assert ledger.release(intruder) is False
    assert ledger.release(mine) is True
    assert ledger.claim("run4:0").state == "new"


def test_a_done_key_cannot_be_released(redis):
    ledger = EffectLedger(redis, "ws")
    claim = ledger.claim("run5:0")
    ledger.record("run5:0", "{}")
    assert ledger.release(claim) is False
    assert ledger.claim("run5:0").state == "done"


def test_workspaces_do_not_share_keys(redis):
    assert EffectLedger(redis, "a").claim("k").state == "new"
    assert EffectLedger(redis, "b").claim("k").state == "new"
