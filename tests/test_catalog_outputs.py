"""The task catalog, prompt variation, the weighted draw, answer parsing and export."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from swarm.catalog import (
    BY_NAME,
    CATALOG,
    WeightedDraw,
    build_prompt,
    estimate_prompt_tokens,
    messages_for,
)
from swarm.outputs import OutputWriter, export, parse_answer
from swarm.sim.answers import count_tokens


def test_six_types_with_their_folders_and_values() -> None:
    assert {(t.name, t.folder, t.value_eur) for t in CATALOG} == {
        ("high_value_lead_research", "leads", 5000),
        ("viral_content_idea", "content", 1000),
        ("competitor_intel", "competitors", 2000),
        ("gold_nugget_extraction", "gold_nuggets", 10000),
        ("revenue_optimization", "revenue_operations", 15000),
        ("strategic_partnership", "partnerships", 20000),
    }
    assert all(t.fields and t.weight == 1.0 for t in CATALOG)


def test_prompts_vary_by_index_and_repeat_for_the_same_task() -> None:
    task = BY_NAME["high_value_lead_research"]
    prompts = {build_prompt(task, seed=3, index=i) for i in range(200)}
    assert len(prompts) > 150
    assert build_prompt(task, 3, 17) == build_prompt(task, 3, 17)
    assert build_prompt(task, 3, 17) != build_prompt(task, 4, 17)
    assert all(f in build_prompt(task, 3, 17) for f in task.fields)


def test_prompt_estimate_is_an_upper_bound_of_the_simulator_count() -> None:
    for task in CATALOG:
        msgs = messages_for(task, 1, 1)
        assert estimate_prompt_tokens(msgs) >= sum(count_tokens(m["content"]) + 4 for m in msgs)


def test_weighted_draw_follows_weights_and_is_reproducible() -> None:
    weights = {t.name: 1.0 for t in CATALOG} | {"strategic_partnership": 5.0,
                                                  "viral_content_idea": 0.0}
    draw = WeightedDraw(weights)
    counts = Counter(draw.category(seed=9, index=i) for i in range(20_000))
    assert counts["viral_content_idea"] == 0
    share = counts["strategic_partnership"] / 20_000
    assert 0.54 < share < 0.57  # 5 / (4 x 1 + 5) = 0.556 expected; the draw is seeded
    assert draw.category(9, 123) == WeightedDraw(weights).category(9, 123)
    with pytest.raises(ValueError):
        WeightedDraw({t.name: 0.0 for t in CATALOG})


@pytest.mark.parametrize("text", [
    '{"a": 1, "b": [2]}',
    '```json\n{"a": 1, "b": [2]}\n```',
    'Here you go:\n{"a": 1, "b": [2]}\nThanks',
])
def test_parse_answer_accepts_fenced_and_wrapped_json(text: str) -> None:
    from swarm.catalog import TaskType

    task = TaskType("t", "f", 1, "low", 1.0, ("a", "b"), "brief")
    assert parse_answer(text, task) == {"a": 1, "b": [2]}


def test_parse_answer_rejects_missing_fields_and_garbage() -> None:
    task = BY_NAME["viral_content_idea"]
    assert parse_answer('{"format": "x"}', task) is None
    assert parse_answer("not json at all", task) is None
    assert parse_answer('{"format": ', task) is None
    assert parse_answer("[1, 2]", task) is None


def test_export_deduplicates_by_task_id(tmp_path: Path) -> None:
    w = OutputWriter(tmp_path)
    base = {"run_id": "r", "category": "viral_content_idea", "model": "m", "prompt_tokens": 1,
            "completion_tokens": 1, "cost_usd": 0.1, "latency_ms": 1, "attempts": 1,
            "parsed": {"x": 1}, "raw": "{}", "finished_at": "t"}
    w.write("r", "content", {**base, "task_id": "r:1", "index": 1})
    w.write("r", "content", {**base, "task_id": "r:0", "index": 0})
    w.write("r", "content", {**base, "task_id": "r:1", "index": 1, "attempts": 2})
    w.write("other", "content", {**base, "task_id": "other:0", "index": 0})
    w.close()
    with w.path("r", "content").open("a") as f:
        f.write('\n{"task_id": "r:2", "index": 2, "raw": "cut off by a k')  # a killed writer
    assert export(tmp_path, "r", "jsonl", tmp_path / "r.jsonl") == 2
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == [0, 1] and lines[1]["attempts"] == 2
    assert export(tmp_path, "r", "csv", tmp_path / "r.csv") == 2
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["task_id"] for r in rows] == ["r:0", "r:1"]
