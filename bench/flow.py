"""Flow control under the provider's limits: Swarm (3 worker processes sharing one limiter)
against a baseline written from the seed's design (one asyncio process, a semaphore of C,
lock-step batches of C with a 0.1 s pause, three attempts, 429 -> sleep 2^attempt + U(0,1),
other errors retried at once, no shared limiter).

A third run gives Swarm an RPM_LIMIT 20 % above the provider's real one (a shared key, or a
limit misread), so the provider's 429s and their shared cooldown hold it back at each window.

All face the same simulator: PER_WINDOW requests per WINDOW_S seconds (the rate of RPM
requests a minute, on a shorter window so the bench takes about a minute), C calls at once,
LATENCY_S per call. Prints achieved throughput as a fraction of the limit and the 429 count.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarm.catalog import CATALOG, messages_for  # noqa: E402
from swarm.embedded import RedisServer  # noqa: E402
from swarm.sim.limits import Limits  # noqa: E402
from swarm.sim.server import SimConfig, SimServer  # noqa: E402

N = int(os.environ.get("BENCH_FLOW_N", "300"))
WINDOW_S, PER_WINDOW, C, LATENCY_S = 6.0, 60, 20, 0.5
RPM = int(PER_WINDOW * 60 / WINDOW_S)
BOUND = min(RPM / 60, C / LATENCY_S)


def simulator() -> SimServer:
    limits = Limits(rpm=PER_WINDOW, concurrency=C, window_s=WINDOW_S)
    return SimServer(SimConfig(latency_ms=LATENCY_S * 1000, jitter_ms=0, limits=limits))


def report(name: str, stats: dict, wall: float, completed: int) -> None:  # type: ignore[type-arg]
    rate = stats["ok_per_s"] or 0.0
    print(f"{name:9} completed {completed:4}/{N}  requests {stats['requests']:5}  "
          f"429s {stats['count_429']:5} ({stats['count_429'] / max(1, stats['requests']):6.1%})  "
          f"throughput {rate:5.2f}/s = {rate / BOUND:6.1%} of the limit  "
          f"peak {stats['peak_rpm']:.0f} RPM (limit {RPM})  max in flight "
          f"{stats['max_in_flight']} (limit {C})  wall {wall:.1f} s")


def run_swarm(name: str, rpm_setting: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "r", persist=False) as rs, \
            simulator() as sim:
        env = dict(os.environ, REDIS_URL=rs.url, MOONSHOT_API_KEY="sk-bench-not-a-key",
                   KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT=str(C), RPM_LIMIT=str(rpm_setting),
                   OUTPUT_DIR=str(Path(tmp) / "out"), STATE_DIR=str(Path(tmp) / "state"),
                   PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "swarm", "run", "-n", str(N), "--workers",
                               "3"], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"swarm run failed: {done.stderr[-500:]}")
        stats = httpx.get(sim.url + "/_stats").json()
    report(name, stats, wall, stats["by_status"].get("200", 0))


async def baseline_call(client: httpx.AsyncClient, url: str, index: int) -> bool:
    task = CATALOG[index % len(CATALOG)]
    body = {"model": "moonshot-v1-8k", "messages": messages_for(task, 0, index),
            "max_tokens": 500, "temperature": 0.8}
    for attempt in range(3):
        try:
            r = await client.post(url, json=body, headers={"Authorization": "Bearer k"})
        except httpx.HTTPError:
            continue  # other errors: retried at once
        if r.status_code == 200:
            return True
        if r.status_code == 429:
            await asyncio.sleep(2 ** attempt + random.uniform(0, 1))
    return False


async def baseline(url: str) -> int:
    completed = 0
    sem = asyncio.Semaphore(C)

    async def one(client: httpx.AsyncClient, i: int) -> bool:
        async with sem:
            return await baseline_call(client, url, i)

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=C)) as client:
        for start in range(0, N, C):
            batch = range(start, min(N, start + C))
            completed += sum(await asyncio.gather(*(one(client, i) for i in batch)))
            await asyncio.sleep(0.1)
    return completed


def run_baseline() -> None:
    with simulator() as sim:
        t0 = time.perf_counter()
        completed = asyncio.run(baseline(sim.url + "/v1/chat/completions"))
        wall = time.perf_counter() - t0
        stats = httpx.get(sim.url + "/_stats").json()
    report("baseline", stats, wall, completed)


if __name__ == "__main__":
    print(f"limits: {PER_WINDOW} requests per {WINDOW_S:.0f} s ({RPM} RPM), {C} concurrent, "
          f"{LATENCY_S * 1000:.0f} ms per call -> bound {BOUND:.1f} calls/s; {N} tasks")
    run_swarm("swarm", RPM)
    run_baseline()
    run_swarm("swarm 1.2x", int(1.2 * RPM))
