"""A full-scale run: N tasks (default 500,000) through real workers against the simulator
with no latency and no limits. Prints wall time, tasks/s, Redis peak memory and the peak RSS
of the worker processes, sampled every 5 s. Takes minutes: not part of `make bench`.

    BENCH_N=500000 .venv/bin/python bench/fullscale.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("BENCH_N", "500000"))
SETTINGS = {"SLOTS_PER_MESSAGE": "10", "TASK_EVENTS": "false", "MAX_CONCURRENT": "24",
            "RPM_LIMIT": "100000000", "TPM_LIMIT": "100000000000", "BUDGET_USD": "1000"}
WORKERS = 3


def rss_mib(marker: str) -> float:
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if marker.encode() in cmd and b"celery" in cmd:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        env = dict(os.environ, OUTPUT_DIR=str(Path(tmp) / "out"), STATE_DIR=str(state),
                   PYTHONPATH=str(ROOT), **SETTINGS)
        env.pop("REDIS_URL", None)
        env.pop("MOONSHOT_API_KEY", None)
        peaks = {"redis": 0.0, "rss": 0.0}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(5):
                url_file = state / "redis.url"
                if url_file.is_file():
                    try:
                        info = redis.Redis.from_url(url_file.read_text()).info("memory")
                        peaks["redis"] = max(peaks["redis"], info["used_memory_peak"] / 2**20)
                    except redis.RedisError:
                        pass
                peaks["rss"] = max(peaks["rss"], rss_mib(f"-{proc.pid}@"))

        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarm", "run", "-n", str(N), "--workers", str(WORKERS),
             "--sim-latency-ms", "0", "--sim-jitter-ms", "0"], env=env, cwd=tmp,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = proc.communicate()
        wall = time.perf_counter() - t0
        done.set()
        rate = next((line for line in output.splitlines() if line.startswith("Rate")), "?")
        completed = next((line for line in output.splitlines()
                          if line.startswith("Completed")), "?")
        print(f"settings: {SETTINGS}, {WORKERS} workers, N={N:,}; exit {proc.returncode}")
        print(f"{' '.join(completed.split())}; {' '.join(rate.split())}")
        print(f"wall {wall:.0f} s ({N / wall:.0f} tasks/s including start and stop); "
              f"Redis peak {peaks['redis']:.1f} MiB; worker RSS peak (all {WORKERS} + beat's) "
              f"{peaks['rss']:.0f} MiB")


if __name__ == "__main__":
    main()
