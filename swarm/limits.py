"""Flow control shared by every worker on every host, one Lua call per step:
RPM and TPM credit (GCRA, no burst), concurrency leases that expire, the shared 429
cooldown, and (with :mod:`swarm.budget`) the budget reservation."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from swarm.clock import SYSTEM, Clock
from swarm.keys import RunKeys
from swarm.redisconn import text
from swarm.runs import RunSpec
from swarm.scripts import Scripts

# The share of the account's RPM and TPM we aim at: requests are spaced evenly, and a 2 %
# margin keeps network jitter from ever putting one request too many in a provider's window.
RATE_HEADROOM = 0.98
BOOK_AHEAD_MS = 1000  # a caller may book its request slot this far ahead, then sleeps to it
MAX_WAIT_MS = 5000  # the longest a caller waits (sleeps, or blocks on a lease) between asks


def paced(spec: RunSpec) -> tuple[float, float]:
    """The RPM and TPM the scripts pace to."""
    return spec.rpm * RATE_HEADROOM, spec.tpm * RATE_HEADROOM


@dataclass(frozen=True)
class Verdict:
    verdict: str  # go | wait | stop | skip | done | busy | gone
    wait_ms: int
    reason: str


@dataclass(frozen=True)
class Settled:
    state: str
    finished: int
    cursor: int
    total: int
    duplicate: bool


class Gate:
    def __init__(self, r: redis.Redis, clock: Clock = SYSTEM) -> None:
        self.r = r
        self.clock = clock
        self.scripts = Scripts(r)

    def admit(self, spec: RunSpec, slot: int, est_tokens: int, reserve_micro: int,
              mode: str = "new") -> Verdict:
        """``mode``: new | retry | rebook, as admit.lua's header says."""
        rpm, tpm = paced(spec)
        v, wait, reason = self.scripts.admit(
            keys=spec.keys.admit_keys(),
            args=[self.clock.now_ms(), slot, est_tokens, reserve_micro, rpm, tpm,
                  spec.max_concurrent, spec.lease_ttl_ms, mode, BOOK_AHEAD_MS, MAX_WAIT_MS],
        )
        return Verdict(text(v), int(wait), text(reason))

    def settle(self, spec: RunSpec, slot: int, *, outcome: str, cost_micro: int,
               prompt_tokens: int, completion_tokens: int, unused_tokens: int, category: str,
               parsed: bool, revenue_cents: int, sample: str = "", call_ms: int = 0) -> Settled:
        state, finished, cursor, total, dup = self.scripts.settle(
            keys=spec.keys.settle_keys(),
            args=[self.clock.now_ms(), slot, outcome, cost_micro, prompt_tokens,
                  completion_tokens, max(0, unused_tokens), paced(spec)[1], category,
                  1 if parsed else 0, revenue_cents, sample, call_ms],
        )
        return Settled(text(state), int(finished), int(cursor), int(total), bool(dup))

    def charge_unanswered(self, spec: RunSpec, slot: int, category: str) -> int:
        """An attempt was sent and got no answer: its reservation becomes spend now (it may
        have been billed) and the retry's admission reserves again. Returns micro-USD."""
        k = spec.keys
        return int(self.scripts.charge(keys=[k.budget, k.resv, k.counters],
                                       args=[slot, category]))

    def cooldown(self, spec: RunSpec, wait_s: float) -> int:
        """Pause every worker of the run for ``wait_s``; returns the cooldown's end (ms)."""
        return int(self.scripts.cooldown(keys=[spec.keys.rate],
                                         args=[self.clock.now_ms(), int(wait_s * 1000)]))

    def await_lease(self, spec: RunSpec, timeout_s: float) -> bool:
        """Block (in Redis, not polling) until a lease is released (True) or ``timeout_s``
        passes (False). Leases freed without a settle (expired, or a stop) are found then."""
        return self.r.blpop([spec.keys.freed], timeout=timeout_s) is not None

    def cooling(self, spec: RunSpec) -> bool:
        """Whether a 429's cooldown holds the run now."""
        until = self.r.hget(spec.keys.rate, "cooldown_until")
        return until is not None and float(until) > self.clock.now_ms()

    def stop(self, run_id: str, state: str) -> bool:
        k = RunKeys(run_id)
        return bool(self.scripts.stop(keys=[k.meta, k.counters], args=[self.clock.now_ms(), state]))
