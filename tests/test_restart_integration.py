"""Redis restarted in the middle of a run (SIGTERM: it writes its AOF, then comes back on the
same port with the same data): the workers ride the outage out, so every task is accounted
for, each is paid for once, and the ledger equals the provider's bill."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from swarm.embedded import RedisServer
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import Workers, base_env, swarm
from tests.test_integration import KEY

pytestmark = pytest.mark.integration

N = 500


def wait_for(check, what: str, timeout_s: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def test_a_redis_restart_mid_run_loses_nothing_and_pays_once(tmp_path: Path,
                                                             workers: Workers) -> None:
    server = RedisServer(tmp_path / "redis", persist=True).start()
    try:
        with SimServer(SimConfig(latency_ms=200, jitter_ms=100)) as sim:
            # a short lease and re-feed: were an in-flight call's settle lost, the sweep would
            # feed its slot again within this test, and the second call would show in the bill;
            # the lease still outlives a call held through the outage and the retries' backoff
            # (about 8 s) on a loaded machine
            env = base_env(tmp_path, REDIS_URL=server.url, MOONSHOT_API_KEY=KEY,
                           KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="12",
                           LEASE_TTL_S="20", REFEED_AFTER_S="25", SWEEP_EVERY_S="1",
                           ORCHESTRATE_EVERY_S="600")
            workers.start(env, tmp_path, count=2, threads=6)
            queued = swarm(["enqueue", "-n", str(N), "--run-id", "restart"], env, tmp_path)
            assert queued.returncode == 0, queued.stderr
            r = redis.Redis.from_url(server.url)
            wait_for(lambda: snapshot(r, "restart")["completed"] >= 100, "no progress", 60)
            assert snapshot(r, "restart")["in_flight"] > 0  # calls are under way
            r.close()
            server.stop()
            time.sleep(3)  # every worker thread meets the outage
            server.start()
            r = redis.Redis.from_url(server.url)

            def finished() -> dict | None:  # type: ignore[type-arg]
                st = snapshot(r, "restart")
                return st if st["completed"] + st["failed"] + st["skipped"] == N else None

            # a slot whose settle was lost finishes only once re-fed and paid for again
            st = wait_for(finished, "not every task accounted for", 90)
            bill = httpx.get(sim.url + "/_stats").json()
            r.close()
    finally:
        server.stop()
    assert (st["state"], st["completed"], st["failed"], st["skipped"]) == ("done", N, 0, 0)
    assert bill["requests"] == N  # one paid call per task: no settle was lost, nothing re-fed
    assert (st["refed"], st["lost_reservations"], st["duplicates"]) == (0, 0, 0)
    assert round(st["cost_kimi_usd"] * 1e6) == bill["billed_micro"]
    assert st["reserved_usd"] == 0 and st["in_flight"] == 0
