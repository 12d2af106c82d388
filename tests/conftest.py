"""Fixtures: a real redis-server started by the tests (never one they did not start),
fakeredis for fast unit tests, the provider simulator, and settings isolated from the
environment of the machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from swarm.clock import FakeClock
from swarm.config import Settings, load_settings
from swarm.embedded import RedisServer
from swarm.sim.server import SimConfig, SimServer
from tests.helpers import Workers

SETTING_NAMES = set(Settings.model_fields) | {"max_kimi_agents", "swarm_config", "sim_api_key"}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine; no .env or config.yaml from the checkout."""
    for name in list(os.environ):
        if name.lower() in SETTING_NAMES or name.startswith(("FLOWER_", "CELERY_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server


@pytest.fixture
def real_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fake_redis() -> redis.Redis:
    return fakeredis.FakeRedis()


@pytest.fixture(params=["fakeredis", "real"])
def any_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """Both backends: every Lua script is exercised on fakeredis and on a real server."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis()
    return request.getfixturevalue("real_redis")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0)) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(output_dir=tmp_path / "out", state_dir=tmp_path / ".swarm",
                         max_concurrent=10, rpm_limit=6000, tpm_limit=10_000_000,
                         budget_usd=10.0)


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    yield started
    started.kill_all()
