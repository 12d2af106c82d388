"""Runs and their queue window: create a run in O(1), feed slots from the atomic cursor with
categories drawn from the current weights, re-feed what dead workers left behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import redis

from swarm import runs
from swarm.catalog import WeightedDraw, default_weights
from swarm.clock import SYSTEM, Clock
from swarm.config import Settings
from swarm.errors import ConfigError
from swarm.keys import RunKeys
from swarm.redisconn import text
from swarm.runs import RunSpec
from swarm.scripts import Scripts

# publish(run_id, [(slot, category), ...], size) puts the slots on the queue as compact
# messages of ``size`` slots at most.
Publish = Callable[[str, Sequence[tuple[int, str]], int], None]

# SLOTS_PER_MESSAGE=auto: a message carries about this much calling, so Celery's fixed cost
# per message (milliseconds of CPU) is spread over fast calls and slow calls still get a
# message, and a thread, each.
MESSAGE_TARGET_MS = 500
AUTO_AFTER_ANSWERS = 20  # answered calls before the run's own latency is trusted


def message_size(spec: RunSpec, answered: int, call_ms_total: int) -> int:
    """Slots per message: the run's SLOTS_PER_MESSAGE, or with auto about MESSAGE_TARGET_MS
    of measured calls, at most window / (2 x MAX_CONCURRENT) so that the half-empty window
    still holds a message for every thread."""
    if spec.slots_per_message:
        return spec.slots_per_message
    if answered < AUTO_AFTER_ANSWERS:
        return 1
    cap = max(1, spec.window // (2 * spec.max_concurrent))
    per_call_ms = max(1.0, call_ms_total / answered)
    return max(1, min(cap, int(MESSAGE_TARGET_MS / per_call_ms)))


def build_spec(settings: Settings, run_id: str, total: int, seed: int) -> RunSpec:
    price = settings.kimi_price()
    if price is None:
        raise ConfigError(
            f"KIMI_MODEL: no known price for {settings.kimi_model!r}; "
            "set KIMI_PRICE_IN and KIMI_PRICE_OUT (USD per 1M tokens)"
        )
    return RunSpec(
        run_id=run_id, total=total, seed=seed, model=settings.kimi_model,
        max_tokens=settings.kimi_max_tokens, temperature=settings.kimi_temperature,
        price=price, rpm=settings.rpm_limit, tpm=settings.tpm_limit,
        max_concurrent=settings.max_concurrent, window=settings.window,
        lease_ttl_ms=int(settings.lease_ttl_s * 1000),
        revenue_conversion=settings.revenue_conversion,
        refeed_after_ms=int(settings.refeed_after_s * 1000),
        slots_per_message=0 if settings.slots_per_message == "auto"
        else settings.slots_per_message,
    )


class Feeder:
    def __init__(self, r: redis.Redis, publish: Publish, clock: Clock = SYSTEM) -> None:
        self.r = r
        self.publish = publish
        self.clock = clock
        self.scripts = Scripts(r)

    def publish_slots(self, spec: RunSpec, slots: Sequence[int]) -> None:
        draw = WeightedDraw(runs.weights(self.r, spec.run_id))
        answered, call_ms = self.r.hmget(spec.keys.counters, "completed", "call_ms")
        size = message_size(spec, int(answered or 0), int(call_ms or 0))
        self.publish(spec.run_id, [(s, draw.category(spec.seed, s)) for s in slots], size)

    def feed(self, spec: RunSpec) -> int:
        """Claim slots up to the window and publish them; returns how many."""
        k = spec.keys
        first, n = self.scripts.claim(keys=[k.meta, k.counters, k.pending],
                                      args=[self.clock.now_ms(), spec.window,
                                            spec.refeed_after_ms])
        first, n = int(first), int(n)
        if n:
            self.publish_slots(spec, range(first, first + n))
        return n

    def sweep(self, spec: RunSpec, max_slots: int = 1000) -> int:
        """Turn dead workers' reservations into spend; re-publish slots fed long ago that
        never finished. Returns how many slots were re-published."""
        k = spec.keys
        slots = self.scripts.sweep(
            keys=[k.meta, k.done, k.leases, k.budget, k.resv, k.counters, k.pending],
            args=[self.clock.now_ms(), spec.refeed_after_ms, max_slots],
        )
        if slots:
            self.publish_slots(spec, [int(s) for s in slots])
        return len(slots)


def resume_run(r: redis.Redis, settings: Settings, run_id: str, feeder: Feeder) -> int:
    """Reopen a stopped run with the current BUDGET_USD: skipped slots are done again, done
    slots stay done. Returns how many slots were published now (the window refills after)."""
    spec = runs.spec(r, run_id)
    k = spec.keys
    out = feeder.scripts.resume(
        keys=[k.meta, k.done, k.counters, k.pending, k.skipped, k.budget],
        args=[feeder.clock.now_ms(), spec.refeed_after_ms, settings.stop_line_micro,
              repr(settings.budget_usd)])
    if out == [-1]:
        raise ConfigError(f"run {run_id} is {runs.meta(r, run_id)['state']}: nothing to resume")
    slots = [int(s) for s in out]
    if slots:
        feeder.publish_slots(spec, slots)
    return len(slots) + feeder.feed(spec)


def start_run(r: redis.Redis, settings: Settings, total: int, feeder: Feeder, *,
              run_id: str | None = None, seed: int | None = None) -> RunSpec:
    """Write the run record and the first window of messages."""
    run_id = run_id or runs.new_run_id()
    if runs.exists(r, run_id):
        raise ConfigError(f"run {run_id} already exists; pick another --run-id")
    seed = seed if seed is not None else int.from_bytes(run_id.encode()[-8:], "big") % 2**31
    spec = build_spec(settings, run_id, total, seed)
    runs.create(r, spec, default_weights(), settings.budget_usd, settings.stop_line_micro,
                feeder.clock.now_ms())
    feeder.feed(spec)
    return spec


def retry_failed(r: redis.Redis, run_id: str, publish: Publish, clock: Clock = SYSTEM) -> int:
    """Re-feed the run's dead letters (failed or abandoned slots); returns how many."""
    k = RunKeys(run_id)
    pipe = r.pipeline(transaction=True)
    pipe.lrange(k.dead, 0, -1)
    pipe.delete(k.dead)
    letters = [json.loads(x) for x in pipe.execute()[0]]
    args: list[object] = [clock.now_ms(), runs.spec(r, run_id).refeed_after_ms]
    seen: set[int] = set()
    for d in letters:
        if d["slot"] not in seen:
            seen.add(d["slot"])
            args += [d["slot"], d["outcome"], d["category"]]
    if not seen:
        return 0
    out = Scripts(r).retry(keys=[k.meta, k.done, k.counters, k.pending], args=args)
    slots = [(int(out[i]), text(out[i + 1])) for i in range(0, len(out), 2)]
    if slots:
        publish(run_id, slots, 1)  # a handful of slots that failed before: one a message
    return len(slots)
