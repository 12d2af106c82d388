"""The hard budget with real workers: runs of 600 tasks whose budget affords about a third,
3 worker processes, the simulator billing at the price table. Two scenarios: every request
answered; and 35 % of requests billed with their answers lost (a dropped connection after
the provider did the work), the worst case for a ledger. Prints the provider's bill against
the budget (overshoot must be <= 0), our ledger against its stop line and against the bill,
and how close to the stop line the run stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarm.embedded import RedisServer  # noqa: E402
from swarm.sim.limits import Faults  # noqa: E402
from swarm.sim.server import SimConfig, SimServer  # noqa: E402
from swarm.stats import snapshot  # noqa: E402

N, BUDGET, RATIO = 600, 0.065, 0.95
SCENARIOS = {"answered": Faults(), "billed drops 35%": Faults(drop_rate=0.35, drop_billed=True)}


def run(name: str, faults: Faults) -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "r", persist=False) as rs, \
            SimServer(SimConfig(latency_ms=30, jitter_ms=30, faults=faults)) as sim:
        env = dict(os.environ, REDIS_URL=rs.url, MOONSHOT_API_KEY="sk-bench-not-a-key",
                   KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="12", BUDGET_USD=str(BUDGET),
                   OUTPUT_DIR=str(Path(tmp) / "out"), STATE_DIR=str(Path(tmp) / "state"),
                   PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "swarm", "run", "-n", str(N), "--workers",
                               "3"], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"swarm run failed: {done.stderr[-500:]}")
        bill = httpx.get(sim.url + "/_stats").json()
        r = redis.Redis.from_url(rs.url)
        st = snapshot(r, r.zrevrange("swarm:runs", 0, 0)[0].decode())
    billed = bill["billed_micro"]
    ledger = round(st["cost_kimi_usd"] * 1e6)
    line = BUDGET * RATIO * 1e6
    print(f"[{name}] budget ${BUDGET} (stop line ${line / 1e6:.6f}); state {st['state']}; "
          f"completed {st['completed']} failed {st['failed']} skipped {st['skipped']} of {N}; "
          f"unanswered attempts {st['unanswered']}")
    print(f"[{name}] provider billed ${billed / 1e6:.6f} for {bill['requests']} requests; "
          f"overshoot ${(billed - BUDGET * 1e6) / 1e6:+.6f} (must be <= 0)")
    print(f"[{name}] ledger ${ledger / 1e6:.6f} = {ledger / line:.1%} of the stop line "
          f"(must be <= 100%); ledger - bill = {ledger - billed} micro-USD (must be >= 0)")


def main() -> None:
    for name, faults in SCENARIOS.items():
        run(name, faults)


if __name__ == "__main__":
    main()
