"""CPU per provider call: ``httpx.Client.post`` against ``swarm.providers.http.Http``, which
sends through the same pooled httpx transport without the Client's redirect, cookie and auth
layers. Both POST one chat request to the simulator (`swarm simulate` in its own process, no
latency) on one keep-alive connection; CPU time is this process's only.

    .venv/bin/python bench/http_call.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swarm.catalog import BY_NAME, messages_for  # noqa: E402
from swarm.providers.http import Http  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def cpu_us_per_call(call: Callable[[], object]) -> float:
    for _ in range(100):  # warm the connection and the code paths
        call()
    t0 = time.process_time()
    for _ in range(CALLS):
        call()
    return (time.process_time() - t0) / CALLS * 1e6


def main() -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", "swarm", "simulate", "--port", "0", "--latency-ms", "0",
         "--jitter-ms", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip().rsplit(" ", 1)[-1] + "/v1/chat/completions"
        body = {"model": "moonshot-v1-8k", "max_tokens": 500, "temperature": 0.8,
                "messages": messages_for(BY_NAME["competitor_intel"], 1, 1)}
        headers = {"Authorization": "Bearer sk-bench-not-a-key"}
        client = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        http = Http.per_thread(60.0)
        results: dict[str, list[float]] = {"httpx.Client.post": [], "Http.post_json": []}
        for i in range(ROUNDS):
            results["httpx.Client.post"].append(cpu_us_per_call(
                lambda: client.post(url, json=body, headers=headers).json()))
            results["Http.post_json"].append(cpu_us_per_call(
                lambda: http.post_json(url, "kimi", headers, body)))
            print(f"round {i + 1}: " + ", ".join(
                f"{name} {values[-1]:.0f} us CPU/call" for name, values in results.items()))
        client_us = statistics.median(results["httpx.Client.post"])
        http_us = statistics.median(results["Http.post_json"])
        print(f"median of {ROUNDS} x {CALLS:,} calls: httpx.Client.post {client_us:.0f} us, "
              f"Http.post_json {http_us:.0f} us CPU per call ({http_us / client_us:.0%})")
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
