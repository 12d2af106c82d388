"""Small builders shared by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import redis

from swarm import runs
from swarm.catalog import default_weights
from swarm.prices import Price
from swarm.runs import RunSpec

ROOT = Path(__file__).resolve().parents[1]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `swarm` or `celery` process under test: the machine's PATH, HOME
    and locale only, this test's folders, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME", "LANG", "LC_"))}
    env.update({"OUTPUT_DIR": str(tmp_path / "out"), "STATE_DIR": str(tmp_path / "state"),
                "PYTHONPATH": str(ROOT), "COLUMNS": "120"})
    env.update(extra)
    return env


def swarm(args: list[str], env: dict[str, str], cwd: Path,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`swarm ARGS` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "swarm", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def make_spec(run_id: str = "r1", total: int = 100, *, rpm: int = 10**7, tpm: int = 10**9,
              max_concurrent: int = 10, window: int = 20, price: Price | None = None,
              lease_ttl_ms: int = 60_000) -> RunSpec:
    return RunSpec(
        run_id=run_id, total=total, seed=7, model="moonshot-v1-8k", max_tokens=500,
        temperature=0.8, price=price or Price(0.20, 2.00), rpm=rpm, tpm=tpm,
        max_concurrent=max_concurrent, window=window, lease_ttl_ms=lease_ttl_ms,
        revenue_conversion=0.1,
    )


def create_run(r: redis.Redis, spec: RunSpec, line_micro: int = 10_000_000,
               now_ms: int = 0) -> RunSpec:
    runs.create(r, spec, default_weights(), budget_usd=line_micro / 1e6 / 0.95,
                line_micro=line_micro, now_ms=now_ms)
    return spec


class Queue:
    """An in-memory stand-in for the Celery queue: publish appends, pop takes the oldest."""

    def __init__(self) -> None:
        self.items: deque[tuple[str, int, str]] = deque()
        self.sizes: list[int] = []  # the message size asked for at each publish

    def publish(self, run_id: str, slots: Sequence[tuple[int, str]], size: int) -> None:
        self.items.extend((run_id, s, c) for s, c in slots)
        self.sizes.append(size)

    def __len__(self) -> int:
        return len(self.items)


class Workers:
    """Celery worker processes (and the beat's own worker) started by a test, each in its own
    session so a test can kill one outright; whatever is left is killed at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, env: dict[str, str], cwd: Path, count: int,
              threads: int) -> list[subprocess.Popen[bytes]]:
        """``count`` agent workers of ``threads`` threads and one beat; returns the agents."""
        celery = [sys.executable, "-m", "celery", "-A", "workers", "worker"]
        quiet = {"env": env, "cwd": cwd, "start_new_session": True,
                 "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        agents = [subprocess.Popen(
            [*celery, "--pool", "threads", "-c", str(threads), "-Q", "swarm", "-n",
             f"test{i}-{os.getpid()}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"],
            **quiet) for i in range(count)]  # type: ignore[call-overload]
        beat = subprocess.Popen(
            [*celery, "--beat", "--pool", "threads", "-c", "2", "-Q", "swarm.beat", "-n",
             f"testbeat-{os.getpid()}@%h", "-s", str(cwd / "beat-schedule"), "-l", "WARNING"],
            **quiet)  # type: ignore[call-overload]
        self.procs += [*agents, beat]
        return agents

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
