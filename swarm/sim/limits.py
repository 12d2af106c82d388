"""The simulator's account limits and faults, enforced the way a provider does: requests
and tokens counted over a sliding window (60 s, like Moonshot; shorter in tests), calls in
flight counted at once, and seeded faults."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass


@dataclass
class Limits:
    rpm: int | None = None  # requests per window
    tpm: int | None = None  # tokens (prompt + completion) per window
    concurrency: int | None = None
    window_s: float = 60.0


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered 500, 503 or 429 overloaded
    hang_rate: float = 0.0  # share of requests that answer only after hang_s
    hang_s: float = 30.0
    drop_rate: float = 0.0  # share of requests whose connection is closed with no answer
    drop_billed: bool = False  # a dropped request was answered and billed, the answer lost
    quota_micro: int | None = None  # after billing this much: 429 exceeded_current_quota
    claude_error_rate: float = 0.0  # share of /v1/messages answered 429 or 529


class Window:
    """Sliding-window counter: events (time, amount) of the last ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def _trim(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.window_s:
            self.total -= self.events.popleft()[1]

    def room(self, now: float, limit: int, amount: int = 1) -> float:
        """0 when ``amount`` fits under ``limit`` now, else seconds until it would."""
        self._trim(now)
        if self.total + amount <= limit:
            return 0.0
        excess, freed = self.total + amount - limit, 0
        for t, n in self.events:
            freed += n
            if freed >= excess:
                return t + self.window_s - now
        return self.window_s

    def add(self, now: float, amount: int = 1) -> None:
        self.events.append((now, amount))
        self.total += amount


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def peak_in_window(times: list[float], window_s: float) -> int:
    """The most events in any half-open window of ``window_s`` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class FaultDice:
    def __init__(self, faults: Faults, seed: int) -> None:
        self.f = faults
        self.rng = random.Random(seed)

    def roll(self) -> str | None:
        """None, or one of: error_500, error_503, overloaded, hang, drop."""
        x = self.rng.random()
        if x < self.f.error_rate:
            return self.rng.choice(("error_500", "error_503", "overloaded"))
        x -= self.f.error_rate
        if x < self.f.hang_rate:
            return "hang"
        x -= self.f.hang_rate
        if x < self.f.drop_rate:
            return "drop"
        return None

    def roll_claude(self) -> str | None:
        """None, or rate_limit (429 with retry-after) or overloaded (529)."""
        if self.rng.random() < self.f.claude_error_rate:
            return self.rng.choice(("rate_limit", "overloaded"))
        return None
