"""More worker threads than the account's limits let call at once: what the threads that
wait their turn cost. As on several `make worker` hosts (WORKER_THREADS each) sharing one
account: 2 worker processes x 200 threads, every call taking a fixed time at the simulator.
  leases: MAX_CONCURRENT=50, 1 s calls: bound 50 tasks/s by concurrency;
  rate:   RPM_LIMIT=600, 0.5 s calls: bound 600/60 x 0.98 = 9.8 tasks/s by the paced RPM.

Prints the throughput against the bound, the admissions told to wait (by reason), Redis
commands per task, and the CPU per task of the workers and of Redis.

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

THREADS = 200
# name: tasks, MAX_CONCURRENT, RPM_LIMIT, call latency (s), bound (tasks/s)
SCENARIOS = {"leases": (3000, 50, 100_000_000, 1.0, 50.0),
             "rate": (600, 1000, 600, 0.5, 600 / 60 * 0.98)}


def run(name: str) -> None:
    n, max_concurrent, rpm, latency_s, bound = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "r", persist=False) as rs, \
            SimServer(SimConfig(latency_ms=latency_s * 1000, jitter_ms=0)) as sim:
        env = dict(os.environ, REDIS_URL=rs.url, MOONSHOT_API_KEY="sk-bench-not-a-key",
                   KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT=str(max_concurrent),
                   WORKER_THREADS=str(THREADS), RPM_LIMIT=str(rpm),
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
            done = subprocess.run([sys.executable, "-m", "swarm", "enqueue", "-n", str(n)],
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
        print(f"[{name}] MAX_CONCURRENT {max_concurrent}, RPM_LIMIT {rpm}, 2 workers x "
              f"{THREADS} threads, {latency_s} s calls -> bound {bound:.1f} tasks/s; {n} tasks")
        waits = ", ".join(f"{why} {count:,}" for why, count in st["admit_waits"].items()) or "none"
        print(f"[{name}] completed {st['completed']}/{n} in {wall:.1f} s: {rate:.2f} tasks/s = "
              f"{rate / bound:.1%} of the bound; admissions told to wait: {waits}; Redis "
              f"{commands / n:.0f} commands a task; CPU a task: workers "
              f"{roles.get('workers', 0) / n * 1e3:.2f} ms, redis "
              f"{roles.get('redis', 0) / n * 1e3:.2f} ms")
        top = sorted(by_command.items(), key=lambda kv: -kv[1])[:6]
        print(f"[{name}] Redis commands a task (those inside our scripts too): "
              + ", ".join(f"{cmd} {calls / n:.1f}" for cmd, calls in top))


if __name__ == "__main__":
    for scenario in sys.argv[1:] or SCENARIOS:
        run(scenario)
