"""Pre-flight checks (run before anything is queued) and the capacity report.

Each check gives (ok, message). A failed check stops the command with exit 2 and the
reason; nothing is queued or spent.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from swarm.budget import worst_case_micro
from swarm.catalog import CATALOG, estimate_prompt_tokens, messages_for
from swarm.config import Settings
from swarm.keys import RUNS
from swarm.redisconn import text
from swarm.stats import snapshot

# Assumptions of the capacity estimate until a run has measured data.
ASSUMED_LATENCY_S = 6.0  # one moonshot-v1-8k answer of a few hundred tokens
ASSUMED_COMPLETION_SHARE = 0.6  # completion tokens as a share of max_tokens
MIN_MEASURED_CALLS = 20  # answered calls a run needs before its figures replace these


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    warning: bool = False  # a failed warning does not stop the run


def worst_task_micro(settings: Settings) -> int:
    price = settings.kimi_price()
    assert price is not None
    est = max(estimate_prompt_tokens(messages_for(t, 0, 0)) for t in CATALOG)
    return worst_case_micro(price, est, settings.kimi_max_tokens)


def checks(settings: Settings, n: int, r: redis.Redis | None,
           workers_online: Callable[[], int] | None = None) -> list[Check]:
    out: list[Check] = []
    out.append(Check("tasks", n > 0, f"N = {n:,}" if n > 0 else f"N must be at least 1 (got {n})"))
    out.append(Check("concurrency", settings.max_concurrent > 0,
                     f"MAX_CONCURRENT = {settings.max_concurrent}"))
    if settings.moonshot_api_key is not None:
        out.append(Check("api key", True, "MOONSHOT_API_KEY is set"))
    else:
        out.append(Check("api key", False, "MOONSHOT_API_KEY is not set (use `swarm run`, which "
                         "starts the simulator, or set the key)"))
    price = settings.kimi_price()
    out.append(Check(
        "price", price is not None,
        f"{settings.kimi_model}: ${price.input}/M in, ${price.output}/M out ({price.source})"
        if price else f"KIMI_MODEL {settings.kimi_model!r} has no known price; set "
        "KIMI_PRICE_IN and KIMI_PRICE_OUT (USD per 1M tokens)"))
    if settings.anthropic_api_key is not None and settings.anthropic_price() is None:
        out.append(Check("claude price", False,
                         f"ANTHROPIC_MODEL {settings.anthropic_model!r} has no known price; set "
                         "ANTHROPIC_PRICE_IN and ANTHROPIC_PRICE_OUT"))
    if price is not None:
        worst = worst_task_micro(settings)
        ok = worst <= settings.stop_line_micro
        out.append(Check("budget", ok, f"one task costs at most ${worst / 1e6:.6f}; stop line "
                         f"${settings.stop_line_micro / 1e6:.2f} (BUDGET_USD x BUDGET_STOP_RATIO)"
                         + ("" if ok else ": the budget cannot pay for a single task")))
    out.append(_output_dir(Path(settings.output_dir)))
    if r is not None:
        out.append(_redis_policy(r))
    if workers_online is not None:
        count = workers_online()
        out.append(Check("workers", count > 0, f"{count} worker(s) online" if count else
                         "no worker online yet: tasks wait in the queue until one starts",
                         warning=True))
    return out


def _output_dir(path: Path) -> Check:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        return Check("output dir", False, f"OUTPUT_DIR {path} is not writable: {exc.strerror}")
    return Check("output dir", True, f"OUTPUT_DIR {path} is writable")


def _redis_policy(r: redis.Redis) -> Check:
    try:
        policy = r.config_get("maxmemory-policy").get("maxmemory-policy", "unknown")
    except redis.ResponseError:
        return Check("redis", True, "Redis reachable (CONFIG GET not allowed; make sure "
                     "maxmemory-policy is noeviction)", warning=True)
    ok = policy == "noeviction"
    return Check("redis", ok, f"Redis reachable, maxmemory-policy {policy}" + (
        "" if ok else ": must be noeviction, or Redis may silently drop the run's state"))


@dataclass(frozen=True)
class Measured:
    """What an earlier run of the same model measured, for the capacity estimate."""

    run_id: str
    calls: int
    latency_s: float
    prompt_tokens: int
    completion_tokens: int


def measured(r: redis.Redis, model: str, min_calls: int = MIN_MEASURED_CALLS) -> Measured | None:
    """The latest run of ``model`` with at least ``min_calls`` answered calls."""
    for run_id in (text(x) for x in r.zrevrange(RUNS, 0, 9)):
        st = snapshot(r, run_id)
        if st["model"] == model and st["completed"] >= min_calls:
            return Measured(run_id, st["completed"], st["avg_call_s"],
                            round(st["avg_prompt_tokens"]), round(st["avg_completion_tokens"]))
    return None


def capacity_report(settings: Settings, n: int, seen: Measured | None = None) -> list[str]:
    """Duration and cost, with the assumptions they rest on (a measured run's when given)."""
    price = settings.kimi_price()
    if seen is not None:
        latency, prompt, completion = seen.latency_s, seen.prompt_tokens, seen.completion_tokens
        basis = f"measured on run {seen.run_id} over {seen.calls:,} calls"
    else:
        latency = ASSUMED_LATENCY_S
        prompt = max(estimate_prompt_tokens(messages_for(t, 0, 0)) for t in CATALOG) // 2
        completion = int(settings.kimi_max_tokens * ASSUMED_COMPLETION_SHARE)
        basis = "assumed; a run of this model measures them"
    per_task = prompt + completion
    rates = {
        "RPM_LIMIT": settings.rpm_limit / 60,
        "TPM_LIMIT": settings.tpm_limit / 60 / per_task,
        "MAX_CONCURRENT": settings.max_concurrent / max(latency, 0.001),
    }
    bound = min(rates, key=lambda k: rates[k])
    rate = rates[bound]
    lines = [
        f"tasks {n:,} · concurrency {settings.max_concurrent} · RPM {settings.rpm_limit:,} · "
        f"TPM {settings.tpm_limit:,}",
        f"est. duration {_hours(n / rate)} at {rate:.1f} tasks/s (bound by {bound}; "
        f"{latency:.2f} s per call and {per_task} tokens per task, {basis})",
    ]
    if price is not None:
        cost = n * price.cost_micro(prompt, completion) / 1e6
        lines.append(
            f"est. cost ${cost:,.2f} ({prompt} prompt + {completion} completion tokens "
            f"per task at ${price.input}/${price.output} per 1M); "
            f"budget ${settings.budget_usd:,.2f}, new calls stop at "
            f"${settings.stop_line_micro / 1e6:,.2f}")
    return lines


def _hours(seconds: float) -> str:
    """Hours with two decimals, as the seed's report gave them; seconds under 6 minutes."""
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"
