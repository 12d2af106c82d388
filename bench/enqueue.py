"""Enqueue at 500K scale: wall time of `swarm enqueue -n 500000` and Redis memory growth.

Goal (issue 5): <= 5 s and <= 64 MiB. Runs against its own redis-server on 127.0.0.1.
Prints one line per measurement and a summary with medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarm.embedded import RedisServer  # noqa: E402

N = int(os.environ.get("BENCH_N", "500000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis",
                                                           persist=False) as server:
        r = redis.Redis.from_url(server.url)
        env = dict(os.environ, REDIS_URL=server.url, MOONSHOT_API_KEY="sk-bench-not-a-key",
                   OUTPUT_DIR=str(Path(tmp) / "out"), STATE_DIR=str(Path(tmp) / "state"),
                   SWARM_PROFILE="500k", PYTHONPATH=str(ROOT))
        walls, mems = [], []
        for i in range(ROUNDS):
            r.flushall()
            before = r.info("memory")["used_memory"]
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "swarm", "enqueue", "-n", str(N), "--run-id",
                 f"bench-{i}"], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                sys.exit(f"enqueue failed: {done.stderr.strip()}")
            grown = (r.info("memory")["used_memory"] - before) / 2**20
            queued = r.llen("swarm")
            walls.append(wall)
            mems.append(grown)
            print(f"round {i + 1}: swarm enqueue -n {N:,}: {wall:.2f} s wall, "
                  f"Redis +{grown:.1f} MiB, {queued:,} messages queued")
        print(f"median: {statistics.median(walls):.2f} s wall (goal <= 5 s), "
              f"Redis +{statistics.median(mems):.1f} MiB (goal <= 64 MiB)")


if __name__ == "__main__":
    main()
