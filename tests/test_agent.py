"""One task start to end (admit → call → write → settle → feed) on a real Redis, with the
provider scripted through httpx.MockTransport and a fixed clock: no sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from swarm.budget import Ledger, worst_case_micro
from swarm.catalog import BY_NAME, estimate_prompt_tokens, messages_for
from swarm.clock import FakeClock
from swarm.config import Settings
from swarm.outputs import read_records
from swarm.producer import retry_failed
from swarm.stats import snapshot
from tests.harness import KEY, Harness, Provider, error, ok_response


@pytest.fixture
def harness(real_redis: redis.Redis, settings: Settings, clock: FakeClock) -> Harness:
    return Harness(real_redis, settings.model_copy(update={"window_size": 8}), clock, Provider())


def test_n_tasks_in_n_lines_out(harness: Harness) -> None:
    run_id = harness.start(30)
    assert len(harness.queue) == 8  # only the window is queued
    assert harness.drain().count("completed") == 30
    st = snapshot(harness.r, run_id, harness.clock)
    assert (st["state"], st["completed"], st["failed"], st["skipped"]) == ("done", 30, 0, 0)
    records = list(read_records(harness.settings.output_dir, run_id))
    assert sorted(r["index"] for r in records) == list(range(30))
    fields = {"task_id", "run_id", "index", "category", "model", "prompt_tokens",
              "completion_tokens", "cost_usd", "latency_ms", "attempts", "parsed", "raw",
              "finished_at"}
    assert all(fields <= rec.keys() and rec["parsed"] is not None for rec in records)
    assert st["tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in records)
    spent = Ledger(harness.r).snapshot(run_id).spent_micro
    assert spent == round(sum(r["cost_usd"] for r in records) * 1e6)
    assert sum(st["by_category"].values()) == 30
    assert Path(harness.settings.output_dir, f"stats_{run_id}.json").is_file()


def test_server_error_is_retried_then_succeeds(harness: Harness) -> None:
    harness.provider.script = [error(500, "server_error"), error(503, "")]
    run_id = harness.start(1)
    assert harness.drain() == ["completed"]
    [rec] = read_records(harness.settings.output_dir, run_id)
    assert rec["attempts"] == 3 and harness.provider.calls == 3
    assert len(harness.clock.slept) >= 2  # backoff happened on the injected clock


def test_429_sets_the_shared_cooldown_from_retry_after(harness: Harness) -> None:
    harness.provider.script = [error(429, "rate_limit_reached_error", {"Retry-After": "3"})]
    run_id = harness.start(1)
    t0 = harness.clock.now_ms()
    assert harness.drain() == ["completed"]
    st = snapshot(harness.r, run_id, harness.clock)
    assert st["cooldowns"] == 1
    assert harness.clock.now_ms() - t0 >= 3000  # nobody called before Retry-After ran out


class HookedClock(FakeClock):
    """The fixed clock; ``during_sleep`` runs once, inside the next sleep, as another
    worker's doing while this one waits."""

    during_sleep: Callable[[], object] | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        hook, self.during_sleep = self.during_sleep, None
        if hook:
            hook()


def booked_second_call(r: redis.Redis, settings: Settings
                       ) -> tuple[Harness, HookedClock, list[int], str]:
    """Two tasks 510 ms apart (120 RPM): the second books its slot ahead and sleeps to it.
    Returns the harness, its clock, the times of the provider's calls and the run."""
    clock = HookedClock()
    called_at: list[int] = []

    def timed(request: httpx.Request) -> httpx.Response:
        called_at.append(clock.now_ms())
        return ok_response(request)

    h = Harness(r, settings.model_copy(update={"rpm_limit": 120}), clock,
                Provider([timed, timed]))
    return h, clock, called_at, h.start(2)


def test_a_429_while_a_caller_sleeps_to_its_booked_slot_voids_the_slot(
        real_redis: redis.Redis, settings: Settings) -> None:
    """Another worker gets a 429 while this one sleeps to its booked request slot: it must
    not call into the cooldown (the provider would refuse it, and each refusal pauses the
    run again) but book anew after it, keeping its lease and reservation."""
    h, clock, called_at, run_id = booked_second_call(real_redis, settings)
    spec = h.agent.spec(run_id)
    assert spec is not None
    cooldown_end: list[int] = []
    clock.during_sleep = lambda: cooldown_end.append(h.agent.gate.cooldown(spec, 3.0))
    assert h.drain() == ["completed", "completed"]
    assert called_at[1] - called_at[0] >= 510 and cooldown_end  # the second slot was booked
    assert called_at[1] >= cooldown_end[0]  # nobody called into the cooldown
    st = snapshot(real_redis, run_id, clock)
    assert (st["requests"], st["in_flight"]) == (2, 0)  # the voided booking is not a request
    assert Ledger(real_redis).snapshot(run_id).reserved_micro == 0


def test_a_run_stopped_during_a_voided_booking_settles_the_slot_as_skipped(
        real_redis: redis.Redis, settings: Settings) -> None:
    h, clock, called_at, run_id = booked_second_call(real_redis, settings)
    spec = h.agent.spec(run_id)
    assert spec is not None

    def stop_in_a_cooldown() -> None:
        h.agent.gate.cooldown(spec, 3.0)
        h.agent.gate.stop(run_id, "stopped")

    clock.during_sleep = stop_in_a_cooldown
    assert h.drain() == ["completed", "skipped"]
    assert len(called_at) == 1
    st = snapshot(real_redis, run_id, clock)
    assert (st["completed"], st["skipped"], st["in_flight"]) == (1, 1, 0)
    led = Ledger(real_redis).snapshot(run_id)
    assert led.reserved_micro == 0 and led.spent_micro == round(st["cost_usd"] * 1e6)


