"""Pre-flight checks, each failure with its own message, and the capacity report (assumed,
then measured once a run of the model has data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from swarm.clock import FakeClock
from swarm.config import Settings
from swarm.validate import Measured, capacity_report, checks, measured
from tests.harness import Harness, Provider
from tests.test_cli import assert_refused, nothing_queued_violations, run


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"moonshot_api_key": SecretStr("sk-validate-123456")})


def failures(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.name: c.message for c in result if not c.ok and not c.warning}


def test_all_checks_pass(real_redis: redis.Redis, keyed: Settings) -> None:
    result = checks(keyed, 10, real_redis, workers_online=lambda: 2)
    assert failures(result) == {} and all(c.ok for c in result)


@pytest.fixture
def evicting(real_redis: redis.Redis) -> Iterator[redis.Redis]:
    real_redis.config_set("maxmemory-policy", "allkeys-lru")
    yield real_redis
    real_redis.config_set("maxmemory-policy", "noeviction")


def test_each_failure_has_its_message(evicting: redis.Redis, keyed: Settings,
                                      settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = keyed.model_copy(update={"output_dir": blocker / "out", "kimi_model": "nope-1",
                                   "kimi_price_in": None, "kimi_price_out": None})
    found = failures(checks(bad, 0, evicting, workers_online=lambda: 0))
    assert found["tasks"] == "N must be at least 1 (got 0)"
    assert "must be noeviction" in found["redis"] and "allkeys-lru" in found["redis"]
    assert found["output dir"].startswith(f"OUTPUT_DIR {blocker / 'out'} is not writable")
    assert "'nope-1' has no known price" in found["price"]
    assert "MOONSHOT_API_KEY is not set" in failures(checks(settings, 1, None))["api key"]
    poor = keyed.model_copy(update={"budget_usd": 0.0005})
    assert "cannot pay for a single task" in failures(checks(poor, 1, None))["budget"]
    warned = [c for c in checks(keyed, 1, None, workers_online=lambda: 0) if c.warning]
    assert [c.name for c in warned] == ["workers"] and not warned[0].ok


def test_unwritable_output_dir_refuses_before_queueing(tmp_path: Path, real_redis: redis.Redis,
                                                       redis_server) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a-file").write_text("")
    done = run(["enqueue", "-n", "5"], tmp_path, REDIS_URL=redis_server.url,
               MOONSHOT_API_KEY="sk-x-123456", OUTPUT_DIR=str(tmp_path / "a-file" / "out"))
    assert_refused(done, "is not writable")
    assert not nothing_queued_violations(real_redis)


def test_n_above_total_agents_is_capped_with_a_note(tmp_path: Path, real_redis: redis.Redis,
                                                    redis_server) -> None:  # type: ignore[no-untyped-def]
    done = run(["enqueue", "-n", "500", "--run-id", "cap"], tmp_path,
               REDIS_URL=redis_server.url, MOONSHOT_API_KEY="sk-x-123456", TOTAL_AGENTS="120")
    assert done.returncode == 0, done.stderr
    assert "capped at TOTAL_AGENTS = 120" in done.stderr
    assert real_redis.hget("swarm:{cap}:meta", "total") == b"120"


def test_capacity_report_states_its_assumptions(keyed: Settings) -> None:
    s = keyed.model_copy(update={"max_concurrent": 60, "rpm_limit": 1_000_000,
                                 "tpm_limit": 10**9})
    duration, cost = capacity_report(s, 36_000)[1:]
    assert "bound by MAX_CONCURRENT" in duration and "assumed" in duration
    assert "10.0 tasks/s" in duration and "1.00 h" in duration  # 60 / 6 s
    assert cost.startswith("est. cost $")
    limited = capacity_report(s.model_copy(update={"rpm_limit": 120}), 7_200)[1]
    assert "bound by RPM_LIMIT" in limited and "2.0 tasks/s" in limited and "1.00 h" in limited


def test_capacity_report_uses_a_runs_measurements(real_redis: redis.Redis, keyed: Settings,
                                                  clock: FakeClock) -> None:
    assert measured(real_redis, keyed.kimi_model) is None
    h = Harness(real_redis, keyed, clock, Provider())
    h.start(25)
    h.drain()
    seen = measured(real_redis, keyed.kimi_model)
    assert seen is not None and seen.calls == 25 and seen.prompt_tokens > 50
    assert measured(real_redis, "moonshot-v1-32k") is None  # another model: no data
    s = keyed.model_copy(update={"max_concurrent": 30, "rpm_limit": 10**6, "tpm_limit": 10**9})
    report = capacity_report(s, 54_000, Measured("r-x", 400, 1.5, 150, 250))
    assert "20.0 tasks/s" in report[1] and "0.75 h" in report[1]
    assert "measured on run r-x over 400 calls" in report[1]
    assert "150 prompt + 250 completion" in report[2]
    short = capacity_report(s, 100, Measured("r-x", 400, 1.5, 150, 250))[1]
    assert "est. duration 5 s at 20.0 tasks/s" in short  # not "0.00 h"


@pytest.mark.parametrize("flag", ["--full", "--max"])
def test_full_and_the_100k_scripts_max_queue_total_agents(tmp_path: Path, real_redis: redis.Redis,
                                                          redis_server, flag: str) -> None:  # type: ignore[no-untyped-def]
    done = run(["enqueue", flag, "--yes", "--profile", "100k", "--run-id", "all"], tmp_path,
               REDIS_URL=redis_server.url, MOONSHOT_API_KEY="sk-x-123456", TOTAL_AGENTS="150")
    assert done.returncode == 0, done.stderr
    assert real_redis.hget("swarm:{all}:meta", "total") == b"150"
