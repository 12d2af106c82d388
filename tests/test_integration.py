"""The whole product for real: `swarm run` as a user runs it, with real Celery worker
processes, a real Redis and the simulator over HTTP. Checks that every task is accounted
for, that outputs, counters and the provider's own bill agree exactly, that reviews run on
the beat, that no process is left behind, and that no key leaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from swarm.embedded import RedisServer
from swarm.outputs import read_records
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import base_env, swarm

pytestmark = pytest.mark.integration

KEY = "sk-integration-secret-0042"


def leftovers(marker: str) -> list[str]:
    """Processes whose command line mentions ``marker``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


def test_run_with_three_workers_matches_the_providers_bill(
        real_redis: redis.Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    with SimServer(SimConfig(latency_ms=20, jitter_ms=30, api_key=KEY)) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="12", RPM_LIMIT="100000")
        done = swarm(["run", "-n", "150", "--workers", "3"], env, tmp_path)
        bill = httpx.get(sim.url + "/_stats").json()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LIVE:" in done.stdout.splitlines()[0]
    run_id = real_redis.zrevrange("swarm:runs", 0, 0)[0].decode()
    st = snapshot(real_redis, run_id)
    assert (st["state"], st["completed"], st["failed"], st["skipped"]) == ("done", 150, 0, 0)
    records = list(read_records(tmp_path / "out", run_id))
    assert sorted(r["index"] for r in records) == list(range(150))  # one line per task
    assert st["requests"] == bill["requests"] == 150  # at most one paid call per task
    assert st["prompt_tokens"] == bill["prompt_tokens"]
    assert st["completion_tokens"] == bill["completion_tokens"]
    assert round(st["cost_kimi_usd"] * 1e6) == bill["billed_micro"]
    assert round(sum(r["cost_usd"] for r in records) * 1e6) == bill["billed_micro"]
    assert bill["max_in_flight"] <= 12
    stats_file = json.loads((tmp_path / "out" / f"stats_{run_id}.json").read_text())
    assert stats_file["completed"] == 150
    # the key is nowhere: not in logs, outputs, stats, or what the command printed
    texts = [done.stdout, done.stderr]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(KEY in t for t in texts)
    assert not leftovers(str(tmp_path))


def test_demo_path_embedded_redis_and_simulator(tmp_path: Path) -> None:
    # an Anthropic key in the environment must not take a simulated run out of the machine
    env = base_env(tmp_path, ANTHROPIC_API_KEY="sk-ant-" + KEY, ORCHESTRATE_EVERY_S="1",
                   ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    done = swarm(["run", "--test", "--profile", "100k", "--sim-latency-ms", "3000",
                  "--sim-jitter-ms", "0"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("SIMULATOR: no MOONSHOT_API_KEY set")
    reviews = [json.loads(p.read_text())
               for p in (tmp_path / "out" / "claude_insights").glob("insight_*.json")]
    # every review was answered by the simulator (a call that could not connect would have
    # left it to the rules, source "rules") and kept to the rules the prompt states
    assert reviews and {r["source"] for r in reviews} == {"claude"}
    assert all(r["applied"] for r in reviews)
    last = max(reviews, key=lambda r: r["seq"])
    assert f"Review {last['seq']} (claude, $" in done.stdout  # the summary names the last one
    assert not leftovers(str(tmp_path))  # redis, simulator, workers and beat are gone
    after = swarm(["stats", "--json"], env, tmp_path)  # answers from the saved data
    st = json.loads(after.stdout)
    assert (st["state"], st["total"], st["completed"]) == ("done", 10, 10)
    assert len(list(read_records(tmp_path / "out", st["run_id"]))) == 10
    assert not leftovers(str(tmp_path))


def test_interrupt_stops_the_run_and_accounts_for_every_task(tmp_path: Path) -> None:
    env = base_env(tmp_path, MAX_CONCURRENT="20")
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm", "run", "-n", "2000", "--sim-latency-ms", "1500",
         "--sim-jitter-ms", "0"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "tasks queued" in line:
            break
    time.sleep(3)  # some calls are in flight now
    proc.send_signal(signal.SIGINT)
    try:
        rest, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        logs = {p.name: p.read_text()[-1500:] for p in (tmp_path / "state" / "logs").glob("*")}
        stats = swarm(["stats", "--json"], env, tmp_path).stdout  # which slots were left open
        raise AssertionError(f"swarm run did not stop within 90 s; stats: {stats}; "
                             f"logs: {logs}") from None
    assert proc.returncode == 130
    assert "interrupted" in rest
    assert not leftovers(str(tmp_path))
    st = json.loads(swarm(["stats", "--json"], env, tmp_path).stdout)
    assert st["state"] == "stopped"
    assert st["completed"] + st["failed"] + st["skipped"] == 2000
    assert st["in_flight"] == 0 and st["reserved_usd"] == 0


def test_several_slots_per_message(real_redis: redis.Redis, redis_server: RedisServer,
                                   tmp_path: Path) -> None:
    with SimServer(SimConfig(latency_ms=5, jitter_ms=5)) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="6", WINDOW_SIZE="30",
                       SLOTS_PER_MESSAGE="7")
        done = swarm(["run", "-n", "100", "--workers", "2"], env, tmp_path)
        bill = httpx.get(sim.url + "/_stats").json()
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = real_redis.zrevrange("swarm:runs", 0, 0)[0].decode()
    st = snapshot(real_redis, run_id)
    assert (st["state"], st["completed"], bill["requests"]) == ("done", 100, 100)
    assert sorted(r["index"] for r in read_records(tmp_path / "out", run_id)) == list(range(100))
