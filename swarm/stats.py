"""Counters in Redis → one snapshot (rate, ETA, cost, ROI) for the CLI, logs and metrics."""

from __future__ import annotations

import json
from typing import Any

import redis

from swarm import runs
from swarm.catalog import NAMES
from swarm.clock import SYSTEM, Clock
from swarm.keys import RunKeys

BUCKET_MS = 10_000
RATE_WINDOW_MS = 60_000


def _ints(h: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in h.items()}


def recent_rate(buckets: dict[str, int], now_ms: int, since_ms: int) -> float | None:
    """Tasks per second over the last minute (10-second buckets), from ``since_ms`` at most."""
    start = max(since_ms, now_ms - RATE_WINDOW_MS)
    first = start // BUCKET_MS
    span_ms = now_ms - first * BUCKET_MS
    if span_ms <= 0:
        return None
    count = sum(n for b, n in buckets.items() if int(b) >= first)
    return count / (span_ms / 1000)


def snapshot(r: redis.Redis, run_id: str, clock: Clock = SYSTEM) -> dict[str, Any]:
    k = RunKeys(run_id)
    now = clock.now_ms()
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(k.meta)
    pipe.hgetall(k.counters)
    pipe.hgetall(k.budget)
    pipe.zcount(k.leases, now, "+inf")
    pipe.hgetall(k.buckets)
    pipe.hmget(k.rate, "cooldowns", "r429", "cooldown_ms")
    meta_raw, cnt_raw, budget_raw, in_flight, buckets_raw, rate = pipe.execute()
    cooldowns, r429, cooldown_ms = (int(x or 0) for x in rate)
    meta = {a.decode(): b.decode() for a, b in meta_raw.items()}
    c, b = _ints(cnt_raw), _ints(budget_raw)
    total = int(meta["total"])
    completed, failed, skipped = c.get("completed", 0), c.get("failed", 0), c.get("skipped", 0)
    finished = completed + failed + skipped
    created = int(meta["created_ms"])
    end = int(meta["finished_ms"]) if "finished_ms" in meta else now
    elapsed_s = max(0.0, (end - created) / 1000)
    if "finished_ms" in meta or elapsed_s < BUCKET_MS / 1000:
        rate = (completed + failed) / elapsed_s if elapsed_s > 0 else 0.0
    else:
        rate = recent_rate(_ints(buckets_raw), now, created) or 0.0
    remaining = total - finished
    state = meta["state"]
    eta = None if state in runs.FINAL_STATES else (remaining / rate if rate > 0 else None)
    cost_kimi = c.get("cost_kimi_micro", 0) / 1e6
    cost_claude = c.get("cost_claude_micro", 0) / 1e6
    cost = b.get("spent", 0) / 1e6
    revenue = c.get("revenue_cents", 0) / 100
    return {
        "run_id": run_id,
        "state": state,
        "total": total,
        "completed": completed,
        "failed": failed,
        "skipped": skipped,
        "in_flight": int(in_flight),
        "queued": max(0, int(meta.get("cursor", 0)) - finished - int(in_flight)),
        "parsed": c.get("parsed", 0),
        "tokens": c.get("prompt_tokens", 0) + c.get("completion_tokens", 0),
        "prompt_tokens": c.get("prompt_tokens", 0),
        "completion_tokens": c.get("completion_tokens", 0),
        "cost_usd": round(cost, 6),
        "cost_kimi_usd": round(cost_kimi, 6),
        "cost_claude_usd": round(cost_claude, 6),
        "reserved_usd": round(b.get("reserved", 0) / 1e6, 6),
        "budget_usd": float(meta.get("budget_usd", 0)),
        "stop_line_usd": round(b.get("line", 0) / 1e6, 6),
        "est_revenue": round(revenue, 2),
        "roi": round(revenue / cost, 2) if cost > 0 else None,
        "rate_per_s": round(rate, 3),
        "elapsed_s": round(elapsed_s, 1),
        "eta_s": round(eta, 1) if eta is not None else None,
        "orchestrations": c.get("orchestrations", 0),
        "requests": c.get("requests", 0),
        "duplicates": c.get("duplicates", 0),
        "cooldowns": cooldowns,
        "rate_limited": r429,
        "cooldown_s": round(cooldown_ms / 1000, 1),
        "admit_waits": {key[5:]: n for key, n in c.items() if key.startswith("wait:")},
        "lost_reservations": c.get("lost_reservations", 0),
        "unanswered": c.get("lost_attempts", 0),  # sent, no answer: charged at worst case
        "refed": c.get("refed", 0),
        "model": meta.get("model", ""),
        "avg_call_s": round(c.get("call_ms", 0) / completed / 1000, 3) if completed else None,
        "avg_prompt_tokens": round(c.get("prompt_tokens", 0) / max(1, completed + failed), 1),
        "avg_completion_tokens": round(c.get("completion_tokens", 0) / completed, 1)
        if completed else None,
        "by_category": {n: c.get(f"c:{n}:completed", 0) for n in NAMES},
        "weights": json.loads(meta.get("weights", "{}")),
    }
