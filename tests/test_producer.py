"""How the producer sizes its messages (SLOTS_PER_MESSAGE, auto by default)."""

from __future__ import annotations

import dataclasses

import redis
from hypothesis import given
from hypothesis import strategies as st

from swarm.clock import FakeClock
from swarm.producer import AUTO_AFTER_ANSWERS, MESSAGE_TARGET_MS, Feeder, message_size
from tests.helpers import Queue, create_run, make_spec


def test_auto_starts_at_one_slot_and_grows_with_fast_calls() -> None:
    spec = make_spec(max_concurrent=24, window=1200)  # room for 25 slots a message
    assert message_size(spec, 0, 0) == 1  # no measurement yet
    assert message_size(spec, AUTO_AFTER_ANSWERS - 1, 1) == 1
    assert message_size(spec, 100, 100 * 2) == 25  # 2 ms calls: capped by the window
    assert message_size(spec, 100, 100 * 100) == MESSAGE_TARGET_MS // 100
    assert message_size(spec, 100, 100 * 3000) == 1  # real calls of seconds: one a message


def test_a_set_size_is_kept() -> None:
    spec = dataclasses.replace(make_spec(max_concurrent=24, window=240), slots_per_message=7)
    assert message_size(spec, 0, 0) == 7
    assert message_size(spec, 1000, 1000 * 5000) == 7


@given(concurrency=st.integers(1, 500), window=st.integers(1, 50_000),
       answered=st.integers(0, 10**6), per_call_ms=st.integers(0, 120_000))
def test_auto_always_leaves_a_message_for_every_thread(concurrency: int, window: int,
                                                       answered: int, per_call_ms: int) -> None:
    """The window is topped up when half empty: half a window must still be at least one
    message per thread, whatever the latency."""
    spec = make_spec(max_concurrent=concurrency, window=window)
    size = message_size(spec, answered, answered * per_call_ms)
    assert size >= 1
    if window >= 2 * concurrency:
        assert (window // 2) // size >= concurrency


def test_feeder_sizes_messages_from_the_run_counters(any_redis: redis.Redis,
                                                     clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(total=1000, max_concurrent=10, window=200))
    queue = Queue()
    feeder = Feeder(any_redis, queue.publish, clock)
    assert feeder.feed(spec) == 200
    # 50 answered calls of 2 ms each: the next feed publishes 10 slots a message (the cap)
    any_redis.hset(spec.keys.counters, mapping={"completed": 50, "call_ms": 100})
    assert feeder.feed(spec) == 50
    assert queue.sizes == [1, 10]
