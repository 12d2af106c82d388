"""docker-compose.yaml, Dockerfile, .env.example and the Makefile agree with the code.
There is no Docker engine here: what can be checked without one is checked."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from swarm.cli import app
from swarm.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def setting_names() -> set[str]:
    return {n.upper() for n in Settings.model_fields} | {"MAX_KIMI_AGENTS"}


def test_services_and_their_roles() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "worker", "beat", "flower", "metrics", "producer"}
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "noeviction" in redis["command"]
    assert "healthcheck" in redis
    assert "container_name" not in services["worker"]  # so --scale worker=N works
    assert services["beat"]["deploy"]["replicas"] == 1
    for name in ("worker", "beat", "flower", "metrics", "producer"):
        assert services[name]["env_file"][0]["path"] == ".env"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_variables_are_settings() -> None:
    for name, svc in compose()["services"].items():
        if name == "redis":
            continue
        assert set(svc["environment"]) <= setting_names()
        assert svc["environment"]["REDIS_URL"].startswith("redis://redis:6379")


def test_commands_exist() -> None:
    commands = {c.name or c.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
                for c in app.registered_commands}
    queues = set()
    for name, svc in compose()["services"].items():
        cmd = svc["command"]
        if cmd[0] == "celery":
            assert cmd[1:3] == ["-A", "workers"]
            importlib.import_module("workers")
            assert cmd[3] == "worker"
            queues |= set(cmd[cmd.index("-Q") + 1].split(","))
            if name == "beat":
                assert "--beat" in cmd and cmd[cmd.index("-Q") + 1] == "swarm.beat"
        elif cmd[0] == "swarm":
            assert cmd[1] in commands, f"{name}: swarm {cmd[1]} does not exist"
    from swarm.keys import AGENT_QUEUE, BEAT_QUEUE

    assert queues == {AGENT_QUEUE, BEAT_QUEUE}  # every queue has a consumer


def test_dockerfile_copies_what_exists() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))
    assert named == setting_names()


def test_makefile_has_the_contract_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    for target in ("install", "demo", "test", "enqueue", "worker", "beat", "flower", "bench"):
        assert re.search(rf"^{target}:", text, re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()

