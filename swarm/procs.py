"""Child processes of `swarm run`: each in its own process group, logging to a file, and all
stopped (TERM, then KILL) when the run ends, fails or is interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class Children:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.last: set[str] = set()

    def spawn(self, name: str, args: list[str], env: dict[str, str],
              stdout_pipe: bool = False, last: bool = False) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log, stderr=log,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()
        self.procs.append((name, proc))
        if last:
            self.last.add(name)
        return proc

    def dead(self) -> list[str]:
        return [name for name, p in self.procs if p.poll() is not None]

    def stop_all(self, grace_s: float = 15.0) -> None:
        """Stop the processes in two waves: the others, then those spawned with ``last=True``
        (the simulator, which the workers' last calls still need while they shut down)."""
        first = [(n, p) for n, p in self.procs if n not in self.last]
        for wave in (first, [(n, p) for n, p in self.procs if n in self.last]):
            for _, p in wave:
                _signal(p, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for _, p in reversed(wave):
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal(p, signal.SIGKILL)
                    p.wait(5)
        self.procs.clear()


def _signal(p: subprocess.Popen[bytes], sig: int) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if `swarm run` itself is killed (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]
