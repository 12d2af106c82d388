"""The Redis key layout. Every key of a run shares the hash tag ``{run_id}`` so each script's
keys live in one Cluster slot. Scripts get keys only through KEYS, in the orders below."""

from __future__ import annotations

from dataclasses import dataclass

RUNS = "swarm:runs"  # zset: run_id -> created_ms (the latest run is the highest)
CLAUDE_HOLDERS = "swarm:claude:holders"  # zset: Claude calls in flight (MAX_CLAUDE_AGENTS)
AGENT_QUEUE = "swarm"  # Celery queue of agent tasks, consumed by every worker
BEAT_QUEUE = "swarm.beat"  # reviews and sweeps, consumed only by the beat's own worker


@dataclass(frozen=True)
class RunKeys:
    run_id: str

    def _k(self, name: str) -> str:
        return f"swarm:{{{self.run_id}}}:{name}"

    @property
    def meta(self) -> str:  # hash: state, total, cursor, seed, model, weights, prices, ...
        return self._k("meta")

    @property
    def done(self) -> str:  # bitmap: bit i set once slot i is completed, failed or skipped
        return self._k("done")

    @property
    def leases(self) -> str:  # zset: slot -> lease expiry (ms); one lease per call in flight
        return self._k("leases")

    @property
    def freed(self) -> str:  # list: a token per lease released, for callers waiting on one
        return self._k("freed")

    @property
    def rate(self) -> str:  # hash: rpm_tat, tpm_tat, wait_tat, cooldown_until (ms)
        return self._k("rate")

    @property
    def budget(self) -> str:  # hash: line, spent, reserved, spent_claude (micro-USD)
        return self._k("budget")

    @property
    def resv(self) -> str:  # hash: slot -> reserved micro-USD
        return self._k("resv")

    @property
    def counters(self) -> str:  # hash: completed, failed, skipped, tokens, per category, ...
        return self._k("cnt")

    @property
    def pending(self) -> str:  # zset: slot fed to the queue -> re-feed deadline (ms)
        return self._k("pending")

    @property
    def buckets(self) -> str:  # hash: 10-second bucket -> tasks finished in it
        return self._k("buckets")

    @property
    def samples(self) -> str:  # list: recent answers (truncated) for the orchestrator
        return self._k("samples")

    @property
    def dead(self) -> str:  # list: dead letters of failed tasks, JSON
        return self._k("dead")

    @property
    def skipped(self) -> str:  # set: slots fed, then skipped because the run had stopped
        return self._k("skipped")

    @property
    def orchestrator_lock(self) -> str:  # held while a review runs
        return self._k("orch_lock")

    @property
    def orchestrator_cadence(self) -> str:  # set by each review for most of the interval
        return self._k("orch_cadence")

    def admit_keys(self) -> list[str]:
        return [self.meta, self.done, self.leases, self.rate, self.budget, self.resv,
                self.counters, self.pending, self.skipped]

    def settle_keys(self) -> list[str]:
        return [self.meta, self.done, self.leases, self.rate, self.budget, self.resv,
                self.counters, self.pending, self.buckets, self.samples, self.skipped,
                self.freed]
