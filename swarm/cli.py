"""`swarm …`: the command line. Errors are one line on stderr and exit 2; no tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.console import Console
from rich.live import Live
from typer.exceptions import TyperException

from swarm import runs
from swarm.config import Settings, load_settings
from swarm.errors import SwarmError, redact
from swarm.redisconn import redis_for

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Run very large batches of LLM agent tasks.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

ProfileOpt = Annotated[str | None, typer.Option("--profile", help="100k or 500k")]
RunIdOpt = Annotated[str | None, typer.Option("--run-id", help="the run (default: latest)")]
NOpt = Annotated[int | None, typer.Option("-n", "--n", min=1, help="number of tasks")]
TestOpt = Annotated[bool, typer.Option("--test", help="the profile's test size (100 or 10)")]
FullOpt = Annotated[bool, typer.Option("--full", "--max",
                                      help="TOTAL_AGENTS tasks (--max: the 100k script's name)")]
YesOpt = Annotated[bool, typer.Option("--yes", help="no 5 s pause before --full")]


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class Fail(Exception):
    """A clean, one-line failure with an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def settings_for(profile: str | None) -> Settings:
    if profile is not None:
        os.environ["SWARM_PROFILE"] = profile  # children and the Celery app see it too
    return load_settings()


def task_count(s: Settings, n: int | None, test: bool, full: bool) -> int:
    if sum([n is not None, test, full]) > 1:
        raise Fail("choose one of -n, --test and --full")
    if test:
        return s.test_tasks
    if full:
        return s.total_agents
    count = s.default_tasks if n is None else n
    if count > s.total_agents:
        err.print(f"note: -n {count:,} capped at TOTAL_AGENTS = {s.total_agents:,}")
        count = s.total_agents
    return count


def pause_before_full(count: int) -> None:
    err.print(f"--full: {count:,} paid tasks; starting in 5 s (Ctrl+C to cancel)")
    time.sleep(5)


def run_id_or_latest(r: redis.Redis, run_id: str | None) -> str:
    if run_id is None:
        run_id = runs.latest(r)
        if run_id is None:
            raise Fail("no runs yet: start one with `swarm run` or `swarm enqueue`")
    elif not runs.exists(r, run_id):
        raise Fail(f"no run {run_id!r}")
    return run_id


def print_checks(checks: list[Any]) -> bool:
    ok = True
    for c in checks:
        mark = "ok " if c.ok else ("warn" if c.warning else "FAIL")
        out.print(f"  [{mark}] {c.name}: {c.message}", highlight=False, markup=False)
        ok = ok and (c.ok or c.warning)
    return ok


def first_failure(checks: list[Any]) -> str:
    return next(c.message for c in checks if not c.ok and not c.warning)


@app.command()
def validate(n: NOpt = None, test: TestOpt = False, full: FullOpt = False,
             profile: ProfileOpt = None) -> None:
    """Check settings, Redis, output folder and prices; print the capacity report."""
    from swarm.validate import capacity_report, checks, measured

    s = settings_for(profile)
    count = task_count(s, n, test, full)
    with redis_for(s) as r:
        result = checks(s, count, r, workers_online=_workers_online)
        seen = measured(r, s.kimi_model)
    ok = print_checks(result)
    for line in capacity_report(s, count, seen):
        out.print("  " + line, highlight=False, markup=False)
    if not ok:
        raise Fail(first_failure(result))


def _workers_online() -> int:
    from workers.celery_app import app as celery_app

    return len(celery_app.control.ping(timeout=1.0) or [])


@app.command()
def enqueue(n: NOpt = None, test: TestOpt = False, full: FullOpt = False,
            profile: ProfileOpt = None, run_id: RunIdOpt = None,
            yes: YesOpt = False,
            resume: Annotated[bool, typer.Option(
                "--resume", help="reopen the stopped run --run-id with the current budget")
            ] = False) -> None:
    """Create a run in the shared Redis and queue its first window of tasks."""
    from swarm.validate import capacity_report, checks, measured

    s = settings_for(profile)
    if resume:
        if run_id is None:
            raise Fail("--resume needs --run-id")
        if n is not None or test or full:
            raise Fail("--resume continues the run's own slots; drop -n, --test and --full")
        _resume(s, run_id)
        return
    count = task_count(s, n, test, full)
    with redis_for(s) as r:
        result = checks(s, count, r, workers_online=_workers_online)
        if not print_checks(result):
            raise Fail(first_failure(result))
        for line in capacity_report(s, count, measured(r, s.kimi_model)):
            out.print("  " + line, highlight=False, markup=False)
        if full and not yes:
            pause_before_full(count)
        from swarm.producer import Feeder, start_run
        from workers.tasks import publish

        spec = start_run(r, s, count, Feeder(r, publish), run_id=run_id)
    out.print(f"run {spec.run_id}: {count:,} tasks, window {spec.window:,}; "
              f"watch with: swarm stats --watch --run-id {spec.run_id}", highlight=False)


