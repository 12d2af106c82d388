"""The simulator's limits and faults behave like the provider's: 429 with Retry-After past
RPM, TPM and concurrency; quota exhaustion; seeded errors, drops; Anthropic's 429 and 529."""

from __future__ import annotations

import threading

import httpx
import pytest

from swarm import errors
from swarm.catalog import BY_NAME, messages_for
from swarm.providers.anthropic import AnthropicClient
from swarm.providers.http import Http
from swarm.providers.kimi import KimiClient
from swarm.sim.limits import Faults, Limits, Window, peak_in_window
from swarm.sim.server import SimConfig, SimServer

MSGS = messages_for(BY_NAME["competitor_intel"], 1, 1)


def post(sim: SimServer) -> httpx.Response:
    return httpx.post(sim.url + "/v1/chat/completions", headers={"Authorization": "Bearer k"},
                      json={"model": "moonshot-v1-8k", "messages": MSGS, "max_tokens": 500},
                      timeout=10)


def kimi(sim: SimServer) -> KimiClient:
    return KimiClient(sim.url + "/v1", "k", Http(httpx.HTTPTransport(), httpx.Timeout(5)))


def test_window_counts_and_says_when_room_comes_back() -> None:
    w = Window(60)
    assert w.room(0, limit=2) == 0
    w.add(0)
    w.add(10)
    assert w.room(20, limit=2) == 40  # the first leaves the window at 60
    assert w.room(60, limit=2) == 0
    assert w.room(61, limit=5, amount=10) == 60  # more than the limit can ever take
    assert peak_in_window([0, 1, 2, 59.9, 60, 61], 60) == 4
    assert peak_in_window([], 60) == 0


def test_rpm_limit_answers_429_with_retry_after() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, limits=Limits(rpm=3))) as sim:
        assert [post(sim).status_code for _ in range(3)] == [200, 200, 200]
        r = post(sim)
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "rate_limit_reached_error"
        assert 55 <= int(r.headers["Retry-After"]) <= 60
        with pytest.raises(errors.RateLimited) as info:
            kimi(sim).chat("moonshot-v1-8k", MSGS, 500, 0.5)
        assert info.value.retry_after is not None and info.value.retry_after >= 55
        stats = httpx.get(sim.url + "/_stats").json()
    assert stats["count_429"] == 2 and stats["by_status"]["200"] == 3
    assert stats["peak_in_window"] == 5 and stats["window_s"] == 60


def test_tpm_limit_counts_tokens() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, limits=Limits(tpm=500))) as sim:
        codes = [post(sim).status_code for _ in range(4)]
    assert codes[0] == 200 and 429 in codes


def test_concurrency_limit() -> None:
    with SimServer(SimConfig(latency_ms=400, jitter_ms=0, limits=Limits(concurrency=2))) as sim:
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(post(sim).status_code))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = httpx.get(sim.url + "/_stats").json()
    assert sorted(codes) == [200, 200, 429, 429]
    assert stats["max_in_flight"] == 2


def test_quota_exhaustion() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, faults=Faults(quota_micro=1))) as sim:
        assert post(sim).status_code == 200
        with pytest.raises(errors.QuotaExhausted):
            kimi(sim).chat("moonshot-v1-8k", MSGS, 500, 0.5)


def test_injected_errors_are_seeded_and_classified() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, seed=3,
                             faults=Faults(error_rate=1.0))) as sim:
        seen = set()
        for _ in range(30):
            with pytest.raises(errors.StatusError) as info:
                kimi(sim).chat("moonshot-v1-8k", MSGS, 500, 0.5)
            seen.add(type(info.value))
            assert info.value.retryable
        stats = httpx.get(sim.url + "/_stats").json()
    assert seen == {errors.ServerError, errors.Overloaded}
    assert stats["billed_micro"] == 0  # errors are not billed


def test_dropped_connection_is_a_sent_network_error() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, faults=Faults(drop_rate=1.0))) as sim:
        with pytest.raises(errors.NetworkError) as info:
            kimi(sim).chat("moonshot-v1-8k", MSGS, 500, 0.5)
        assert info.value.sent is True
        assert httpx.get(sim.url + "/_stats").json()["billed_micro"] == 0


def test_a_billed_drop_is_billed_and_still_unanswered() -> None:
    faults = Faults(drop_rate=1.0, drop_billed=True)
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, faults=faults)) as sim:
        with pytest.raises(errors.NetworkError) as info:
            kimi(sim).chat("moonshot-v1-8k", MSGS, 500, 0.5)
        assert info.value.sent is True
        assert httpx.get(sim.url + "/_stats").json()["billed_micro"] > 0


def test_hang_outlasts_the_client_timeout() -> None:
    faults = Faults(hang_rate=1.0, hang_s=3)
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, faults=faults)) as sim:
        client = KimiClient(sim.url + "/v1", "k",
                            Http(httpx.HTTPTransport(), httpx.Timeout(0.5)))
        with pytest.raises(errors.NetworkError) as info:
            client.chat("moonshot-v1-8k", MSGS, 500, 0.5)
        assert info.value.sent is True


def test_anthropic_429_and_529() -> None:
    faults = Faults(claude_error_rate=1.0)
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, seed=1, faults=faults)) as sim:
        client = AnthropicClient(sim.url, "k", Http(httpx.HTTPTransport(), httpx.Timeout(5)))
        seen = set()
        for _ in range(20):
            with pytest.raises(errors.StatusError) as info:
                client.message("claude-haiku-4-5", "s", "u", 10)
            seen.add((type(info.value), info.value.status))
    assert seen == {(errors.RateLimited, 429), (errors.Overloaded, 529)}
