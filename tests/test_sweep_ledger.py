"""Recovery of what dead workers leave behind, and the ledger for Claude's spend."""

from __future__ import annotations

import redis

from swarm.budget import Ledger
from swarm.clock import FakeClock
from swarm.limits import Gate
from swarm.producer import Feeder
from tests.helpers import Queue, create_run, make_spec

REFEED_AFTER_MS = make_spec().refeed_after_ms


def test_sweep_turns_dead_reservation_into_spend_and_refeeds(any_redis: redis.Redis,
                                                             clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(total=5, window=5, lease_ttl_ms=10_000))
    queue = Queue()
    feeder = Feeder(any_redis, queue.publish, clock)
    assert feeder.feed(spec) == 5
    gate = Gate(any_redis, clock)
    assert gate.admit(spec, 2, 10, 777).verdict == "go"  # then the worker is killed -9
    queue.items.clear()  # and the messages it had were lost with it
    clock.advance(10_001)  # lease expired
    assert feeder.sweep(spec) == 0  # re-feed deadline not reached yet
    b = Ledger(any_redis).snapshot(spec.run_id)
    assert (b.spent_micro, b.reserved_micro) == (777, 0)  # the call may have been billed
    clock.advance(REFEED_AFTER_MS)
    assert feeder.sweep(spec) == 5
    assert sorted(s for _, s, _ in queue.items) == [0, 1, 2, 3, 4]
    assert feeder.sweep(spec) == 0  # deadlines moved on


def test_sweep_skips_finished_and_leased_slots(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(total=3, window=3, lease_ttl_ms=REFEED_AFTER_MS * 2))
    queue = Queue()
    feeder = Feeder(any_redis, queue.publish, clock)
    feeder.feed(spec)
    queue.items.clear()
    gate = Gate(any_redis, clock)
    gate.admit(spec, 0, 10, 1)
    gate.settle(spec, 0, outcome="completed", cost_micro=1, prompt_tokens=1,
                completion_tokens=1, unused_tokens=0, category="competitor_intel", parsed=False,
                revenue_cents=0)
    clock.advance(1)
    gate.admit(spec, 1, 10, 1)  # a long call still under way
    clock.advance(REFEED_AFTER_MS + 1)
    assert feeder.sweep(spec) == 1
    assert [s for _, s, _ in queue.items] == [2]


def test_claude_ledger_line(any_redis: redis.Redis) -> None:
    spec = create_run(any_redis, make_spec(), line_micro=1_000)
    ledger = Ledger(any_redis)
    assert ledger.reserve(spec.run_id, 800)
    assert not ledger.reserve(spec.run_id, 300)  # would pass the line
    ledger.settle(spec.run_id, 800, 120, "cost_claude_micro")
    snap = ledger.snapshot(spec.run_id)
    assert (snap.spent_micro, snap.reserved_micro, snap.claude_micro) == (120, 0, 120)
    assert snap.left_micro == 880
