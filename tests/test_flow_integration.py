"""Global flow control with real worker processes against the simulator enforcing the
account's limits: the cluster uses the account's rate without a 429 storm. The simulator's
window is 12 s instead of Moonshot's 60 s so that a test spans more than one; RPM_LIMIT is
the same rate per minute (120 per 12 s = 600 per minute). A shorter window leaves less room
for scheduling jitter than a real one: the 2 % headroom is 240 ms of 12 s, 1.2 s of 60 s.
(With 6 s, 120 ms, a loaded 2-core machine once let 61 requests into a window of 60.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from swarm.embedded import RedisServer
from swarm.sim.limits import Limits
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import base_env, swarm
from tests.test_integration import KEY

pytestmark = pytest.mark.integration

WINDOW_S, PER_WINDOW, CONCURRENCY = 12.0, 120, 8
RPM = int(PER_WINDOW * 60 / WINDOW_S)  # 600
LATENCY_S = 0.2


def run_against_limits(redis_server: RedisServer, tmp_path: Path, n: int, our_rpm: int):  # type: ignore[no-untyped-def]
    limits = Limits(rpm=PER_WINDOW, concurrency=CONCURRENCY, window_s=WINDOW_S)
    with SimServer(SimConfig(latency_ms=LATENCY_S * 1000, jitter_ms=0, limits=limits)) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT=str(CONCURRENCY),
                       RPM_LIMIT=str(our_rpm), WORKER_THREADS="8")
        done = swarm(["run", "-n", str(n), "--workers", "3"], env, tmp_path, timeout=180)
        return done, httpx.get(sim.url + "/_stats").json()


def test_limits_equal_full_rate_and_no_429_storm(real_redis: redis.Redis,
                                                 redis_server: RedisServer,
                                                 tmp_path: Path) -> None:
    done, bill = run_against_limits(redis_server, tmp_path, 240, RPM)
    assert done.returncode == 0, done.stderr[-2000:]
    st = snapshot(real_redis, real_redis.zrevrange("swarm:runs", 0, 0)[0].decode())
    assert st["completed"] == 240
    assert bill["count_429"] <= 0.005 * bill["requests"]
    assert bill["peak_in_window"] <= PER_WINDOW  # peak RPM <= R
    assert bill["max_in_flight"] <= CONCURRENCY
    bound = min(RPM / 60, CONCURRENCY / LATENCY_S)  # 10 requests/s
    assert bill["ok_per_s"] >= 0.95 * bound


def test_rpm_set_five_times_too_high_the_cooldown_ends_the_storm(real_redis: redis.Redis,
                                                                 redis_server: RedisServer,
                                                                 tmp_path: Path) -> None:
    done, bill = run_against_limits(redis_server, tmp_path, 150, 5 * RPM)
    assert done.returncode == 0, done.stderr[-2000:]
    st = snapshot(real_redis, real_redis.zrevrange("swarm:runs", 0, 0)[0].decode())
    assert (st["completed"], st["failed"]) == (150, 0)  # every task completes
    assert bill["count_429"] <= 0.10 * bill["requests"]
    assert st["cooldowns"] >= 1  # the shared cooldown is what ended each burst
