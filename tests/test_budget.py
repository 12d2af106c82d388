"""The hard budget: many threads against one real Redis never pass the stop line; a stopped
run resumes with more money and does only what it had not done."""

from __future__ import annotations

import random
import threading

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm.budget import Ledger
from swarm.clock import FakeClock
from swarm.config import Settings
from swarm.embedded import RedisServer
from swarm.limits import Gate
from swarm.producer import resume_run
from swarm.stats import snapshot
from tests.harness import Harness, Provider
from tests.helpers import create_run, make_spec


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.integers(1_000, 200_000), threads=st.integers(2, 12),
       reserves=st.lists(st.integers(1, 20_000), min_size=1, max_size=60),
       seed=st.integers(0, 2**16))
def test_threads_reserving_losing_and_settling_never_pass_the_line(
        redis_server: RedisServer, line: int, threads: int, reserves: list[int],
        seed: int) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    spec = create_run(r, make_spec(total=len(reserves) * threads, max_concurrent=1000,
                                   rpm=10**9), line_micro=line)
    paid: list[int] = []
    over: list[int] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        rng = random.Random(seed * 100 + t)
        gate = Gate(r)
        for i, reserve in enumerate(reserves):
            slot = t * len(reserves) + i
            for _ in range(200):  # bounded polling; waits are short and real
                v = gate.admit(spec, slot, 10, reserve)
                if v.verdict != "wait":
                    break
            if v.verdict != "go":
                continue
            outcome, cost = "completed", rng.randint(0, reserve)  # at or below the worst case
            while rng.random() < 0.3:  # sent, no answer: charged now, the retry reserves again
                charged = gate.charge_unanswered(spec, slot, "competitor_intel")
                with lock:
                    paid.append(charged)
                for _ in range(200):
                    v = gate.admit(spec, slot, 10, reserve, mode="retry")
                    if v.verdict != "wait":
                        break
                if v.verdict != "go":  # no room for another worst case: abandoned
                    outcome, cost = "skipped", 0
                    break
            gate.settle(spec, slot, outcome=outcome, cost_micro=cost, prompt_tokens=1,
                        completion_tokens=1, unused_tokens=0, category="competitor_intel",
                        parsed=False, revenue_cents=0)
            spent = Ledger(r).snapshot(spec.run_id).spent_micro
            with lock:
                paid.append(cost)
                if spent > line:
                    over.append(spent)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    snap = Ledger(r).snapshot(spec.run_id)
    assert not over
    assert snap.spent_micro == sum(paid) <= line
    assert snap.reserved_micro == 0 and r.hlen(spec.keys.resv) == 0
    r.close()


def test_resume_with_more_money_skips_done_tasks(real_redis: redis.Redis, settings: Settings,
                                                 clock: FakeClock) -> None:
    tight = settings.model_copy(update={"budget_usd": 0.02, "window_size": 10})
    h = Harness(real_redis, tight, clock, Provider())
    run_id = h.start(120)
    h.drain()
    before = snapshot(real_redis, run_id, clock)
    assert before["state"] == "budget_exhausted" and 0 < before["completed"] < 120
    assert before["completed"] + before["skipped"] == 120
    calls_before = h.provider.calls

    richer = tight.model_copy(update={"budget_usd": 5.0})
    assert resume_run(real_redis, richer, run_id, h.feeder) > 0
    h.drain()
    after = snapshot(real_redis, run_id, clock)
    assert (after["state"], after["completed"], after["skipped"]) == ("done", 120, 0)
    assert h.provider.calls - calls_before == 120 - before["completed"]  # nothing done twice
    assert after["duplicates"] == 0
    assert Ledger(real_redis).snapshot(run_id).line_micro == richer.stop_line_micro


def test_resume_refuses_a_running_or_finished_run(real_redis: redis.Redis, settings: Settings,
                                                  clock: FakeClock) -> None:
    import pytest

    from swarm.errors import ConfigError

    h = Harness(real_redis, settings, clock, Provider())
    run_id = h.start(3)
    with pytest.raises(ConfigError, match="running"):
        resume_run(real_redis, settings, run_id, h.feeder)
    h.drain()
    with pytest.raises(ConfigError, match="done"):
        resume_run(real_redis, settings, run_id, h.feeder)
