"""The task types, as data, and the prompt each task sends.

Every task's prompt varies through a draw seeded by (run seed, index), so half a million
tasks are not half a million identical prompts, and the same task always sends the same
prompt (a redelivered task asks the same question).
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass
from typing import Literal

Priority = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True)
class TaskType:
    name: str
    folder: str
    value_eur: int  # revenue potential of one successful answer, before conversion
    priority: Priority
    weight: float  # starting weight in the task mix
    fields: tuple[str, ...]  # keys the JSON answer must carry
    brief: str  # what the agent is asked for


CATALOG: tuple[TaskType, ...] = (
    TaskType(
        "high_value_lead_research", "leads", 5_000, "high", 1.0,
        ("company", "industry", "size", "pain_points", "ai_opportunity", "project_value",
         "decision_maker", "outreach_hook", "bant_score"),
        "Profile one realistic prospective client that would buy an AI automation project.",
    ),
    TaskType(
        "viral_content_idea", "content", 1_000, "high", 1.0,
        ("format", "hook", "body", "call_to_action", "lead_magnet", "hashtags", "viral_score"),
        "Propose one piece of social content that would attract buyers of AI services.",
    ),
    TaskType(
        "competitor_intel", "competitors", 2_000, "medium", 1.0,
        ("name", "positioning", "services", "pricing", "strengths", "weaknesses", "market_gap",
         "counter_strategy"),
        "Analyse one plausible competitor of a small AI consultancy.",
    ),
    TaskType(
        "gold_nugget_extraction", "gold_nuggets", 10_000, "high", 1.0,
        ("category", "title", "insight", "steps", "estimated_revenue", "time_to_implement",
         "investment", "roi"),
        "Extract one concrete, actionable business insight a consultancy could sell.",
    ),
    TaskType(
        "revenue_optimization", "revenue_operations", 15_000, "critical", 1.0,
        ("type", "current_state", "optimized_state", "impact", "complexity", "time_to_value"),
        "Design one change to a consultancy's revenue operations that raises income.",
    ),
    TaskType(
        "strategic_partnership", "partnerships", 20_000, "high", 1.0,
        ("partner_type", "partner_profile", "value_proposition", "revenue_model",
         "annual_value", "effort"),
        "Propose one strategic partnership that would bring recurring revenue.",
    ),
)

BY_NAME: dict[str, TaskType] = {t.name: t for t in CATALOG}
NAMES: tuple[str, ...] = tuple(t.name for t in CATALOG)
INSIGHTS_FOLDER = "claude_insights"

INDUSTRIES = (
    "logistics", "dental clinics", "law firms", "e-commerce fashion", "industrial machinery",
    "insurance brokers", "real estate agencies", "SaaS for HR", "private schools", "hotels",
    "accounting firms", "food delivery", "renewable energy installers", "car dealerships",
    "biotech labs", "marketing agencies", "construction", "veterinary clinics", "fintech",
    "municipal services",
)
REGIONS = (
    "Germany", "France", "the Netherlands", "the Nordics", "Spain", "Italy", "Poland",
    "the UK", "Ireland", "Austria and Switzerland", "the US Midwest", "Canada", "Singapore",
    "Australia", "Brazil", "the UAE",
)
SIZES = ("5-20 staff", "20-100 staff", "100-500 staff", "500-2,000 staff")
ANGLES = (
    "cost reduction", "speed to market", "customer retention", "compliance risk",
    "hiring shortage", "data quality", "pricing power", "new revenue line",
)

SYSTEM_PROMPT = (
    "You are a senior B2B strategist for an AI automation consultancy. "
    "Answer with exactly one JSON object and nothing else: no prose, no markdown fences."
)


def _rng(seed: int, index: int, purpose: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{index}:{purpose}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def build_prompt(task: TaskType, seed: int, index: int) -> str:
    rng = _rng(seed, index, "prompt")
    industry, region = rng.choice(INDUSTRIES), rng.choice(REGIONS)
    size, angle = rng.choice(SIZES), rng.choice(ANGLES)
    return (
        f"{task.brief}\n"
        f"Context: {industry} in {region}, companies of {size}; focus on {angle}. "
        f"Be specific and realistic; numbers in EUR.\n"
        f"Return one JSON object with exactly these keys: {', '.join(task.fields)}."
    )


def messages_for(task: TaskType, seed: int, index: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": build_prompt(task, seed, index)},
    ]


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """An upper estimate of the prompt's tokens, for reservations: one token per 2 bytes of
    UTF-8 (tokenizers give about 4 for English, 1.5 for Chinese) plus per-message overhead."""
    return sum(len(m["content"].encode("utf-8")) // 2 + 8 for m in messages) + 8


class WeightedDraw:
    """Draws a category for a slot from weights, reproducibly per (seed, index)."""

    def __init__(self, weights: dict[str, float]) -> None:
        names = [n for n in NAMES if weights.get(n, 0) > 0]
        if not names:
            raise ValueError("at least one category needs a positive weight")
        self.names = names
        total, cumulative = 0.0, []
        for n in names:
            total += weights[n]
            cumulative.append(total)
        self.cumulative, self.total = cumulative, total

    def category(self, seed: int, index: int) -> str:
        x = _rng(seed, index, "category").random() * self.total
        return self.names[min(bisect.bisect_right(self.cumulative, x), len(self.names) - 1)]


def default_weights() -> dict[str, float]:
    return {t.name: t.weight for t in CATALOG}
