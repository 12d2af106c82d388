"""Flower against the run's broker: it shows the worker and the finished tasks through its
HTTP API, refuses requests without the basic-auth credentials, and no key appears in what
it shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from swarm.embedded import RedisServer, free_port
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import base_env, swarm
from tests.test_integration import KEY

pytestmark = pytest.mark.integration

AUTH = ("watcher", "flower-pass-123")


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, ValueError):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_flower_shows_worker_and_tasks_behind_auth(real_redis: redis.Redis,
                                                    redis_server: RedisServer,
                                                    tmp_path: Path) -> None:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    with SimServer(SimConfig(latency_ms=10, jitter_ms=0)) as sim:
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="4",
                       FLOWER_BASIC_AUTH=":".join(AUTH), FLOWER_PORT=str(port),
                       FLOWER_ADDRESS="127.0.0.1")
        try:
            procs.append(subprocess.Popen([sys.executable, "-m", "swarm", "flower"], env=env,
                                          cwd=tmp_path, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: httpx.get(base + "/healthcheck", timeout=2).status_code == 200,
                     30, "Flower")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "threads",
                 "-c", "4", "-Q", "swarm", "-n", "flowertest@%h", "-l", "WARNING"],
                env=env, cwd=tmp_path, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            assert swarm(["enqueue", "-n", "10", "--run-id", "fl"], env, tmp_path).returncode == 0
            wait_for(lambda: snapshot(real_redis, "fl")["completed"] == 10, 60, "the run")

            assert httpx.get(base + "/api/workers", timeout=5).status_code == 401
            assert httpx.get(base + "/api/tasks", auth=("watcher", "wrong"),
                             timeout=5).status_code == 401
            workers = wait_for(lambda: httpx.get(base + "/api/workers?refresh=1", auth=AUTH,
                                                 timeout=10).json(), 30, "workers")
            assert any(name.startswith("flowertest@") for name in workers)

            def finished() -> dict:  # type: ignore[type-arg]
                tasks = httpx.get(base + "/api/tasks", auth=AUTH, timeout=10).json()
                done = {k: t for k, t in tasks.items() if t.get("state") == "SUCCESS"}
                return done if len(done) == 10 else {}

            tasks = wait_for(finished, 30, "finished tasks in Flower")
            assert {t["name"] for t in tasks.values()} == {"swarm.agent"}
            shown = httpx.get(base + "/api/tasks", auth=AUTH, timeout=10).text
            assert KEY not in shown and "'fl'" in shown  # args are (run_id, slot, category)
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
