"""Prices per model, in USD per 1M tokens, with where each figure was read.

A price in USD per 1M tokens is also micro-USD per token, which is how the ledger counts:
integer micro-USD, rounded up, never floats in Redis. A model absent from this table is
refused unless its prices are given explicitly (fail closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M input tokens
    output: float  # USD per 1M output tokens
    source: str = "settings"

    def cost_micro(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Cost in integer micro-USD, rounded up (nano-USD per token internally)."""
        nano = prompt_tokens * round(self.input * 1000) + completion_tokens * round(
            self.output * 1000
        )
        return math.ceil(nano / 1000)


_MOONSHOT = "Moonshot platform price list (platform.moonshot.ai/docs/pricing), read 2026-12"
_ANTHROPIC = "Anthropic pricing page (claude.com/pricing#api), read 2026-12"

PRICES: dict[str, Price] = {
    "moonshot-v1-8k": Price(0.20, 2.00, _MOONSHOT),
    "moonshot-v1-32k": Price(1.00, 3.00, _MOONSHOT),
    "moonshot-v1-128k": Price(2.00, 5.00, _MOONSHOT),
    "moonshot-v1-auto": Price(2.00, 5.00, _MOONSHOT + " (priced as the largest tier it may pick)"),
    "kimi-latest": Price(2.00, 5.00, _MOONSHOT + " (priced as its largest context tier)"),
    "kimi-k2-0711-preview": Price(0.60, 2.50, _MOONSHOT),
    "kimi-k2-0905-preview": Price(0.60, 2.50, _MOONSHOT),
    "kimi-k2-turbo-preview": Price(1.15, 8.00, _MOONSHOT),
    "kimi-k2-thinking": Price(0.60, 2.50, _MOONSHOT),
    "kimi-k2-thinking-turbo": Price(1.15, 8.00, _MOONSHOT),
    "claude-3-haiku-20240307": Price(0.25, 1.25, _ANTHROPIC),
    "claude-3-5-haiku-latest": Price(0.80, 4.00, _ANTHROPIC),
    "claude-haiku-4-5": Price(1.00, 5.00, _ANTHROPIC),
    "claude-sonnet-4-5": Price(3.00, 15.00, _ANTHROPIC),
    "claude-opus-4-5": Price(5.00, 25.00, _ANTHROPIC),
}


def price_for(model: str, override_in: float | None, override_out: float | None) -> Price | None:
    """The model's price: both overrides win; one override fills in over the table; None when
    the model is unknown and not fully overridden."""
    known = PRICES.get(model)
    if override_in is not None and override_out is not None:
        return Price(override_in, override_out)
    if known is None:
        return None
    return Price(
        known.input if override_in is None else override_in,
        known.output if override_out is None else override_out,
        known.source if override_in is None and override_out is None else "settings+table",
    )
