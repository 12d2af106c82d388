"""Prometheus metrics of the latest runs, read from Redis at each scrape (`swarm metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from swarm.keys import AGENT_QUEUE, RUNS
from swarm.redisconn import text
from swarm.stats import snapshot

RUNS_SHOWN = 5


class SwarmCollector(Collector):
    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def collect(self) -> Iterator[Metric]:
        labels = ["run_id"]
        tasks = GaugeMetricFamily("swarm_tasks", "Tasks by state", labels=[*labels, "state"])
        total = GaugeMetricFamily("swarm_tasks_planned", "Tasks in the run", labels=labels)
        state = GaugeMetricFamily("swarm_run_state", "1 for the run's state",
                                  labels=[*labels, "state"])
        tokens = CounterMetricFamily("swarm_tokens", "Tokens billed", labels=[*labels, "kind"])
        cost = CounterMetricFamily("swarm_cost_usd", "Spend", labels=[*labels, "provider"])
        budget = GaugeMetricFamily("swarm_budget_usd", "BUDGET_USD of the run", labels=labels)
        left = GaugeMetricFamily("swarm_budget_left_usd",
                                 "Stop line minus spend and reservations", labels=labels)
        r429 = CounterMetricFamily("swarm_rate_limited", "429 answers", labels=labels)
        paused = CounterMetricFamily("swarm_cooldown_seconds", "Time paused by 429 cooldowns",
                                     labels=labels)
        waits = CounterMetricFamily("swarm_admit_waits", "Admissions told to wait",
                                    labels=[*labels, "reason"])
        rate = GaugeMetricFamily("swarm_rate_per_second", "Tasks per second, last minute",
                                 labels=labels)
        reviews = CounterMetricFamily("swarm_reviews", "Orchestrator reviews", labels=labels)
        unanswered = CounterMetricFamily(
            "swarm_unanswered", "Attempts sent with no answer, charged at worst case",
            labels=labels)
        duplicates = CounterMetricFamily("swarm_duplicates", "Slots settled twice",
                                         labels=labels)
        for run_id in (text(x) for x in self.r.zrevrange(RUNS, 0, RUNS_SHOWN - 1)):
            st = snapshot(self.r, run_id)
            for name in ("completed", "failed", "skipped", "in_flight", "queued"):
                tasks.add_metric([run_id, name], st[name])
            total.add_metric([run_id], st["total"])
            state.add_metric([run_id, st["state"]], 1)
            tokens.add_metric([run_id, "prompt"], st["prompt_tokens"])
            tokens.add_metric([run_id, "completion"], st["completion_tokens"])
            cost.add_metric([run_id, "kimi"], st["cost_kimi_usd"])
            cost.add_metric([run_id, "claude"], st["cost_claude_usd"])
            budget.add_metric([run_id], st["budget_usd"])
            left.add_metric([run_id], round(st["stop_line_usd"] - st["cost_usd"]
                                            - st["reserved_usd"], 6))
            r429.add_metric([run_id], st["rate_limited"])
            paused.add_metric([run_id], st["cooldown_s"])
            for reason, n in st["admit_waits"].items():
                waits.add_metric([run_id, reason], n)
            rate.add_metric([run_id], st["rate_per_s"])
            reviews.add_metric([run_id], st["orchestrations"])
            unanswered.add_metric([run_id], st["unanswered"])
            duplicates.add_metric([run_id], st["duplicates"])
        depth = GaugeMetricFamily("swarm_queue_depth", "Agent messages waiting in the queue")
        depth.add_metric([], int(self.r.llen(AGENT_QUEUE)))
        yield from (tasks, total, state, tokens, cost, budget, left, r429, paused, waits, rate,
                    reviews, unanswered, duplicates, depth)
