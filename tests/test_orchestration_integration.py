"""Reviews on the beat during a real run, every second: with a key (the simulator answering
as Claude) they are billed to the run's ledger, counted and applied; without a key the
labelled rule-based fallback does the same; either way the mix of slots fed afterwards
follows the new weights."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from swarm import runs
from swarm.catalog import default_weights
from swarm.embedded import RedisServer
from swarm.outputs import read_records
from swarm.sim.server import SimConfig, SimServer
from swarm.stats import snapshot
from tests.helpers import base_env, swarm
from tests.test_integration import KEY

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("with_claude", [True, False], ids=["claude", "fallback"])
def test_reviews_bill_count_and_steer(real_redis: redis.Redis, redis_server: RedisServer,
                                      tmp_path: Path, with_claude: bool) -> None:
    with SimServer(SimConfig(latency_ms=200, jitter_ms=0)) as sim:
        extra = {"ANTHROPIC_API_KEY": "sk-ant-" + KEY, "ANTHROPIC_BASE_URL": sim.url} \
            if with_claude else {}
        env = base_env(tmp_path, REDIS_URL=redis_server.url, MOONSHOT_API_KEY=KEY,
                       KIMI_BASE_URL=sim.url + "/v1", MAX_CONCURRENT="16", WINDOW_SIZE="32",
                       ORCHESTRATE_EVERY_S="1", **extra)
        done = swarm(["run", "-n", "600", "--workers", "2"], env, tmp_path)
        bill = httpx.get(sim.url + "/_stats").json()
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = real_redis.zrevrange("swarm:runs", 0, 0)[0].decode()
    st = snapshot(real_redis, run_id)
    assert st["completed"] == 600 and st["orchestrations"] >= 2
    files = sorted((tmp_path / "out" / "claude_insights").glob(f"insight_{run_id}_*.json"))
    reviews = [json.loads(f.read_text()) for f in files]
    assert [r["seq"] for r in reviews] == list(range(1, st["orchestrations"] + 1))
    applied = [r for r in reviews if r["applied"]]
    assert applied and runs.weights(real_redis, run_id) == applied[-1]["weights_after"]
    assert runs.weights(real_redis, run_id) != default_weights()
    if with_claude:
        assert {r["source"] for r in reviews} == {"claude"}
        assert all(r["applied"] for r in reviews)  # told the rules, it keeps to them
        assert bill["claude_requests"] == len(reviews)
        assert round(st["cost_claude_usd"] * 1e6) == bill["claude_billed_micro"] > 0
        assert st["cost_usd"] == pytest.approx(st["cost_kimi_usd"] + st["cost_claude_usd"])
    else:
        assert {r["source"] for r in reviews} == {"rules"}
        assert st["cost_claude_usd"] == 0 and bill["claude_requests"] == 0
        # the rules favour the most value per dollar: partnerships (EUR 20,000 a success)
        cut = next(r["cursor"] for r in applied if r["weights_after"] != default_weights())
        cats = {rec["index"]: rec["category"] for rec in read_records(tmp_path / "out", run_id)}
        before = Counter(c for i, c in cats.items() if i < cut)
        after = Counter(c for i, c in cats.items() if i >= cut)
        share = lambda mix: mix["strategic_partnership"] / max(1, sum(mix.values()))  # noqa: E731
        assert share(after) > 1.3 * share(before)
        assert after["viral_content_idea"] / sum(after.values()) < \
            before["viral_content_idea"] / max(1, sum(before.values()))
