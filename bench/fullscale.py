"""A full-scale run: N tasks (default 500,000) through real workers against the simulator
with no latency and no limits. Prints wall time, tasks/s, Redis peak memory, the peak RSS
of the worker processes, the CPU seconds of each process role per task, and the CPU the
hypervisor took (this VM's speed varies from minute to minute). Takes minutes: not part of
`make bench`.

    .venv/bin/python bench/fullscale.py
    BENCH_N=30000 BENCH_WORKERS=3 BENCH_WINDOW_SIZE=2400 .venv/bin/python bench/fullscale.py
    BENCH_N=10000 BENCH_MAX_CONCURRENT=500 BENCH_LATENCY_MS=2000 .venv/bin/python bench/fullscale.py
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
SETTINGS = {"TASK_EVENTS": "false", "MAX_CONCURRENT": "24", "WINDOW_SIZE": "1200",
            "RPM_LIMIT": "100000000", "TPM_LIMIT": "100000000000", "BUDGET_USD": "1000"}
SETTINGS.update({k[6:]: v for k, v in os.environ.items() if k.startswith("BENCH_") and k[6:] in (
    "SLOTS_PER_MESSAGE", "TASK_EVENTS", "MAX_CONCURRENT", "WINDOW_SIZE")})
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
LATENCY_MS = os.environ.get("BENCH_LATENCY_MS", "0")  # the simulator's, per call


ROLES = (("redis-server", "redis"), ("simulate", "simulator"), ("--beat", "beat"),
         ("celery", "workers"), ("swarm run", "swarm run"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_pid(cpu: dict[int, tuple[str, float]]) -> None:
    """Record each of our processes' CPU seconds so far (user + system), by role."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        role = next((name for marker, name in ROLES if marker in cmd), None)
        if role is not None:
            cpu[int(pid)] = (role, (int(stat[11]) + int(stat[12])) / TICK)


def steal_s() -> float:
    """CPU seconds the hypervisor gave to others, all cores (the 8th field of /proc/stat)."""
    return int(Path("/proc/stat").read_text().split()[8]) / TICK


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
        cpu: dict[int, tuple[str, float]] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(1):
                cpu_by_pid(cpu)
                url_file = state / "redis.url"
                if url_file.is_file():
                    try:
                        info = redis.Redis.from_url(url_file.read_text()).info("memory")
                        peaks["redis"] = max(peaks["redis"], info["used_memory_peak"] / 2**20)
                    except redis.RedisError:
                        pass
                peaks["rss"] = max(peaks["rss"], rss_mib(f"-{proc.pid}@"))

        t0, stolen0 = time.perf_counter(), steal_s()
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarm", "run", "-n", str(N), "--workers", str(WORKERS),
             "--sim-latency-ms", LATENCY_MS, "--sim-jitter-ms", "0"], env=env, cwd=tmp,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = proc.communicate()
        wall, stolen = time.perf_counter() - t0, steal_s() - stolen0
        done.set()
        rate = next((line for line in output.splitlines() if line.startswith("Rate")), "?")
        completed = next((line for line in output.splitlines()
                          if line.startswith("Completed")), "?")
        print(f"settings: {SETTINGS}, {WORKERS} workers, N={N:,}, simulator latency "
              f"{LATENCY_MS} ms; exit {proc.returncode}")
        errors = next((line for line in output.splitlines() if line.startswith("429s")), "?")
        print(f"{' '.join(completed.split())}; {' '.join(rate.split())}; "
              f"{' '.join(errors.split())}")
        print(f"wall {wall:.0f} s ({N / wall:.0f} tasks/s including start and stop); "
              f"Redis peak {peaks['redis']:.1f} MiB; worker RSS peak (all {WORKERS} + beat's) "
              f"{peaks['rss']:.0f} MiB")
        roles: dict[str, float] = {}
        for role, seconds in cpu.values():
            roles[role] = roles.get(role, 0.0) + seconds
        total = sum(roles.values())
        print("CPU (user+system, sampled each second): " + ", ".join(
            f"{role} {sec:.0f} s ({sec / total:.0%}, {sec / N * 1e6:.0f} us/task)"
            for role, sec in sorted(roles.items(), key=lambda kv: -kv[1])))
        print(f"stolen by the hypervisor: {stolen:.0f} CPU s "
              f"({stolen / (wall * os.cpu_count()):.1%} of the machine's {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
