"""What users watch: rate and ETA on a fixed clock, revenue from parsed answers only,
Prometheus metrics, JSON logs without secrets."""

from __future__ import annotations

import json
import logging
import urllib.request

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from swarm.clock import FakeClock
from swarm.config import Settings
from swarm.embedded import free_port
from swarm.errors import register_secret
from swarm.limits import Gate
from swarm.logs import setup_logging
from swarm.metrics import SwarmCollector
from swarm.outputs import read_records
from swarm.stats import recent_rate, snapshot
from tests.harness import Harness, Provider
from tests.helpers import create_run, make_spec


def finish_at(r: redis.Redis, spec, clock: FakeClock, slot: int) -> None:  # type: ignore[no-untyped-def]
    gate = Gate(r, clock)
    assert gate.admit(spec, slot, 10, 1).verdict == "go"
    gate.settle(spec, slot, outcome="completed", cost_micro=1, prompt_tokens=1,
                completion_tokens=1, unused_tokens=0, category="competitor_intel",
                parsed=True, revenue_cents=20_000)


def test_rate_over_the_last_minute_and_eta_from_it(real_redis: redis.Redis) -> None:
    clock = FakeClock(start_ms=1_000_000_000)
    spec = create_run(real_redis, make_spec(total=1000, max_concurrent=1000),
                      now_ms=clock.now_ms())
    for slot in range(100):  # 100 tasks in the first 10 s: 10/s
        clock.advance(100)
        finish_at(real_redis, spec, clock, slot)
    clock.advance(120_000)  # then two quiet minutes
    for slot in range(100, 160):  # and 60 tasks in the last 30 s: 2/s
        clock.advance(500)
        finish_at(real_redis, spec, clock, slot)
    st = snapshot(real_redis, spec.run_id, clock)
    assert st["elapsed_s"] == 160.0
    # the last minute's buckets: 60 tasks over the 60 s ending now (the quiet part included)
    assert st["rate_per_s"] == pytest.approx(60 / 60, rel=0.1)
    assert st["eta_s"] == pytest.approx((1000 - 160) / st["rate_per_s"], rel=0.01)
    assert recent_rate({}, now_ms=10_000, since_ms=10_000) is None  # no time has passed


def test_eta_is_none_when_the_run_is_over(real_redis: redis.Redis) -> None:
    clock = FakeClock()
    spec = create_run(real_redis, make_spec(total=1), now_ms=clock.now_ms())
    clock.advance(2000)
    finish_at(real_redis, spec, clock, 0)
    st = snapshot(real_redis, spec.run_id, clock)
    assert (st["state"], st["eta_s"], st["rate_per_s"]) == ("done", None, 0.5)


def test_revenue_counts_parsed_answers_only(real_redis: redis.Redis, settings: Settings,
                                            clock: FakeClock) -> None:
    def prose(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "moonshot-v1-8k",
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": "Sure! Here are some ideas..."},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    h = Harness(real_redis, settings, clock, Provider([prose] * 4))
    run_id = h.start(10)
    h.drain()
    records = list(read_records(settings.output_dir, run_id))
    parsed = [r for r in records if r["parsed"] is not None]
    assert len(parsed) == 6
    from swarm.catalog import BY_NAME

    expected = sum(BY_NAME[r["category"]].value_eur * 0.10 for r in parsed)
    st = snapshot(real_redis, run_id, clock)
    assert st["est_revenue"] == pytest.approx(expected) and st["parsed"] == 6
    assert st["roi"] == pytest.approx(expected / st["cost_usd"], rel=1e-3)


def test_metrics_scrape(real_redis: redis.Redis, settings: Settings, clock: FakeClock) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    h = Harness(real_redis, settings, clock, Provider([drop]))  # one attempt gets no answer
    run_id = h.start(12)
    h.drain()
    h.agent.gate.cooldown(h.agent.spec(run_id), 2.0)  # one 429 answered with Retry-After: 2
    registry = CollectorRegistry()
    registry.register(SwarmCollector(real_redis))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(generate_latest(registry).decode())
               for s in fam.samples}
    run = ("run_id", run_id)
    st = snapshot(real_redis, run_id, clock)
    assert samples[("swarm_tasks", (run, ("state", "completed")))] == 12
    assert samples[("swarm_cost_usd_total", (("provider", "kimi"), run))] == st["cost_kimi_usd"]
    assert samples[("swarm_tokens_total", (("kind", "prompt"), run))] == st["prompt_tokens"]
    assert samples[("swarm_budget_left_usd", (run,))] == pytest.approx(
        settings.budget_usd * 0.95 - st["cost_usd"])
    assert samples[("swarm_rate_limited_total", (run,))] == 1
    assert samples[("swarm_cooldown_seconds_total", (run,))] == 2.0
    assert samples[("swarm_run_state", (run, ("state", "done")))] == 1
    assert samples[("swarm_unanswered_total", (run,))] == 1
    assert samples[("swarm_duplicates_total", (run,))] == 0
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'swarm_tasks{{run_id="{run_id}",state="completed"}} 12.0' in body


def test_json_logs_never_show_a_secret(settings: Settings,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    register_secret("sk-topsecret-999999")
    setup_logging(settings.model_copy(update={"log_format": "json"}))
    logging.getLogger("swarm.test").warning("calling with key %s", "sk-topsecret-999999")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["level"] == "WARNING" and event["logger"] == "swarm.test"
    assert "sk-topsecret" not in line and "***" in event["msg"]
    logging.getLogger().handlers.clear()
