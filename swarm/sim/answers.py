"""Deterministic answers: the same request always gets the same answer."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from typing import Any

_KEYS = re.compile(r"exactly these keys: ([a-z0-9_, ]+)\.")
_CATEGORIES = re.compile(r'"([a-z_]+)":\s*\{"completed"')
_STATS = re.compile(r"Run statistics \(JSON\):\n(.*)\n")

WORDS = (
    "automation", "pipeline", "retention", "margin", "onboarding", "forecast", "workflow",
    "compliance", "pricing", "partner", "churn", "upsell", "dashboard", "assistant", "audit",
)


def count_tokens(text: str) -> int:
    """The simulator's tokenizer: one token per 4 characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


def rng_for(payload: Any) -> random.Random:
    digest = hashlib.blake2b(json.dumps(payload, sort_keys=True).encode(), digest_size=8)
    return random.Random(int.from_bytes(digest.digest(), "big"))


def _value(key: str, rng: random.Random) -> Any:
    if key.endswith(("score", "roi")):
        return rng.randint(1, 10)
    if key.endswith(("value", "revenue", "investment")):
        return rng.randrange(5_000, 500_000, 500)
    if key.endswith(("points", "steps", "services", "hashtags", "strengths", "weaknesses")):
        return [" ".join(rng.choices(WORDS, k=3)) for _ in range(3)]
    return " ".join(rng.choices(WORDS, k=rng.randint(4, 12))).capitalize()


def chat_answer(messages: list[dict[str, Any]], rng: random.Random) -> str:
    """A JSON object with the keys the last user message asks for."""
    prompt = str(messages[-1].get("content", "")) if messages else ""
    m = _KEYS.search(prompt)
    keys = [k.strip() for k in m.group(1).split(",")] if m else ["answer"]
    return json.dumps({k: _value(k, rng) for k in keys if k}, ensure_ascii=False)


def _current_weights(prompt: str) -> dict[str, float]:
    """The weights the review's statistics give (our orchestrator's prompt), else the
    categories named there at 1.0."""
    m = _STATS.search(prompt)
    try:
        if m:
            return {str(k): float(v) for k, v in json.loads(m.group(1))["weights"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return dict.fromkeys(_CATEGORIES.findall(prompt), 1.0)


def review_answer(prompt: str, rng: random.Random) -> str:
    """An orchestrator decision that keeps to the rules the prompt states: each category's
    weight moved by a factor of 0.7 to 1.4 from its current value, within [0.1, 5]."""
    weights = {c: round(min(5.0, max(0.1, w * rng.uniform(0.7, 1.4))), 2)
               for c, w in _current_weights(prompt).items()}
    return json.dumps({
        "rating": rng.randint(5, 9),
        "insights": ["Higher-value categories parse reliably", "Costs per task are stable"],
        "weights": weights,
        "concurrency_advice": "keep",
        "critical_actions": [],
    })
