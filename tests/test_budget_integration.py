"""The budget with real worker processes and the simulator billing at known prices: the
provider's bill never passes BUDGET_USD, our ledger equals it, and a worker killed with
SIGKILL mid-call hides no money."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from swarm.embedded import RedisServer
from swarm.sim.limits import Faults
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import Workers, base_env, swarm
from tests.test_integration import KEY

pytestmark = pytest.mark.integration


def run_on_budget(r: redis.Redis, redis_server: RedisServer, tmp_path: Path, budget: float,
                  n: int, config: SimConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """`swarm run -n N` with 3 workers and 12 concurrent against the simulator: the run's
    snapshot and the simulator's bill."""
    with SimServer(config) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="12",
                       BUDGET_USD=str(budget))
        done = swarm(["run", "-n", str(n), "--workers", "3"], env, tmp_path)
        bill = httpx.get(sim.url + "/_stats").json()
    assert done.returncode == 0, done.stderr[-2000:]
    return snapshot(r, r.zrevrange("swarm:runs", 0, 0)[0].decode()), bill


def test_run_stops_at_the_line_and_the_ledger_equals_the_bill(
        real_redis: redis.Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    budget = 0.065  # about a third of 600 tasks at ~$0.00031 each
    st, bill = run_on_budget(real_redis, redis_server, tmp_path, budget, 600,
                             SimConfig(latency_ms=30, jitter_ms=30))
    line = round(budget * 0.95 * 1e6)
    assert st["state"] == "budget_exhausted"
    assert bill["billed_micro"] <= budget * 1e6  # the provider's bill: never over
    ledger = round(st["cost_kimi_usd"] * 1e6)
    assert abs(ledger - bill["billed_micro"]) <= bill["requests"]  # within 1 micro-USD a call
    assert ledger >= 0.85 * line  # and it did not stop early
    assert st["completed"] + st["failed"] + st["skipped"] == 600
    assert 100 < st["completed"] < 300
    assert st["reserved_usd"] == 0


def test_billed_drops_never_take_the_ledger_past_its_line(
        real_redis: redis.Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    """A third of the requests are billed and their answers lost: every such attempt is
    charged at worst case and its retry reserves again, so the ledger stays under its line
    and over the provider's bill."""
    budget = 0.05
    faults = Faults(drop_rate=0.35, drop_billed=True)
    st, bill = run_on_budget(real_redis, redis_server, tmp_path, budget, 400,
                             SimConfig(latency_ms=30, jitter_ms=30, seed=3, faults=faults))
    spent = int(real_redis.hget(f"swarm:{{{st['run_id']}}}:budget", "spent"))
    assert st["state"] == "budget_exhausted" and st["unanswered"] > 10
    assert spent <= round(budget * 0.95 * 1e6)  # the ledger: never past its line
    assert spent >= bill["billed_micro"]  # and never below what the provider billed
    assert st["completed"] + st["failed"] + st["skipped"] == 400
    assert st["reserved_usd"] == 0


def test_worker_killed_mid_call_never_hides_money(
        real_redis: redis.Redis, redis_server: RedisServer, tmp_path: Path,
        workers: Workers) -> None:
    budget = 0.08
    with SimServer(SimConfig(latency_ms=300, jitter_ms=100)) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="12",
                       WORKER_THREADS="4", BUDGET_USD=str(budget), LEASE_TTL_S="10",
                       REFEED_AFTER_S="3", SWEEP_EVERY_S="1", ORCHESTRATE_EVERY_S="600")
        victim = workers.start(env, tmp_path, count=3, threads=4)[0]
        queued = swarm(["enqueue", "-n", "400", "--run-id", "kill9"], env, tmp_path)
        assert queued.returncode == 0, queued.stderr
        deadline = time.monotonic() + 60
        while snapshot(real_redis, "kill9")["completed"] < 40:
            assert time.monotonic() < deadline, "the workers made no progress"
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)  # mid-call: 4 threads were busy
        victim.wait(10)
        deadline = time.monotonic() + 120
        while True:
            st = snapshot(real_redis, "kill9")
            if st["completed"] + st["failed"] + st["skipped"] == 400:
                break
            assert time.monotonic() < deadline, f"not every task accounted for: {st}"
            time.sleep(0.5)
        bill = httpx.get(sim.url + "/_stats").json()
    counters = {k.decode(): int(v) for k, v in real_redis.hgetall("swarm:{kill9}:cnt").items()}
    spent = round(st["cost_usd"] * 1e6)
    assert bill["billed_micro"] <= budget * 1e6  # never over, even with a dead worker
    assert spent >= bill["billed_micro"]  # the dead worker's calls are counted, at worst case
    assert spent <= budget * 0.95 * 1e6
    assert counters.get("lost_reservations", 0) >= 1
    assert st["reserved_usd"] == 0 and st["in_flight"] == 0
    assert st["state"] in ("budget_exhausted", "done")
