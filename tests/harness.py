"""A provider scripted through httpx.MockTransport and an Agent wired to an in-memory queue,
on a real Redis, with a fixed clock: one task start to end without sleeping."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import redis

from swarm.agent import Agent
from swarm.clock import FakeClock
from swarm.config import Settings
from swarm.outputs import OutputWriter
from swarm.producer import Feeder, start_run
from swarm.providers.http import Http
from swarm.providers.kimi import KimiClient
from swarm.sim.answers import chat_answer, count_tokens, rng_for
from tests.helpers import Queue

KEY = "sk-test-agent-key-123456"
Handler = Callable[[httpx.Request], httpx.Response]


def ok_response(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    text = chat_answer(body["messages"], rng_for(body["messages"]))
    ptok = sum(count_tokens(m["content"]) for m in body["messages"])
    return httpx.Response(200, json={
        "id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": ptok, "completion_tokens": count_tokens(text),
                  "total_tokens": ptok + count_tokens(text)}})


class Provider:
    """Scripted answers: ``script`` is consumed first, then every call succeeds."""

    def __init__(self, script: list[Handler] | None = None) -> None:
        self.script = list(script or [])
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        handler = self.script.pop(0) if self.script else ok_response
        return handler(request)


def error(status: int, etype: str, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(
        status, json={"error": {"message": f"bad {KEY}", "type": etype}}, headers=headers)


class Harness:
    def __init__(self, r: redis.Redis, settings: Settings, clock: FakeClock,
                 provider: Provider) -> None:
        self.r, self.settings, self.clock, self.provider = r, settings, clock, provider
        self.queue = Queue()
        self.feeder = Feeder(r, self.queue.publish, clock)
        kimi = KimiClient("https://kimi.test/v1", KEY,
                          Http(httpx.MockTransport(provider)))
        self.agent = Agent(r, kimi, OutputWriter(settings.output_dir), self.feeder,
                           max_attempts=4, clock=clock)

    def start(self, n: int) -> str:
        return start_run(self.r, self.settings, n, self.feeder).run_id

    def drain(self) -> list[str]:
        outcomes = []
        while self.queue.items:
            run_id, slot, category = self.queue.items.popleft()
            outcomes.append(self.agent.run(run_id, slot, category).status)
        return outcomes
