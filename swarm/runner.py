"""`swarm run`: everything on this host for one run, then a clean exit.

Embedded Redis (when REDIS_URL is unset), the simulator (when MOONSHOT_API_KEY is unset),
`--workers` Celery worker processes sharing MAX_CONCURRENT threads, one beat, the enqueue,
a live progress bar, the final stats block. Every child is stopped on the way out,
including on Ctrl+C and SIGTERM.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from swarm import runs
from swarm.config import Settings, load_settings
from swarm.embedded import RedisServer
from swarm.errors import ConfigError
from swarm.keys import AGENT_QUEUE, BEAT_QUEUE
from swarm.limits import Gate
from swarm.orchestrator import latest_insight
from swarm.outputs import write_stats_file
from swarm.procs import Children, python_cmd
from swarm.redisconn import connect
from swarm.render import progress_line, review_line, stats_block
from swarm.stats import snapshot
from swarm.validate import capacity_report, checks, measured

SIM_KEY = "sk-simulator-local"  # the simulator accepts any key; this one is not a secret
DRAIN_S = 60.0  # after Ctrl+C: time for in-flight calls to finish and settle


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start_simulator(children: Children, env: dict[str, str], latency_ms: float,
                     jitter_ms: float) -> str:
    proc = children.spawn("simulator", python_cmd(
        "-m", "swarm", "simulate", "--port", "0", "--latency-ms", str(latency_ms),
        "--jitter-ms", str(jitter_ms)), env, stdout_pipe=True, last=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if "listening on" not in line:
        raise ConfigError("the provider simulator did not start (see .swarm/logs/simulator.log)")
    return line.rsplit(" ", 1)[-1]


def run_all(s: Settings, count: int, *, run_id: str | None, workers: int,
            sim_latency_ms: float, sim_jitter_ms: float, console: Console) -> int:
    state_dir = Path(s.state_dir)
    children = Children(state_dir / "logs")
    server: RedisServer | None = None
    env = dict(os.environ)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    r = None
    spec = None
    final: str | None = None
    try:
        if s.simulated:
            console.print("SIMULATOR: no MOONSHOT_API_KEY set — Kimi and Claude calls go to the "
                          "local provider simulator on 127.0.0.1; nothing is billed.",
                          style="bold yellow")
        else:
            console.print(f"LIVE: calls go to {s.kimi_base_url} and are billed "
                          f"(budget ${s.budget_usd:.2f}).", style="bold red")
        if s.redis_url is None:
            server = RedisServer(state_dir / "redis").start()
            env["REDIS_URL"] = server.url
            (state_dir / "redis.url").write_text(server.url)
            console.print(f"embedded Redis on {server.url} (data in {state_dir / 'redis'})")
        r = connect(env.get("REDIS_URL") or s.broker_url(), ride_out_outages=True)
        if s.simulated:
            url = _start_simulator(children, env, sim_latency_ms, sim_jitter_ms)
            # Claude too, even with an ANTHROPIC_API_KEY: a simulated run sends nothing out.
            env.update(KIMI_BASE_URL=url + "/v1", MOONSHOT_API_KEY=SIM_KEY,
                       ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=SIM_KEY)
            console.print(f"simulator on {url}")
        os.environ.update({k: env[k] for k in ("REDIS_URL", "KIMI_BASE_URL", "MOONSHOT_API_KEY",
                                               "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
                           if k in env})
        s = load_settings()
        result = checks(s, count, r)
        failed = [c for c in result if not c.ok and not c.warning]
        if failed:
            raise ConfigError(failed[0].message)
        for line in capacity_report(s, count, measured(r, s.kimi_model)):
            console.print("  " + line, highlight=False)
        _start_workers(children, env, s, workers, console)

        from swarm.producer import Feeder, start_run
        from workers.tasks import publish

        spec = start_run(r, s, count, Feeder(r, publish), run_id=run_id)
        console.print(f"run {spec.run_id}: {count:,} tasks queued (window {spec.window:,})")
        final = _watch(r, spec.run_id, children, console)
    except KeyboardInterrupt:
        if r is not None and spec is not None:
            Gate(r).stop(spec.run_id, "stopped")
            console.print(f"interrupted: run {spec.run_id} stopped; in-flight calls finish and "
                          "queued tasks are skipped (Ctrl+C again to quit at once)")
            with contextlib.suppress(KeyboardInterrupt, ConfigError):
                _watch(r, spec.run_id, children, console, deadline_s=DRAIN_S)
        else:
            console.print("interrupted; stopping processes")
    finally:
        signal.signal(signal.SIGTERM, previous)
        children.stop_all()
        if r is not None and spec is not None:
            st = snapshot(r, spec.run_id)
            path = write_stats_file(Path(s.output_dir), spec.run_id, st)
            console.print(stats_block(st))
            review = latest_insight(Path(s.output_dir), spec.run_id)
            if review is not None:
                console.print(review_line(review), highlight=False)
            console.print(f"outputs in {s.output_dir}/<category>/{spec.run_id}.*.jsonl; "
                          f"stats in {path}", highlight=False)
        if r is not None:
            r.close()
        if server is not None:
            server.stop()
            (state_dir / "redis.url").unlink(missing_ok=True)
    if final is None:
        return 130
    return {"done": 0, "budget_exhausted": 0}.get(final, 1)


def _start_workers(children: Children, env: dict[str, str], s: Settings, workers: int,
                   console: Console) -> None:
    """`workers` processes sharing MAX_CONCURRENT threads, and the one beat, which runs inside
    a small worker of its own that alone consumes the beat's queue: reviews and sweeps never
    wait behind agent tasks (whose threads may all be waiting on the budget)."""
    threads = max(1, math.ceil(s.max_concurrent / workers))
    env["WORKER_THREADS"] = str(threads)
    for i in range(workers):
        children.spawn(f"worker{i + 1}", [
            *python_cmd("-m", "celery", "-A", "workers", "worker"),
            "--pool", "threads", "--concurrency", str(threads), "-Q", AGENT_QUEUE,
            "-n", f"swarm{i + 1}-{os.getpid()}@%h", "--without-mingle", "--without-gossip",
            "-l", "WARNING"], env)
    children.spawn("beat", [*python_cmd("-m", "celery", "-A", "workers", "worker", "--beat"),
                            "--pool", "threads", "--concurrency", "2", "-Q", BEAT_QUEUE,
                            "-n", f"beat-{os.getpid()}@%h", "--without-mingle",
                            "--without-gossip", "-l", "WARNING"], env)
    console.print(f"{workers} worker process(es) x {threads} threads, 1 beat with its own worker "
                  f"(logs in {Path(s.state_dir) / 'logs'})")


def _watch(r, run_id: str, children: Children, console: Console,  # type: ignore[no-untyped-def]
           deadline_s: float | None = None) -> str:
    """Show progress until every slot is accounted for; returns the final state."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[line]}"), console=console)
    end = None if deadline_s is None else time.monotonic() + deadline_s
    with progress:
        bar = progress.add_task("run", total=None, line="")
        while end is None or time.monotonic() < end:
            st = snapshot(r, run_id)
            finished = st["completed"] + st["failed"] + st["skipped"]
            progress.update(bar, total=st["total"], completed=finished, line=progress_line(st))
            if st["state"] in runs.FINAL_STATES and finished >= st["total"]:
                return str(st["state"])
            dead = children.dead()
            if dead:
                raise ConfigError(f"{', '.join(dead)} exited unexpectedly "
                                  "(see .swarm/logs/)")
            time.sleep(0.25)
    return str(snapshot(r, run_id)["state"])
