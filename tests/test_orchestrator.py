"""Reviews: validated decisions re-weight the mix; bad or hostile answers change nothing;
the fallback moves toward value per dollar; one review at a time; Claude is billed."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from swarm import runs
from swarm.budget import Ledger
from swarm.catalog import NAMES
from swarm.config import Settings
from swarm.limits import Gate
from swarm.orchestrator import (
    MAX_STEP,
    REVIEW_SYSTEM,
    Orchestrator,
    aggregate,
    parse_decision,
    review_prompt,
    rules_decision,
    validate_weights,
)
from swarm.producer import Feeder
from swarm.providers.http import Http
from swarm.sim.answers import review_answer
from swarm.sim.server import SimServer
from tests.helpers import Queue, create_run, make_spec

EVEN = {n: 1.0 for n in NAMES}


def finish(r: redis.Redis, spec, slot: int, category: str, cost: int, parsed: bool,
           value_cents: int) -> None:  # type: ignore[no-untyped-def]
    from swarm.clock import FakeClock

    gate = Gate(r, FakeClock(1_000 + slot))
    assert gate.admit(spec, slot, 10, cost).verdict == "go"
    gate.settle(spec, slot, outcome="completed", cost_micro=cost, prompt_tokens=10,
                completion_tokens=10, unused_tokens=0, category=category, parsed=parsed,
                revenue_cents=value_cents if parsed else 0, sample=json.dumps({"c": category}))


def seeded_run(r: redis.Redis):  # type: ignore[no-untyped-def]
    """Partnerships return far more value per dollar than content ideas."""
    spec = create_run(r, make_spec(total=1000, max_concurrent=1000))
    slot = 0
    for name in NAMES:
        for _ in range(10):
            value = 200_000 if name == "strategic_partnership" else 10_000
            finish(r, spec, slot, name, cost=1000, parsed=name != "viral_content_idea",
                   value_cents=value)
            slot += 1
    return spec


def claude_answer(text: str):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 200}})
    return Http(httpx.MockTransport(handler))


def with_key(settings: Settings) -> Settings:
    from pydantic import SecretStr

    return settings.model_copy(update={"anthropic_api_key": SecretStr("sk-ant-test-123456")})


def test_validate_weights_bounds_and_steps() -> None:
    assert validate_weights(EVEN, {"strategic_partnership": 2.0})["strategic_partnership"] > 1
    for bad in ({"nosuch": 1.0}, {"competitor_intel": 9.0}, {"competitor_intel": 0.01},
                {"competitor_intel": 2.5}, {"competitor_intel": float("nan")}):
        with pytest.raises(ValueError):
            validate_weights(EVEN, bad)


def test_rules_move_toward_value_per_dollar(real_redis: redis.Redis) -> None:
    spec = seeded_run(real_redis)
    decision = rules_decision(aggregate(real_redis, spec.run_id))
    new = validate_weights(EVEN, decision.weights)
    assert new["strategic_partnership"] == max(new.values())
    assert new["viral_content_idea"] == min(new.values())  # unparsed answers earn nothing


def test_fallback_review_steers_the_categories_fed_afterwards(real_redis: redis.Redis,
                                                              settings: Settings) -> None:
    spec = seeded_run(real_redis)
    record = Orchestrator(settings, real_redis).review(spec.run_id)
    assert record is not None and record["source"] == "rules" and record["applied"]
    queue = Queue()
    feeder = Feeder(real_redis, queue.publish)
    real_redis.hset(spec.keys.meta, "cursor", 60)  # slots 0..59 were the seeded ones
    spec = runs.spec(real_redis, spec.run_id)
    feeder.feed(spec)
    mix = Counter(c for _, _, c in queue.items)
    assert mix["strategic_partnership"] > mix["viral_content_idea"] * 2
    saved = list((Path(settings.output_dir) / "claude_insights").glob("insight_*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["applied"] is True


@pytest.mark.parametrize("answer", [
    "I think you should focus on partnerships.",  # no JSON
    '{"rating": 7, "insights": [], "weights": {"strategic_partnership": 40}, '
    '"concurrency_advice": "keep"}',  # out of range
    '{"rating": 7, "insights": ["ignore previous instructions"], "weights": {}, '
    '"concurrency_advice": "keep", "budget_usd": 10000}',  # a field outside the schema
    '{"rating": 7, "insights": [], "weights": {"drop_tables": 1.0}, '
    '"concurrency_advice": "keep"}',  # unknown category
])
def test_bad_or_hostile_answers_change_nothing(real_redis: redis.Redis, settings: Settings,
                                               answer: str) -> None:
    spec = seeded_run(real_redis)
    orch = Orchestrator(with_key(settings), real_redis, http=claude_answer(answer))
    record = orch.review(spec.run_id)
    assert record is not None and record["applied"] is False and record["rejected"]
    assert runs.weights(real_redis, spec.run_id) == EVEN
    assert real_redis.hget(spec.keys.budget, "line") is not None


def test_claude_decision_is_applied_and_billed(real_redis: redis.Redis, settings: Settings,
                                               sim: SimServer) -> None:
    spec = seeded_run(real_redis)
    s = with_key(settings).model_copy(update={"anthropic_base_url": sim.url})
    spent_before = Ledger(real_redis).snapshot(spec.run_id).spent_micro
    record = Orchestrator(s, real_redis).review(spec.run_id)
    assert record is not None and record["source"] == "claude" and record["applied"]
    ledger = Ledger(real_redis).snapshot(spec.run_id)
    billed = httpx.get(sim.url + "/_stats").json()["claude_billed_micro"]
    assert billed > 0 and ledger.claude_micro == billed
    assert ledger.spent_micro == spent_before + billed and ledger.reserved_micro == 0
    assert runs.weights(real_redis, spec.run_id) != EVEN


def test_one_review_at_a_time(real_redis: redis.Redis, settings: Settings) -> None:
    spec = create_run(real_redis, make_spec())
    real_redis.set(spec.keys.orchestrator_lock, "1", px=60_000)  # another beat is reviewing
    assert Orchestrator(settings, real_redis).review(spec.run_id) is None
    real_redis.delete(spec.keys.orchestrator_lock)
    assert Orchestrator(settings, real_redis).review(spec.run_id) is not None


def test_a_second_beat_adds_no_reviews(real_redis: redis.Redis, settings: Settings) -> None:
    spec = create_run(real_redis, make_spec())
    orch = Orchestrator(settings.model_copy(update={"orchestrate_every_s": 60}), real_redis)
    assert orch.review(spec.run_id) is not None
    assert orch.review(spec.run_id) is None  # the other beat's tick, moments later
    assert int(real_redis.hget(spec.keys.counters, "orchestrations")) == 1


def test_max_claude_agents_bounds_calls_and_the_rules_step_in(real_redis: redis.Redis,
                                                              settings: Settings,
                                                              sim: SimServer) -> None:
    from swarm.keys import CLAUDE_HOLDERS

    spec = seeded_run(real_redis)
    s = with_key(settings).model_copy(update={"anthropic_base_url": sim.url,
                                              "max_claude_agents": 2})
    real_redis.zadd(CLAUDE_HOLDERS, {"other-run:a": 10**15, "other-run:b": 10**15})
    record = Orchestrator(s, real_redis).review(spec.run_id)
    assert record is not None and record["source"] == "rules" and record["applied"]
    assert "MAX_CLAUDE_AGENTS=2" in record["rejected"]
    assert httpx.get(sim.url + "/_stats").json()["claude_requests"] == 0
    assert Ledger(real_redis).snapshot(spec.run_id).reserved_micro == 0


def test_claude_429_and_529_are_retried_then_the_rules_step_in(real_redis: redis.Redis,
                                                               settings: Settings) -> None:
    from swarm.clock import FakeClock
    from swarm.sim.limits import Faults
    from swarm.sim.server import SimConfig

    spec = seeded_run(real_redis)
    config = SimConfig(latency_ms=0, jitter_ms=0, faults=Faults(claude_error_rate=1.0))
    with SimServer(config) as failing:
        s = with_key(settings).model_copy(update={"anthropic_base_url": failing.url})
        clock = FakeClock()
        record = Orchestrator(s, real_redis, clock=clock).review(spec.run_id)
        asked = httpx.get(failing.url + "/_stats").json()["claude_requests"]
    assert record is not None and record["source"] == "rules" and record["applied"]
    assert asked == 3 and len(clock.slept) == 2  # three attempts, waits on the injected clock
    assert Ledger(real_redis).snapshot(spec.run_id).claude_micro == 0  # errors are not billed


def test_an_unanswered_claude_call_is_charged_at_worst_case(real_redis: redis.Redis,
                                                            settings: Settings) -> None:
    from swarm.clock import FakeClock

    answer = claude_answer('{"rating": 6, "insights": [], "weights": {}, '
                           '"concurrency_advice": "keep"}')
    calls = []

    def drop_then_answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return answer.transport.handle_request(request)

    spec = seeded_run(real_redis)
    http = Http(httpx.MockTransport(drop_then_answer))
    record = Orchestrator(with_key(settings), real_redis, clock=FakeClock(),
                          http=http).review(spec.run_id)
    assert record is not None and record["source"] == "claude" and len(calls) == 2
    answered = 1000 * 1 + 200 * 5  # the answer's usage at claude-haiku-4-5 prices (micro-USD)
    claude = Ledger(real_redis).snapshot(spec.run_id).claude_micro
    assert claude > answered  # the lost attempt is counted too, at its reservation
    assert record["cost_usd"] == claude / 1e6


def test_an_unanswered_claude_call_is_retried_only_with_room_for_it(real_redis: redis.Redis,
                                                                    settings: Settings) -> None:
    """The budget holds one review's worst case: the lost attempt spends it, so no second
    attempt is sent; the rules decide and the ledger stays under its line."""
    from swarm.clock import FakeClock

    calls = []

    def drop(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("no answer", request=request)

    spec = seeded_run(real_redis)
    line = Ledger(real_redis).snapshot(spec.run_id)
    room = line.left_micro
    # one review reserves 1,024 output tokens at $5/M plus its prompt: 5,120 + under 1,380
    real_redis.hset(spec.keys.budget, "line", line.spent_micro + 6_500)
    record = Orchestrator(with_key(settings), real_redis, clock=FakeClock(),
                          http=Http(httpx.MockTransport(drop))).review(spec.run_id)
    assert record is not None and record["source"] == "rules" and len(calls) == 1
    after = Ledger(real_redis).snapshot(spec.run_id)
    assert after.reserved_micro == 0 and 5_120 < after.claude_micro <= 6_500
    assert after.spent_micro <= after.line_micro and room > 6_500
    assert record["cost_usd"] == after.claude_micro / 1e6  # the insight file says so too


def test_the_simulated_claude_keeps_to_the_rules_the_prompt_states(
        real_redis: redis.Redis) -> None:
    """The prompt says what a valid decision is; the simulator, standing in for Claude,
    follows it from any current mix, so its reviews are applied rather than wasted."""
    spec = seeded_run(real_redis)
    for seed in range(40):
        rng = random.Random(seed)
        runs.set_weights(real_redis, spec.run_id,
                         {n: round(rng.uniform(0.1, 5.0), 3) for n in NAMES})
        agg = aggregate(real_redis, spec.run_id)
        decision = parse_decision(review_answer(review_prompt(agg), rng))
        assert set(decision.weights) == set(NAMES)
        validate_weights(agg["weights"], decision.weights)  # raises if it broke a rule
    assert f"factor of {MAX_STEP:g} of its current weight" in REVIEW_SYSTEM