def test_auth_error_fails_without_retry_and_dead_letters(harness: Harness) -> None:
    harness.provider.script = [error(401, "invalid_authentication_error")]
    run_id = harness.start(1)
    assert harness.drain() == ["failed"]
    assert harness.provider.calls == 1
    [letter] = [json.loads(x) for x in harness.r.lrange(f"swarm:{{{run_id}}}:dead", 0, -1)]
    assert letter["reason"] == "auth" and KEY not in json.dumps(letter)
    st = snapshot(harness.r, run_id, harness.clock)
    assert (st["state"], st["failed"], st["cost_usd"]) == ("done", 1, 0)


def test_quota_exhausted_stops_the_run(harness: Harness) -> None:
    harness.provider.script = [error(429, "exceeded_current_quota_error")]
    run_id = harness.start(20)
    outcomes = harness.drain()
    assert harness.provider.calls == 1  # no retry loop, no further calls
    st = snapshot(harness.r, run_id, harness.clock)
    assert st["state"] == "quota_exhausted"
    assert outcomes.count("failed") == 1
    assert st["completed"] + st["failed"] + st["skipped"] == 20


def test_redelivered_finished_task_makes_no_call(harness: Harness) -> None:
    run_id = harness.start(1)
    [(rid, slot, category)] = list(harness.queue.items)
    harness.drain()
    calls = harness.provider.calls
    assert harness.agent.run(rid, slot, category).status == "done"
    assert harness.provider.calls == calls
    assert snapshot(harness.r, run_id, harness.clock)["duplicates"] == 0


def test_budget_stop_never_overshoots_and_accounts_for_every_task(
        real_redis: redis.Redis, settings: Settings, clock: FakeClock) -> None:
    # each task reserves about $0.00107 worst case and costs about $0.0004
    tight = settings.model_copy(update={"budget_usd": 0.02, "window_size": 10})
    h = Harness(real_redis, tight, clock, Provider())
    run_id = h.start(200)
    h.drain()
    st = snapshot(real_redis, run_id, clock)
    line = tight.stop_line_micro
    spent = Ledger(real_redis).snapshot(run_id).spent_micro
    assert st["state"] == "budget_exhausted"
    assert spent <= line
    assert spent >= line - 2 * 1070  # stopped only when not even a worst case fitted
    assert st["completed"] + st["failed"] + st["skipped"] == 200
    assert st["completed"] == h.provider.calls


def test_an_unanswered_attempt_is_charged_at_worst_case(harness: Harness) -> None:
    """A request that got no answer may have been billed: the ledger counts it at the
    reservation, so our spend is never below the provider's bill."""
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    harness.provider.script = [drop]
    run_id = harness.start(1)
    assert harness.drain() == ["completed"]
    [rec] = read_records(harness.settings.output_dir, run_id)
    spent = Ledger(harness.r).snapshot(run_id).spent_micro
    assert rec["attempts"] == 2
    assert spent == round(rec["cost_usd"] * 1e6)  # the output line carries the whole charge
    assert spent > 1000  # the lost attempt at worst case (> $0.001) plus the answer


def test_no_retry_goes_out_unreserved_after_an_unanswered_attempt(harness: Harness) -> None:
    """The lost attempt used the whole reservation; the budget has no room for another worst
    case, so the retry is not sent: the run stops and the ledger stays under its line."""
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    harness.provider.script = [drop]
    run_id = harness.start(1)
    [(_, slot, category)] = list(harness.queue.items)
    spec = harness.agent.spec(run_id)
    assert spec is not None
    reserve = worst_case_micro(spec.price, estimate_prompt_tokens(
        messages_for(BY_NAME[category], spec.seed, slot)), spec.max_tokens)
    harness.r.hset(spec.keys.budget, "line", reserve + 200)  # an answer costs ~400 more
    assert harness.drain() == ["skipped"]
    assert harness.provider.calls == 1
    ledger = Ledger(harness.r).snapshot(run_id)
    assert (ledger.spent_micro, ledger.reserved_micro) == (reserve, 0)
    st = snapshot(harness.r, run_id, harness.clock)
    assert (st["state"], st["skipped"], st["unanswered"]) == ("budget_exhausted", 1, 1)


def test_retry_failed_feeds_dead_letters_again(harness: Harness) -> None:
    harness.provider.script = [error(401, "invalid_authentication_error")] * 2
    run_id = harness.start(5)
    assert sorted(harness.drain()) == ["completed"] * 3 + ["failed"] * 2
    assert snapshot(harness.r, run_id, harness.clock)["state"] == "done"
    assert retry_failed(harness.r, run_id, harness.queue.publish, harness.clock) == 2
    assert snapshot(harness.r, run_id, harness.clock)["state"] == "running"
    assert harness.drain() == ["completed", "completed"]
    st = snapshot(harness.r, run_id, harness.clock)
    assert (st["state"], st["completed"], st["failed"]) == ("done", 5, 0)
    assert retry_failed(harness.r, run_id, harness.queue.publish, harness.clock) == 0
