"""The run record in Redis: what every worker on every host reads to do a run's tasks."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from swarm.keys import RUNS, RunKeys
from swarm.prices import Price
from swarm.redisconn import text

FINAL_STATES = ("done", "stopped", "budget_exhausted", "quota_exhausted")


@dataclass(frozen=True)
class RunSpec:
    """What does not change during a run (weights do: they are read fresh when feeding)."""

    run_id: str
    total: int
    seed: int
    model: str
    max_tokens: int
    temperature: float
    price: Price
    rpm: int
    tpm: int
    max_concurrent: int
    window: int
    lease_ttl_ms: int
    revenue_conversion: float
    refeed_after_ms: int = 900_000
    slots_per_message: int = 0  # 0: auto, from the run's measured call latency

    @property
    def keys(self) -> RunKeys:
        return RunKeys(self.run_id)

    def to_hash(self) -> dict[str, str]:
        return {
            "run_id": self.run_id, "total": str(self.total), "seed": str(self.seed),
            "model": self.model, "max_tokens": str(self.max_tokens),
            "temperature": repr(self.temperature), "price_in": repr(self.price.input),
            "price_out": repr(self.price.output), "price_source": self.price.source,
            "rpm": str(self.rpm), "tpm": str(self.tpm),
            "max_concurrent": str(self.max_concurrent), "window": str(self.window),
            "lease_ttl_ms": str(self.lease_ttl_ms),
            "revenue_conversion": repr(self.revenue_conversion),
            "refeed_after_ms": str(self.refeed_after_ms),
            "slots_per_message": str(self.slots_per_message),
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> RunSpec:
        return cls(
            run_id=h["run_id"], total=int(h["total"]), seed=int(h["seed"]), model=h["model"],
            max_tokens=int(h["max_tokens"]), temperature=float(h["temperature"]),
            price=Price(float(h["price_in"]), float(h["price_out"]), h.get("price_source", "")),
            rpm=int(h["rpm"]), tpm=int(h["tpm"]), max_concurrent=int(h["max_concurrent"]),
            window=int(h["window"]), lease_ttl_ms=int(h["lease_ttl_ms"]),
            revenue_conversion=float(h["revenue_conversion"]),
            refeed_after_ms=int(h.get("refeed_after_ms", 900_000)),
            slots_per_message=int(h.get("slots_per_message", 0)),
        )


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def create(r: redis.Redis, spec: RunSpec, weights: dict[str, float], budget_usd: float,
           line_micro: int, now_ms: int) -> None:
    k = spec.keys
    pipe = r.pipeline(transaction=True)
    record: dict[str, str] = {**spec.to_hash(), "state": "running", "cursor": "0",
                              "created_ms": str(now_ms), "weights": json.dumps(weights),
                              "budget_usd": repr(budget_usd)}
    pipe.hset(k.meta, mapping=record)  # type: ignore[arg-type]
    pipe.hset(k.budget, mapping={"line": str(line_micro), "spent": "0", "reserved": "0"})
    pipe.zadd(RUNS, {spec.run_id: now_ms})
    pipe.execute()


def exists(r: redis.Redis, run_id: str) -> bool:
    return bool(r.exists(RunKeys(run_id).meta))


def latest(r: redis.Redis) -> str | None:
    ids = r.zrevrange(RUNS, 0, 0)
    return text(ids[0]) if ids else None


def meta(r: redis.Redis, run_id: str) -> dict[str, str]:
    return {text(k): text(v) for k, v in r.hgetall(RunKeys(run_id).meta).items()}


def spec(r: redis.Redis, run_id: str) -> RunSpec:
    return RunSpec.from_hash(meta(r, run_id))


def weights(r: redis.Redis, run_id: str) -> dict[str, float]:
    raw = r.hget(RunKeys(run_id).meta, "weights")
    return {str(k): float(v) for k, v in json.loads(raw or "{}").items()}


def set_weights(r: redis.Redis, run_id: str, new: dict[str, Any]) -> None:
    r.hset(RunKeys(run_id).meta, "weights", json.dumps(new))