def _resume(s: Settings, run_id: str) -> None:
    from swarm.producer import Feeder, resume_run
    from swarm.validate import checks
    from workers.tasks import publish

    with redis_for(s) as r:
        if not runs.exists(r, run_id):
            raise Fail(f"no run {run_id!r}")
        total = runs.spec(r, run_id).total
        result = checks(s, total, r, workers_online=_workers_online)
        if not print_checks(result):
            raise Fail(first_failure(result))
        queued = resume_run(r, s, run_id, Feeder(r, publish))
    out.print(f"run {run_id} resumed with budget ${s.budget_usd:,.2f}: {queued:,} tasks queued; "
              f"done tasks stay done", highlight=False)


@app.command()
def run(n: NOpt = None, test: TestOpt = False, full: FullOpt = False,
        profile: ProfileOpt = None, run_id: RunIdOpt = None,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                             help="worker processes")] = 2,
        sim_latency_ms: Annotated[float, typer.Option(min=0)] = 400.0,
        sim_jitter_ms: Annotated[float, typer.Option(min=0)] = 800.0,
        yes: YesOpt = False) -> None:
    """All in one: Redis, simulator (without a key), workers, beat, enqueue, live stats."""
    from swarm.runner import run_all

    s = settings_for(profile)
    count = task_count(s, n, test, full)
    if full and not yes and not s.simulated:
        pause_before_full(count)
    code = run_all(s, count, run_id=run_id, workers=workers,
                   sim_latency_ms=sim_latency_ms, sim_jitter_ms=sim_jitter_ms, console=out)
    raise typer.Exit(code)


@app.command()
def stats(run_id: RunIdOpt = None, watch: Annotated[bool, typer.Option("--watch")] = False,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          profile: ProfileOpt = None) -> None:
    """The run's counters: progress, cost, revenue, rate, ETA, per category."""
    from swarm.render import stats_block
    from swarm.stats import snapshot

    s = settings_for(profile)
    with redis_for(s) as r:
        rid = run_id_or_latest(r, run_id)
        if as_json and not watch:
            print(json.dumps(snapshot(r, rid)))
            return
        if not watch:
            out.print(stats_block(snapshot(r, rid)))
            return
        with Live(stats_block(snapshot(r, rid)), console=out, refresh_per_second=2) as live:
            while True:
                st = snapshot(r, rid)
                live.update(stats_block(st))
                if st["state"] in runs.FINAL_STATES and st["in_flight"] == 0:
                    break
                time.sleep(1)


@app.command()
def insights(run_id: RunIdOpt = None, profile: ProfileOpt = None) -> None:
    """The latest review of the run (Claude's or the rule-based fallback's)."""
    from swarm.orchestrator import latest_insight

    s = settings_for(profile)
    with redis_for(s) as r:
        rid = run_id_or_latest(r, run_id)
    rec = latest_insight(Path(s.output_dir), rid)
    if rec is None:
        raise Fail(f"no review of run {rid} yet (one runs every ORCHESTRATE_EVERY_S)")
    out.print_json(json.dumps({k: rec[k] for k in ("run_id", "seq", "at", "source", "applied",
                                                   "rejected", "cost_usd", "decision",
                                                   "weights_after")}))


@app.command()
def export(run_id: RunIdOpt = None,
           fmt: Annotated[Format, typer.Option("--format")] = Format.jsonl,
           profile: ProfileOpt = None) -> None:
    """Merge a run's outputs into one file, de-duplicated by task_id."""
    from swarm.outputs import export as do_export

    s = settings_for(profile)
    with redis_for(s) as r:
        rid = run_id_or_latest(r, run_id)
    dest = Path(s.output_dir) / "exports" / f"{rid}.{fmt.value}"
    count = do_export(Path(s.output_dir), rid, fmt.value, dest)
    out.print(f"{count:,} records → {dest}", highlight=False)


@app.command("retry-failed")
def retry_failed(run_id: RunIdOpt = None, profile: ProfileOpt = None) -> None:
    """Queue the run's failed tasks again."""
    from swarm.producer import retry_failed as do_retry
    from workers.tasks import publish

    s = settings_for(profile)
    with redis_for(s) as r:
        rid = run_id_or_latest(r, run_id)
        count = do_retry(r, rid, publish)
    out.print(f"run {rid}: {count:,} failed task(s) queued again", highlight=False)


