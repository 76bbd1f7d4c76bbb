"""The scheduler's ledger: never more than C leases out, grants in blocks, capacity moves to a starved worker."""

from __future__ import annotations

import random

import pytest

from pocket_parallel.cluster.ledger import TOKEN_TTL, LeaseLedger


def grants(messages):
    return {worker: message for worker, message in messages}


def test_a_worker_gets_what_it_wants_in_one_block_and_never_more_than_the_cap():
    ledger = LeaseLedger(16, None, now=0.0)
    sent = grants(ledger.update("a", 0.0, wants=40))
    assert sent["a"]["leases"] == 16 and sent["a"]["quota"] is None
    assert ledger.leases_out == 16 and ledger.counts.grants == 1


def test_a_starved_worker_makes_the_holder_hand_back_down_to_its_fair_share():
    ledger = LeaseLedger(16, None, now=0.0)
    ledger.update("a", 0.0, wants=40)
    sent = grants(ledger.update("b", 0.0, wants=10))
    assert "b" not in sent or sent["b"]["leases"] == 0  # nothing free yet
    assert sent["a"]["quota"] == 8  # a must come down to half
    sent = grants(ledger.update("a", 0.1, wants=30, seen=16, returned=3))
    assert sent["b"]["leases"] == 3 and ledger.leases_out == 16
    sent = grants(ledger.update("a", 0.2, wants=30, seen=16, returned=5))
    assert sent["b"]["leases"] == 8 and ledger.books["a"].held == 8
    assert ledger.books["a"].quota is None  # nobody starves any more: the quota is lifted


def test_a_late_wants_counts_the_grants_already_on_their_way():
    ledger = LeaseLedger(10, None, now=0.0)
    ledger.update("a", 0.0, wants=4)  # 4 granted
    # a says "I want 6" before it has seen the 4: it means 2 more beyond those 4
    ledger.update("a", 0.0, wants=6, seen=0)
    assert ledger.books["a"].held == 6


def test_a_worker_that_leaves_gives_its_leases_to_the_one_waiting_at_once():
    ledger = LeaseLedger(8, None, now=0.0)
    ledger.update("a", 0.0, wants=8)
    ledger.update("b", 0.0, wants=8)
    sent = grants(ledger.forget_worker("a", 0.5))
    assert sent["b"]["leases"] == 8 and ledger.leases_out == 8 and ledger.counts.leases_reclaimed == 8


def test_random_traffic_never_puts_more_than_the_cap_out():
    rng = random.Random(7)
    cap = 12
    ledger = LeaseLedger(cap, None, now=0.0)
    held = {w: 0 for w in "abcd"}
    seen = {w: 0 for w in "abcd"}
    for step in range(3000):
        worker = rng.choice("abcd")
        if rng.random() < 0.05:
            held[worker], seen[worker] = 0, 0
            messages = ledger.forget_worker(worker, step)
        else:
            give_back = rng.randint(0, held[worker])
            held[worker] -= give_back
            messages = ledger.update(worker, step, wants=rng.randint(0, 10), seen=seen[worker], returned=give_back)
        for target, message in messages:
            held[target] += message["leases"] - seen[target]
            seen[target] = message["leases"]
        assert sum(held.values()) <= cap
        assert ledger.leases_out == sum(held.values())
    assert ledger.counts.peak_leases_out <= cap


def test_the_token_bucket_never_lets_more_through_than_the_provider_would():
    per_minute = 120
    ledger = LeaseLedger(None, per_minute, now=0.0)
    granted_at: list[float] = []
    now, seen = 0.0, 0
    while now < 180.0:
        for _, message in ledger.update("a", now, tokens_wanted=50, tokens_seen=seen):
            granted_at += [now] * (message["tokens"] - seen)
            seen = message["tokens"]
        now += 0.25
    # Spent up to TOKEN_TTL after the grant, any window holds no more than the provider's bucket allows:
    # a full minute's budget at the start, then the refill.
    rate = per_minute / 60
    for i, start in enumerate(granted_at):
        for j in range(i, len(granted_at)):
            span = granted_at[j] - start + TOKEN_TTL
            assert j - i + 1 <= per_minute + rate * span + 1e-9
    assert len(granted_at) >= per_minute + rate * 170  # and it does not hold back either


@pytest.mark.parametrize("cap", [1, 3, 16])
def test_every_lease_granted_comes_back_in_the_counts(cap):
    ledger = LeaseLedger(cap, None, now=0.0)
    ledger.update("a", 0.0, wants=cap)
    ledger.update("a", 1.0, wants=0, seen=cap, returned=cap)
    assert ledger.leases_out == 0
    assert ledger.snapshot()["leases_granted"] == ledger.snapshot()["leases_returned"] == cap
