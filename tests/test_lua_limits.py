"""The admit/settle/claim/stop/cooldown scripts, with a fixed clock, on fakeredis and on a
real redis-server."""

from __future__ import annotations

import math
import threading
import time

import redis

from swarm.agent import LEASE_WAIT_S
from swarm.clock import FakeClock
from swarm.embedded import RedisServer
from swarm.limits import BOOK_AHEAD_MS, MAX_WAIT_MS, RATE_HEADROOM, Gate, Verdict
from swarm.redisconn import connect
from tests.helpers import create_run, make_spec


class Ticking:
    """The fixed clock, moved 1 ms at every read: calls never share a millisecond, so RPM
    spacing stays out of the tests about other limits."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now_ms(self) -> int:
        self.clock.advance(1)
        return self.clock.now_ms()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


def settle(gate: Gate, spec, slot: int, cost: int = 100, outcome: str = "completed",
           unused: int = 0):  # type: ignore[no-untyped-def]
    return gate.settle(spec, slot, outcome=outcome, cost_micro=cost, prompt_tokens=10,
                       completion_tokens=20, unused_tokens=unused, category="viral_content_idea",
                       parsed=True, revenue_cents=10_000)


def test_rpm_books_evenly_spaced_slots(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(rpm=600, max_concurrent=100))
    spacing = 60_000 / (600 * RATE_HEADROOM)  # 102.04 ms: 588 requests a minute
    gate = Gate(any_redis, clock)
    booked = []
    for slot in range(20):
        v = gate.admit(spec, slot, 100, 10)
        if v.verdict != "go":
            break
        booked.append(v.wait_ms)  # each caller sleeps to its own slot: nobody polls for it
    assert booked == [math.ceil(k * spacing) for k in range(len(booked))]
    assert (len(booked) - 1) * spacing <= BOOK_AHEAD_MS < len(booked) * spacing
    assert (v.verdict, v.reason) == ("wait", "rpm")
    assert v.wait_ms == math.ceil(len(booked) * spacing - BOOK_AHEAD_MS)
    clock.advance(v.wait_ms)
    assert gate.admit(spec, len(booked), 100, 10).verdict == "go"


def test_callers_told_to_wait_for_a_rate_slot_queue_in_time(any_redis: redis.Redis,
                                                             clock: FakeClock) -> None:
    """Each caller told to wait comes back when its own slot can be booked, one spacing after
    the caller before it (not all of them at the next slot, polling); the queue reaches no
    further than MAX_WAIT_MS, the longest a caller waits."""
    spec = create_run(any_redis, make_spec(rpm=600, max_concurrent=1000, total=1000))
    spacing = 60_000 / (600 * RATE_HEADROOM)
    gate = Gate(any_redis, clock)
    slot = 0
    while (told := gate.admit(spec, slot, 100, 10)).verdict == "go":
        slot += 1  # until the booking horizon is full
    first = slot * spacing - BOOK_AHEAD_MS  # when the next slot can be booked
    waits = [told] + [gate.admit(spec, slot + k, 100, 10) for k in range(1, 80)]
    assert {v.reason for v in waits} == {"rpm"}
    for k, v in enumerate(waits[:40]):  # 40 x 102 ms: all within MAX_WAIT_MS
        assert abs(v.wait_ms - (first + k * spacing)) <= 1
    assert max(v.wait_ms for v in waits) <= first + MAX_WAIT_MS + 1
    clock.advance(waits[0].wait_ms)  # the first in the queue comes back: its slot is there
    assert gate.admit(spec, slot, 100, 10).verdict == "go"


def test_rpm_never_exceeds_limit_in_any_minute(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(rpm=120, max_concurrent=1000, total=1000))
    gate = Gate(any_redis, clock)
    granted = []
    slot = 0
    for _ in range(5000):  # callers polling every 37 ms for three minutes
        v = gate.admit(spec, slot, 10, 1)
        if v.verdict == "go":
            granted.append(clock.now_ms() + v.wait_ms)  # when the call is made
            slot += 1
        clock.advance(37)
    for t in granted:
        in_window = sum(1 for u in granted if t <= u < t + 60_000)
        assert in_window <= 120
    assert len(granted) >= 120 * 3 * RATE_HEADROOM - 2  # and the paced rate is all used


def test_tpm_charges_estimate_and_settle_refunds(any_redis: redis.Redis,
                                                 clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(tpm=60_000))
    per_token = 60_000 / (60_000 * RATE_HEADROOM)  # 1.0204 ms per token
    gate = Gate(any_redis, clock)
    assert gate.admit(spec, 0, 1000, 10) == Verdict("go", 0, "")
    clock.advance(1)
    v = gate.admit(spec, 1, 1000, 10)  # its slot would start 1020 ms from now: too far ahead
    assert (v.verdict, v.reason) == ("wait", "tpm")
    assert v.wait_ms == math.ceil(1000 * per_token - 1 - BOOK_AHEAD_MS)
    settle(gate, spec, 0, unused=900)  # used only 100 of the 1000 reserved tokens
    v = gate.admit(spec, 1, 1000, 10)
    assert (v.verdict, v.wait_ms) == ("go", math.ceil(100 * per_token - 1))  # refunded 900


def test_concurrency_leases_and_expiry(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(max_concurrent=2, lease_ttl_ms=5_000))
    gate = Gate(any_redis, Ticking(clock))
    assert gate.admit(spec, 0, 10, 1).verdict == "go"
    assert gate.admit(spec, 1, 10, 1).verdict == "go"
    v = gate.admit(spec, 2, 10, 1)
    assert (v.verdict, v.reason) == ("wait", "concurrency")
    settle(gate, spec, 0)
    assert gate.admit(spec, 2, 10, 1).verdict == "go"
    # a worker that died holding slot 1: its lease comes back after the TTL
    assert gate.admit(spec, 3, 10, 1).reason == "concurrency"
    clock.advance(5_001)
    assert gate.admit(spec, 3, 10, 1).verdict == "go"


def test_cooldown_pauses_every_caller(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec())
    gate = Gate(any_redis, clock)
    end = gate.cooldown(spec, 2.5)
    assert end == clock.now_ms() + 2500
    assert gate.cooldown(spec, 1.0) == end  # a shorter one does not shorten it
    v = gate.admit(spec, 0, 10, 1)
    assert (v.verdict, v.reason, v.wait_ms) == ("wait", "cooldown", 2500)
    clock.advance(2500)
    assert gate.admit(spec, 0, 10, 1).verdict == "go"


def test_a_released_lease_wakes_one_waiting_caller(any_redis: redis.Redis,
                                                    clock: FakeClock) -> None:
    """Callers told to wait for a lease block in Redis until a settle releases one, instead
    of polling admission; unused tokens are capped."""
    spec = create_run(any_redis, make_spec(total=200, max_concurrent=1))
    gate = Gate(any_redis, Ticking(clock))
    assert gate.admit(spec, 0, 10, 1).verdict == "go"
    assert gate.admit(spec, 1, 10, 1).reason == "concurrency"
    assert gate.await_lease(spec, 0.01) is False  # nothing released yet: timed out
    settle(gate, spec, 0)
    assert gate.await_lease(spec, 0.01) is True
    assert gate.admit(spec, 1, 10, 1).verdict == "go"
    assert gate.await_lease(spec, 0.01) is False  # one token, one caller
    settle(gate, spec, 1)
    for slot in range(2, 102):
        assert gate.admit(spec, slot, 10, 1).verdict == "go"
        settle(gate, spec, slot)
    assert any_redis.llen(spec.keys.freed) == 64


def test_a_caller_blocked_on_a_lease_is_woken_by_the_settle(real_redis: redis.Redis,
                                                            clock: FakeClock) -> None:
    spec = create_run(real_redis, make_spec(max_concurrent=1))
    gate = Gate(real_redis, Ticking(clock))
    assert gate.admit(spec, 0, 10, 1).verdict == "go"
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(gate.await_lease(spec, 60)))
    waiter.start()
    for _ in range(1000):  # until the waiter is blocked in Redis
        if any(c["cmd"] == "blpop" for c in real_redis.client_list()):
            break
        time.sleep(0.01)
    settle(gate, spec, 0)
    waiter.join(10)
    assert woken == [True]


def test_a_wait_for_a_lease_may_block_its_whole_length(redis_server: RedisServer,
                                                       clock: FakeClock) -> None:
    """The clients workers use keep their socket open longer than a lease wait blocks (a
    5 s BLPOP against redis-py's default 5 s socket timeout was a race that failed tasks)."""
    r = connect(redis_server.url, ride_out_outages=True)
    assert r.connection_pool.make_connection().socket_timeout >= 2 * LEASE_WAIT_S
    spec = create_run(r, make_spec(max_concurrent=1))
    assert Gate(r, clock).await_lease(spec, LEASE_WAIT_S) is False  # timed out, no error
    r.close()


def test_done_slot_is_never_called_again(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec())
    gate = Gate(any_redis, Ticking(clock))
    assert gate.admit(spec, 5, 10, 1).verdict == "go"
    assert gate.admit(spec, 5, 10, 1).verdict == "busy"  # a duplicate message meanwhile
    settle(gate, spec, 5)
    assert gate.admit(spec, 5, 10, 1).verdict == "done"


def test_budget_reserve_wait_and_stop(any_redis: redis.Redis, clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(), line_micro=1000)
    gate = Gate(any_redis, Ticking(clock))
    assert gate.admit(spec, 0, 10, 600).verdict == "go"
    v = gate.admit(spec, 1, 10, 600)  # 600 reserved + 600 > 1000, but the first may cost less
    assert (v.verdict, v.reason) == ("wait", "budget")
    settle(gate, spec, 0, cost=300)
    assert any_redis.hget(spec.keys.budget, "reserved") == b"0"
    assert gate.admit(spec, 1, 10, 600).verdict == "go"
    settle(gate, spec, 1, cost=600)
    v = gate.admit(spec, 2, 10, 600)  # 900 spent + 600 > 1000: no call can ever fit
    assert (v.verdict, v.reason) == ("stop", "budget_exhausted")


def test_stop_counts_unfed_and_queued_slots_as_skipped(any_redis: redis.Redis,
                                                       clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(total=100, window=10))
    gate = Gate(any_redis, Ticking(clock))
    first, n = gate.scripts.claim(keys=[spec.keys.meta, spec.keys.counters, spec.keys.pending],
                                  args=[clock.now_ms(), 10, 60_000])
    assert (first, n) == (0, 10)
    assert gate.admit(spec, 0, 10, 1).verdict == "go"
    assert gate.stop(spec.run_id, "stopped") is True
    assert gate.stop(spec.run_id, "stopped") is False
    # the 90 never-fed slots are skipped at once; each queued message is skipped when consumed
    assert int(any_redis.hget(spec.keys.counters, "skipped")) == 90
    for slot in range(1, 10):
        assert gate.admit(spec, slot, 10, 1).verdict == "skip"
    assert gate.admit(spec, 1, 10, 1).verdict == "done"  # skipped once only
    settle(gate, spec, 0)  # the call in flight finishes and settles
    c = {k.decode(): int(v) for k, v in any_redis.hgetall(spec.keys.counters).items()}
    assert c["completed"] + c.get("failed", 0) + c["skipped"] == 100
    assert any_redis.hget(spec.keys.meta, "state") == b"stopped"


def test_claim_keeps_the_window_and_settle_ends_the_run(any_redis: redis.Redis,
                                                        clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec(total=25, window=10))
    gate = Gate(any_redis, Ticking(clock))
    keys = [spec.keys.meta, spec.keys.counters, spec.keys.pending]
    claim = gate.scripts.claim
    assert claim(keys=keys, args=[0, 10, 60_000]) == [0, 10]
    assert claim(keys=keys, args=[0, 10, 60_000]) == [10, 0]  # window full
    for slot in range(4):
        gate.admit(spec, slot, 10, 1)
        settle(gate, spec, slot)
    assert claim(keys=keys, args=[0, 10, 60_000]) == [10, 4]
    for slot in range(4, 14):
        gate.admit(spec, slot, 10, 1)
        settle(gate, spec, slot)
    assert claim(keys=keys, args=[0, 10, 60_000]) == [14, 10]
    assert claim(keys=keys, args=[0, 10, 60_000]) == [24, 0]
    for slot in range(14, 24):
        gate.admit(spec, slot, 10, 1)
        settle(gate, spec, slot)
    assert claim(keys=keys, args=[0, 10, 60_000]) == [24, 1]
    gate.admit(spec, 24, 10, 1)
    done = settle(gate, spec, 24)
    assert (done.state, done.finished, done.total) == ("done", 25, 25)
    assert any_redis.zcard(spec.keys.pending) == 0


def test_duplicate_settle_is_counted_not_double_counted(any_redis: redis.Redis,
                                                        clock: FakeClock) -> None:
    spec = create_run(any_redis, make_spec())
    gate = Gate(any_redis, Ticking(clock))
    gate.admit(spec, 3, 10, 100)
    settle(gate, spec, 3, cost=50)
    dup = settle(gate, spec, 3, cost=50)  # a worker that died mid-call and came back
    c = {k.decode(): int(v) for k, v in any_redis.hgetall(spec.keys.counters).items()}
    assert dup.duplicate and c["completed"] == 1 and c["duplicates"] == 1
    assert int(any_redis.hget(spec.keys.budget, "spent")) == 100  # both calls were paid for


def test_dead_workers_reservation_is_reclaimed_by_the_next_admit(any_redis: redis.Redis,
                                                                  clock: FakeClock) -> None:
    """No beat needed: the next admission turns an expired lease's reservation into spend, so
    live workers stop waiting on money held by a dead one (they stop the run instead of
    waiting forever) and its concurrency slot comes back."""
    spec = create_run(any_redis, make_spec(max_concurrent=2, lease_ttl_ms=10_000),
                      line_micro=1000)
    gate = Gate(any_redis, clock)
    assert gate.admit(spec, 0, 10, 700).verdict == "go"  # this worker then dies mid-call
    clock.advance(1)
    assert gate.admit(spec, 1, 10, 200).verdict == "go"
    settle(gate, spec, 1, cost=100)
    clock.advance(1)
    assert gate.admit(spec, 2, 10, 250).reason == "budget"  # 100 + 700 held + 250 > 1000
    clock.advance(10_000)
    assert gate.admit(spec, 2, 10, 250).verdict == "stop"  # 800 spent: waiting cannot help
    b = {k.decode(): int(x) for k, x in any_redis.hgetall(spec.keys.budget).items()}
    assert (b["spent"], b["reserved"]) == (800, 0)
    assert any_redis.zcard(spec.keys.leases) == 0
    assert int(any_redis.hget(spec.keys.counters, "lost_reservations")) == 1


def test_an_unanswered_attempt_is_charged_and_its_retry_reserves_again(
        any_redis: redis.Redis, clock: FakeClock) -> None:
    """A lost attempt's reservation becomes spend at once; the retry takes a new worst case
    under the same checks as a first attempt, so no attempt goes out unreserved."""
    spec = create_run(any_redis, make_spec(), line_micro=1000)
    gate = Gate(any_redis, Ticking(clock))
    assert gate.admit(spec, 0, 10, 400).verdict == "go"
    assert gate.charge_unanswered(spec, 0, "competitor_intel") == 400
    assert gate.charge_unanswered(spec, 0, "competitor_intel") == 0  # once only
    b = {k.decode(): int(x) for k, x in any_redis.hgetall(spec.keys.budget).items()}
    assert (b["spent"], b["reserved"]) == (400, 0)
    c = any_redis.hmget(spec.keys.counters, "cost_kimi_micro", "c:competitor_intel:cost_micro",
                        "lost_attempts")
    assert [int(x) for x in c] == [400, 400, 1]
    assert gate.admit(spec, 0, 10, 400, mode="retry").verdict == "go"  # 400 + 400 <= 1000
    assert int(any_redis.hget(spec.keys.budget, "reserved")) == 400
    assert gate.admit(spec, 0, 10, 400, mode="retry").verdict == "go"  # still held: no new one
    assert int(any_redis.hget(spec.keys.budget, "reserved")) == 400
    gate.charge_unanswered(spec, 0, "competitor_intel")
    v = gate.admit(spec, 0, 10, 400, mode="retry")  # 800 spent + 400 > 1000: no retry can fit
    assert (v.verdict, v.reason) == ("stop", "budget_exhausted")
    assert int(any_redis.hget(spec.keys.budget, "spent")) == 800
