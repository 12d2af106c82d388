"""One agent task, start to end: admit → call → write → settle → feed.

Celery's task (``workers/tasks.py``) is a thin wrapper around :meth:`Agent.run`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from swarm import runs
from swarm.budget import worst_case_micro
from swarm.catalog import BY_NAME, estimate_prompt_tokens, messages_for
from swarm.clock import SYSTEM, Clock
from swarm.errors import (
    NetworkError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    StatusError,
    redact,
)
from swarm.limits import MAX_WAIT_MS, Gate, Verdict
from swarm.outputs import OutputWriter, parse_answer, write_stats_file
from swarm.producer import Feeder
from swarm.providers.http import is_retryable, wait_for
from swarm.providers.kimi import Completion, KimiClient
from swarm.redisconn import text
from swarm.runs import RunSpec
from swarm.stats import snapshot

log = logging.getLogger("swarm.agent")

MAX_WAIT_S = MAX_WAIT_MS / 1000
# A blocked wait for a lease stays well under redis-py's socket timeout (5 s), which would
# otherwise end it with a TimeoutError that fails the task.
LEASE_WAIT_S = 2.0


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | failed | skipped | done | busy | gone
    reason: str = ""


class Agent:
    def __init__(self, r: redis.Redis, kimi: KimiClient, writer: OutputWriter, feeder: Feeder,
                 max_attempts: int, clock: Clock = SYSTEM) -> None:
        self.r = r
        self.kimi = kimi
        self.writer = writer
        self.feeder = feeder
        self.gate = Gate(r, clock)
        self.clock = clock
        self.max_attempts = max_attempts
        self._specs: dict[str, RunSpec] = {}

    def spec(self, run_id: str) -> RunSpec | None:
        spec = self._specs.get(run_id)
        if spec is None and runs.exists(self.r, run_id):
            spec = self._specs[run_id] = runs.spec(self.r, run_id)
        return spec

    def _wait(self, spec: RunSpec, v: Verdict) -> None:
        if v.reason == "concurrency":  # until a lease is released: no polling
            self.gate.await_lease(spec, LEASE_WAIT_S)
            return
        base = min(MAX_WAIT_S, v.wait_ms / 1000)
        self.clock.sleep(base + random.uniform(0, 0.2 * base + 0.01))

    def _admit(self, spec: RunSpec, slot: int, est: int, reserve: int, mode: str) -> Verdict:
        """Admission, waiting as told; returns the first verdict that is not a wait. Once
        this caller holds a lease (any mode but "new"), a verdict other than go raises
        _Abandon: the run stopped, and the slot must be settled as skipped.

        A caller that sleeps to a booked request slot looks once more before it calls: a 429
        that came meanwhile voids the slot (the provider would refuse it too), and the caller
        books again after the cooldown, keeping its lease and reservation."""
        while True:
            v = self.gate.admit(spec, slot, est, reserve, mode=mode)
            if v.verdict == "wait":
                self._wait(spec, v)
            elif v.verdict == "stop":
                self.gate.stop(spec.run_id, v.reason)
            elif v.verdict == "go" and v.wait_ms > 0:
                self.clock.sleep(v.wait_ms / 1000)  # to the booked request slot
                if not self.gate.cooling(spec):
                    return v
                mode = "rebook"
            elif mode != "new" and v.verdict != "go":
                raise _Abandon(v.reason)
            else:
                return v

    def run(self, run_id: str, slot: int, category: str) -> Outcome:
        spec = self.spec(run_id)
        task = BY_NAME.get(category)
        if spec is None or task is None:
            return Outcome("gone", "unknown run or category")
        messages = messages_for(task, spec.seed, slot)
        est_prompt = estimate_prompt_tokens(messages)
        est_tokens = est_prompt + spec.max_tokens
        reserve = worst_case_micro(spec.price, est_prompt, spec.max_tokens)

        attempts = 0
        lost = 0  # attempts sent with no answer: each charged at its worst case when lost
        call_ms = 0  # the answered attempt's own latency
        started = time.monotonic()

        def call() -> Completion:
            nonlocal attempts, lost, call_ms
            attempts += 1
            if attempts > 1:
                self._admit(spec, slot, est_tokens, reserve, "retry")
            sent = time.monotonic()
            try:
                answer = self.kimi.chat(spec.model, messages, spec.max_tokens, spec.temperature)
            except NetworkError as exc:
                if exc.sent:  # it may have been billed: charged now, the retry reserves again
                    lost += 1
                    self.gate.charge_unanswered(spec, slot, task.name)
                raise
            call_ms = round((time.monotonic() - sent) * 1000)
            return answer

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            if isinstance(exc, StatusError) and exc.status == 429:
                self.gate.cooldown(spec, wait_for(exc, rs.attempt_number))
            log.info("retry run=%s slot=%s attempt=%s after %s", run_id, slot,
                     rs.attempt_number, redact(str(exc)))

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            retry=retry_if_exception(is_retryable),
            wait=lambda rs: 0 if _is_429(rs) else wait_for(_exc(rs), rs.attempt_number),
            before_sleep=before_sleep,
            sleep=self.clock.sleep,
            reraise=True,
        )
        try:
            v = self._admit(spec, slot, est_tokens, reserve, "new")
            if v.verdict != "go":
                if v.verdict == "skip":
                    self._after(spec, self._finished_state(spec))
                return Outcome("skipped" if v.verdict == "skip" else v.verdict, v.reason)
            started = time.monotonic()
            completion = retrying(call)
        except _Abandon as exc:
            # The run stopped while this task waited to call: only lost attempts may be billed.
            return self._finish(spec, slot, task.name, attempts, started, None,
                                error=f"abandoned: {exc}", charged=lost * reserve,
                                est_tokens=est_tokens, outcome="skipped")
        except ProviderError as exc:
            if isinstance(exc, QuotaExhausted):
                self.gate.stop(run_id, "quota_exhausted")
            return self._finish(spec, slot, task.name, attempts, started, None,
                                error=str(exc), charged=lost * reserve,
                                est_tokens=est_tokens, reason=exc.reason)
        cost = spec.price.cost_micro(completion.prompt_tokens, completion.completion_tokens)
        return self._finish(spec, slot, task.name, attempts, started, completion, error=None,
                            cost=cost, charged=lost * reserve, est_tokens=est_tokens,
                            call_ms=call_ms)

    def _finish(self, spec: RunSpec, slot: int, category: str, attempts: int, started: float,
                completion: Completion | None, *, error: str | None, est_tokens: int,
                cost: int = 0, charged: int = 0, outcome: str | None = None, reason: str = "",
                call_ms: int = 0) -> Outcome:
        """Write the output line (or the dead letter) and settle. ``cost``: the answer's, to
        settle; ``charged``: unanswered attempts, already on the ledger."""
        task = BY_NAME[category]
        parsed = parse_answer(completion.text, task) if completion else None
        ptok = completion.prompt_tokens if completion else 0
        ctok = completion.completion_tokens if completion else 0
        status = outcome or ("completed" if completion else "failed")
        revenue_cents = round(task.value_eur * spec.revenue_conversion * 100) if parsed else 0
        if completion is not None:
            self.writer.write(spec.run_id, task.folder, {
                "task_id": f"{spec.run_id}:{slot}",
                "run_id": spec.run_id,
                "index": slot,
                "category": category,
                "model": completion.model,
                "prompt_tokens": ptok,
                "completion_tokens": ctok,
                "cost_usd": (cost + charged) / 1e6,
                "latency_ms": round((time.monotonic() - started) * 1000),
                "attempts": attempts,
                "finish_reason": completion.finish_reason,
                "parsed": parsed,
                "raw": completion.text,
                "finished_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            })
        else:
            self.r.lpush(spec.keys.dead, json.dumps({
                "slot": slot, "category": category, "outcome": status,
                "reason": reason or status,
                "error": redact(error or ""), "attempts": attempts,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }))
        sample = ""
        if parsed is not None and completion is not None:
            sample = json.dumps({"category": category, "answer": completion.text[:400]})
        settled = self.gate.settle(
            spec, slot, outcome=status, cost_micro=cost, prompt_tokens=ptok,
            completion_tokens=ctok, unused_tokens=est_tokens - ptok - ctok, category=category,
            parsed=parsed is not None, revenue_cents=revenue_cents, sample=sample,
            call_ms=call_ms,
        )
        if settled.duplicate:
            log.warning("duplicate finish run=%s slot=%s (counted)", spec.run_id, slot)
        self._after(spec, settled.state, settled.finished, settled.cursor, settled.total)
        log.debug("settled run=%s slot=%s %s cost=%s", spec.run_id, slot, status, cost)
        return Outcome(status, reason)

    def _finished_state(self, spec: RunSpec) -> str:
        return text(self.r.hget(spec.keys.meta, "state"))

    def _after(self, spec: RunSpec, state: str, finished: int = -1, cursor: int = 0,
               total: int = 0) -> None:
        """Top the window up; on the run's last slot, write the final stats file."""
        if state == "running" and cursor - finished < spec.window // 2 and cursor < total:
            self.feeder.feed(spec)
        if finished == total or (finished < 0 and _all_finished(self.r, spec)):
            write_stats_file(self.writer.dir, spec.run_id, snapshot(self.r, spec.run_id))


class _Abandon(Exception):
    pass


def _exc(rs: RetryCallState) -> BaseException:
    assert rs.outcome is not None
    exc = rs.outcome.exception()
    assert exc is not None
    return exc


def _is_429(rs: RetryCallState) -> bool:
    exc = _exc(rs)
    return isinstance(exc, RateLimited) or (isinstance(exc, StatusError) and exc.status == 429)


def _all_finished(r: redis.Redis, spec: RunSpec) -> bool:
    c = r.hmget(spec.keys.counters, "completed", "failed", "skipped")
    return sum(int(x or 0) for x in c) >= spec.total
