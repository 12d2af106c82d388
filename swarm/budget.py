"""The budget ledger, in integer micro-USD.

Before a call, the worst case (prompt estimate at the input price plus ``max_tokens`` at the
output price) is reserved; the admit script refuses a reservation that would pass the stop
line (``BUDGET_USD x BUDGET_STOP_RATIO``). After the call, the cost from the provider's
``usage`` replaces it (settle script). Claude's reviews use the same ledger on their own line.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from swarm.keys import RunKeys
from swarm.prices import Price
from swarm.scripts import Scripts


def worst_case_micro(price: Price, est_prompt_tokens: int, max_tokens: int) -> int:
    return price.cost_micro(est_prompt_tokens, max_tokens)


@dataclass(frozen=True)
class LedgerSnapshot:
    line_micro: int
    spent_micro: int
    reserved_micro: int
    kimi_micro: int
    claude_micro: int

    @property
    def left_micro(self) -> int:
        return self.line_micro - self.spent_micro - self.reserved_micro


class Ledger:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.scripts = Scripts(r)

    def snapshot(self, run_id: str) -> LedgerSnapshot:
        k = RunKeys(run_id)
        line, spent, reserved = self.r.hmget(k.budget, "line", "spent", "reserved")
        kimi, claude = self.r.hmget(k.counters, "cost_kimi_micro", "cost_claude_micro")
        return LedgerSnapshot(*(int(v or 0) for v in (line, spent, reserved, kimi, claude)))

    def reserve(self, run_id: str, amount_micro: int) -> bool:
        k = RunKeys(run_id)
        return bool(self.scripts.ledger(keys=[k.budget, k.counters],
                                        args=["reserve", amount_micro, 0, ""]))

    def settle(self, run_id: str, reserved_micro: int, actual_micro: int, line: str) -> int:
        k = RunKeys(run_id)
        return int(self.scripts.ledger(keys=[k.budget, k.counters],
                                       args=["settle", reserved_micro, actual_micro, line]))