@app.command()
def stop(run_id: RunIdOpt = None, profile: ProfileOpt = None) -> None:
    """Stop a run: no new calls; queued tasks are counted as skipped."""
    from swarm.limits import Gate

    s = settings_for(profile)
    with redis_for(s) as r:
        rid = run_id_or_latest(r, run_id)
        stopped = Gate(r).stop(rid, "stopped")
    out.print(f"run {rid}: " + ("stopped" if stopped else "was not running"), highlight=False)


@app.command()
def flower(profile: ProfileOpt = None) -> None:
    """Flower on the run's broker, with basic auth (FLOWER_BASIC_AUTH) and bounded memory."""
    s = settings_for(profile)
    if s.flower_basic_auth is None or ":" not in s.flower_basic_auth.get_secret_value():
        raise Fail("FLOWER_BASIC_AUTH is not set (user:password); Flower will not start "
                   "without authentication")
    env = dict(os.environ, FLOWER_BASIC_AUTH=s.flower_basic_auth.get_secret_value())
    env.setdefault("FLOWER_MAX_TASKS", "10000")
    env.setdefault("FLOWER_PORT", str(s.flower_port))
    args = [sys.executable, "-m", "celery", "-A", "workers", "flower"]
    os.execvpe(args[0], args, env)


@app.command()
def metrics(port: Annotated[int, typer.Option(min=1, max=65535)] = 9108,
            host: Annotated[str, typer.Option(help="0.0.0.0 in a container")] = "127.0.0.1",
            profile: ProfileOpt = None) -> None:
    """Serve Prometheus metrics of the latest runs on http://HOST:PORT/metrics."""
    from prometheus_client import CollectorRegistry, start_http_server

    from swarm.metrics import SwarmCollector

    s = settings_for(profile)
    with redis_for(s) as r:
        registry = CollectorRegistry()
        registry.register(SwarmCollector(r))
        start_http_server(port, addr=host, registry=registry)
        out.print(f"metrics on http://{host}:{port}/metrics", highlight=False)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


@app.command()
def simulate(port: Annotated[int, typer.Option(min=0, max=65535)] = 8787,
             latency_ms: Annotated[float, typer.Option(min=0)] = 50.0,
             jitter_ms: Annotated[float, typer.Option(min=0)] = 20.0,
             api_key: Annotated[str | None, typer.Option(
                 envvar="SIM_API_KEY", help="only this key is accepted")] = None,
             seed: int = 0,
             rpm: Annotated[int | None, typer.Option(min=1, help="requests per window")] = None,
             tpm: Annotated[int | None, typer.Option(min=1, help="tokens per window")] = None,
             concurrency: Annotated[int | None, typer.Option(min=1)] = None,
             window_s: Annotated[float, typer.Option(min=0.1)] = 60.0,
             error_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
             hang_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
             hang_s: Annotated[float, typer.Option(min=0)] = 30.0,
             drop_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
             drop_billed: Annotated[bool, typer.Option(
                 help="dropped requests were billed (their answer lost on the way)")] = False,
             claude_error_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
             quota_usd: Annotated[float | None, typer.Option(min=0)] = None) -> None:
    """The provider simulator (Moonshot and Anthropic APIs) on 127.0.0.1, with the account's
    limits (answered 429 with Retry-After like Moonshot) and seeded faults."""
    from swarm.sim.limits import Faults, Limits
    from swarm.sim.server import SimConfig, serve

    def ready(bound: int) -> None:
        print(f"simulator listening on http://127.0.0.1:{bound}", flush=True)

    config = SimConfig(
        latency_ms=latency_ms, jitter_ms=jitter_ms, api_key=api_key, seed=seed,
        limits=Limits(rpm=rpm, tpm=tpm, concurrency=concurrency, window_s=window_s),
        faults=Faults(error_rate=error_rate, hang_rate=hang_rate, hang_s=hang_s,
                      drop_rate=drop_rate, drop_billed=drop_billed,
                      claude_error_rate=claude_error_rate,
                      quota_micro=None if quota_usd is None else int(quota_usd * 1e6)))
    with contextlib.suppress(KeyboardInterrupt):
        serve(config, "127.0.0.1", port, on_ready=ready)


def main(argv: list[str] | None = None) -> None:
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="swarm", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err.print("swarm: interrupted", highlight=False)
        code = 130
    except TyperException as exc:  # usage errors: bad option, bad value, missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help(), file=sys.stderr)
        else:
            fmt = getattr(exc, "format_message", None)
            message = fmt() if callable(fmt) else str(exc)
            err.print(f"swarm: error: {message}", highlight=False, markup=False)
        code = 2
    except (Fail, SwarmError) as exc:
        err.print(f"swarm: error: {redact(str(exc))}", highlight=False, markup=False)
        code = exc.code if isinstance(exc, Fail) else 2
    except KeyboardInterrupt:
        err.print("swarm: interrupted", highlight=False)
        code = 130
    sys.exit(code)

