"""Bad input: one clear line, exit 2, no traceback, nothing queued or spent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from swarm.embedded import RedisServer
from tests.helpers import base_env, swarm


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return swarm(args, base_env(cwd, **env), cwd, timeout=60)


def nothing_queued_violations(r: redis.Redis) -> list[bytes]:
    """Run records or queued messages (Celery's own ping bookkeeping does not count)."""
    return r.keys("swarm*")


def assert_refused(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarm: error:"), done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "-n", "0"], "'-n'"),
    (["run", "-n", "-5"], "'-n'"),
    (["run", "-n", "abc"], "valid integer"),
    (["run", "--test", "--profile", "nosuch"], "unknown profile 'nosuch'"),
    (["enqueue", "-n", "0"], "'-n'"),
    (["run", "--test", "-n", "5"], "choose one of"),
    (["export", "--format", "xml"], "xml"),
])
def test_bad_arguments(tmp_path: Path, real_redis: redis.Redis, redis_server: RedisServer,
                       args: list[str], needle: str) -> None:
    assert_refused(run(args, tmp_path, REDIS_URL=redis_server.url), needle)
    assert not nothing_queued_violations(real_redis)  # no run, no message


def test_malformed_config_yaml(tmp_path: Path, real_redis: redis.Redis,
                               redis_server: RedisServer) -> None:
    (tmp_path / "config.yaml").write_text("budget_usd: [oops\n")
    assert_refused(run(["run", "--test"], tmp_path, REDIS_URL=redis_server.url),
                   "not valid YAML")
    assert not nothing_queued_violations(real_redis)


def test_unreachable_redis(tmp_path: Path) -> None:
    for args in (["run", "--test"], ["enqueue", "-n", "5"], ["stats"]):
        done = run(args, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
        assert_refused(done, "Redis unreachable at redis://127.0.0.1:1/0")


def test_enqueue_refuses_without_key_or_price(tmp_path: Path, real_redis: redis.Redis,
                                              redis_server: RedisServer) -> None:
    assert_refused(run(["enqueue", "-n", "5"], tmp_path, REDIS_URL=redis_server.url),
                   "MOONSHOT_API_KEY is not set")
    done = run(["enqueue", "-n", "5"], tmp_path, REDIS_URL=redis_server.url,
                 MOONSHOT_API_KEY="sk-x-123456", KIMI_MODEL="kimi-unpriced")
    assert_refused(done, "no known price")
    done = run(["enqueue", "-n", "5"], tmp_path, REDIS_URL=redis_server.url,
                 MOONSHOT_API_KEY="sk-x-123456", BUDGET_USD="0.0001")
    assert_refused(done, "cannot pay for a single task")
    assert not nothing_queued_violations(real_redis)


def test_enqueue_queues_a_window_and_stats_reads_it(tmp_path: Path, real_redis: redis.Redis,
                                                    redis_server: RedisServer) -> None:
    done = run(["enqueue", "-n", "5000", "--run-id", "r-cli"], tmp_path,
                 REDIS_URL=redis_server.url, MOONSHOT_API_KEY="sk-x-123456",
                 MAX_CONCURRENT="10")
    assert done.returncode == 0, done.stderr
    assert "no worker online" in done.stdout  # a warning, not a refusal
    assert real_redis.llen("swarm") == 100  # the window (10 x MAX_CONCURRENT), not 5000
    stats = run(["stats", "--json", "--run-id", "r-cli"], tmp_path, REDIS_URL=redis_server.url)
    assert '"total": 5000' in stats.stdout and '"state": "running"' in stats.stdout
    again = run(["enqueue", "-n", "5", "--run-id", "r-cli"], tmp_path,
                  REDIS_URL=redis_server.url, MOONSHOT_API_KEY="sk-x-123456")
    assert_refused(again, "already exists")
    stop = run(["stop", "--run-id", "r-cli"], tmp_path, REDIS_URL=redis_server.url)
    assert stop.returncode == 0 and "stopped" in stop.stdout


def test_stats_without_runs(tmp_path: Path, redis_server: RedisServer,
                            real_redis: redis.Redis) -> None:
    assert_refused(run(["stats"], tmp_path, REDIS_URL=redis_server.url), "no runs yet")


def test_flower_refuses_to_start_without_auth(tmp_path: Path) -> None:
    assert_refused(run(["flower"], tmp_path), "FLOWER_BASIC_AUTH is not set")


def test_worker_without_key_refuses_to_start(tmp_path: Path, redis_server: RedisServer) -> None:
    env = base_env(tmp_path, REDIS_URL=redis_server.url)
    done = subprocess.run([sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool",
                           "threads", "-c", "2", "-Q", "swarm", "-l", "INFO"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "worker not started: MOONSHOT_API_KEY is not set on this worker" in done.stderr
