"""More worker threads than the account's concurrency: what the threads that wait their
turn cost. As on a cluster of several hosts of `make worker` (WORKER_THREADS each) sharing one
MAX_CONCURRENT: here 2 worker processes x THREADS threads for MAX_CONCURRENT leases, every
call taking LATENCY_S at the simulator, so the bound is MAX_CONCURRENT / LATENCY_S tasks/s.

Prints the throughput against that bound, the admissions that were told to wait for a lease,
Redis commands per task, and the CPU per task of the workers and of Redis.

    .venv/bin/python bench/waiters.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fullscale import cpu_by_pid  # noqa: E402
from swarm.embedded import RedisServer  # noqa: E402
from swarm.sim.server import SimConfig, SimServer  # noqa: E402
from swarm.stats import snapshot  # noqa: E402

N = int(os.environ.get("BENCH_N", "3000"))
MAX_CONCURRENT, THREADS, LATENCY_S = 50, 200, 1.0
BOUND = MAX_CONCURRENT / LATENCY_S


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "r", persist=False) as rs, \
            SimServer(SimConfig(latency_ms=LATENCY_S * 1000, jitter_ms=0)) as sim:
        env = dict(os.environ, REDIS_URL=rs.url, MOONSHOT_API_KEY="sk-bench-not-a-key",
                   KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT=str(MAX_CONCURRENT),
                   WORKER_THREADS=str(THREADS), RPM_LIMIT="100000000",
                   TPM_LIMIT="100000000000", TASK_EVENTS="false",
                   OUTPUT_DIR=str(Path(tmp) / "out"), STATE_DIR=str(Path(tmp) / "state"),
                   PYTHONPATH=str(ROOT))
        celery = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "threads",
                  "-c", str(THREADS), "-Q", "swarm", "--without-mingle", "--without-gossip",
                  "-l", "WARNING"]
        workers = [subprocess.Popen([*celery, "-n", f"bench{i}-{os.getpid()}@%h"], env=env,
                                    cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(2)]
        try:
            r = redis.Redis.from_url(rs.url)
            time.sleep(3)  # the workers connect
            done = subprocess.run([sys.executable, "-m", "swarm", "enqueue", "-n", str(N)],
                                  env=env, cwd=tmp, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"enqueue failed: {done.stderr[-500:]}")
            run_id = re.search(r"^run (\S+):", done.stdout, re.M).group(1)  # type: ignore[union-attr]
            cpu0: dict[int, tuple[str, float]] = {}
            cpu_by_pid(cpu0)
            commands0 = r.info("stats")["total_commands_processed"]
            before = r.info("commandstats")
            t0 = time.perf_counter()
            while snapshot(r, run_id)["state"] == "running":
                time.sleep(0.5)
            wall = time.perf_counter() - t0
            commands = r.info("stats")["total_commands_processed"] - commands0
            by_command = {
                name.removeprefix("cmdstat_"): c["calls"] - before.get(name, {}).get("calls", 0)
                for name, c in r.info("commandstats").items()}
            cpu1: dict[int, tuple[str, float]] = {}
            cpu_by_pid(cpu1)
            st = snapshot(r, run_id)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
        roles: dict[str, float] = {}
        for pid, (role, seconds) in cpu1.items():
            roles[role] = roles.get(role, 0.0) + seconds - cpu0.get(pid, (role, 0.0))[1]
        rate = st["completed"] / wall
        print(f"{MAX_CONCURRENT} leases, 2 workers x {THREADS} threads, {LATENCY_S:.0f} s calls "
              f"-> bound {BOUND:.0f} tasks/s; {N} tasks")
        print(f"completed {st['completed']}/{N} in {wall:.1f} s: {rate:.1f} tasks/s = "
              f"{rate / BOUND:.1%} of the bound; admissions told to wait for a lease "
              f"{st['admit_waits'].get('concurrency', 0):,}; Redis {commands / N:.0f} commands "
              f"a task; CPU a task: workers {roles.get('workers', 0) / N * 1e3:.2f} ms, redis "
              f"{roles.get('redis', 0) / N * 1e3:.2f} ms")
        top = sorted(by_command.items(), key=lambda kv: -kv[1])[:6]
        print("Redis commands a task (those inside our scripts too): "
              + ", ".join(f"{name} {calls / N:.1f}" for name, calls in top))


if __name__ == "__main__":
    main()
