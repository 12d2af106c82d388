"""The simulator's HTTP server (aiohttp). ``swarm simulate`` runs it; tests run it in a thread.

Endpoints: ``POST /v1/chat/completions`` (Moonshot), ``POST /v1/messages`` (Anthropic),
``GET /_stats`` (what it answered and billed).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from swarm.prices import PRICES
from swarm.sim.answers import chat_answer, count_tokens, review_answer, rng_for
from swarm.sim.limits import FaultDice, Faults, Limits, Window, peak_in_window, retry_after_header


@dataclass
class SimConfig:
    latency_ms: float = 50.0
    jitter_ms: float = 20.0
    api_key: str | None = None  # when set, other keys get 401
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    faults: Faults = field(default_factory=Faults)


@dataclass
class Ledger:
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    billed_micro: int = 0
    claude_requests: int = 0
    claude_billed_micro: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    arrivals: list[float] = field(default_factory=list)  # loop time of every chat request
    ok_times: list[float] = field(default_factory=list)  # loop time of every answered one

    def count(self, status: int) -> None:
        self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1

    def report(self, window_s: float) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("arrivals", "ok_times")}
        peak = peak_in_window(self.arrivals, window_s)
        ok = self.ok_times
        span = ok[-1] - ok[0] if len(ok) > 1 else 0.0
        out.update({
            "count_429": self.by_status.get("429", 0),
            "window_s": window_s,
            "peak_in_window": peak,
            "peak_rpm": round(peak * 60 / window_s, 1),
            "ok_per_s": round((len(ok) - 1) / span, 3) if span > 0 else None,
        })
        return out


def _moonshot_error(status: int, etype: str, message: str,
                    headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": etype}}, status=status,
                             headers=headers)


def _anthropic_error(status: int, etype: str, message: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": etype, "message": message}},
                             status=status, headers=headers)


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.ledger = Ledger()
        self.rng = random.Random(config.seed)
        self.dice = FaultDice(config.faults, config.seed)
        self.rpm = Window(config.limits.window_s)
        self.tpm = Window(config.limits.window_s)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_get("/_stats", self.stats)
        return app

    async def _latency(self) -> None:
        delay = self.config.latency_ms + self.rng.uniform(0, self.config.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    def _key_ok(self, key: str | None) -> bool:
        return bool(key) and (self.config.api_key is None or key == self.config.api_key)

    async def chat(self, request: web.Request) -> web.Response:
        ledger = self.ledger
        ledger.requests += 1
        auth = request.headers.get("Authorization", "")
        if not self._key_ok(auth.removeprefix("Bearer ").strip() if auth else None):
            ledger.count(401)
            return _moonshot_error(401, "invalid_authentication_error",
                                   "Invalid Authentication")
        try:
            body = await request.json()
            model, messages = body["model"], body["messages"]
            max_tokens = int(body.get("max_tokens") or 1024)
        except (ValueError, KeyError, TypeError):
            ledger.count(400)
            return _moonshot_error(400, "invalid_request_error", "Invalid request body")
        price = PRICES.get(model)
        if price is None:
            ledger.count(404)
            return _moonshot_error(404, "resource_not_found_error", f"Not found the model {model}")
        text = chat_answer(messages, rng_for(messages))
        ptok = sum(count_tokens(str(m.get("content", ""))) + 4 for m in messages)
        ctok, finish = count_tokens(text), "stop"
        if ctok > max_tokens:
            text, ctok, finish = text[: max_tokens * 4], max_tokens, "length"
        refused = self._refuse(ptok + ctok)
        if refused is not None:
            return refused
        fault = self.dice.roll()
        if fault is not None and fault not in ("hang", "drop"):
            return self._fault(fault)
        ledger.in_flight += 1
        ledger.max_in_flight = max(ledger.max_in_flight, ledger.in_flight)
        try:
            if fault == "drop":
                await self._latency()
                ledger.count(0)
                if self.config.faults.drop_billed:  # the worst case: billed, answer lost
                    ledger.billed_micro += price.cost_micro(ptok, ctok)
                if request.transport is not None:
                    request.transport.abort()  # the connection dies with no answer
                return web.Response(status=500)
            await self._latency()
            if fault == "hang":
                await asyncio.sleep(self.config.faults.hang_s)
        finally:
            ledger.in_flight -= 1
        ledger.ok_times.append(asyncio.get_running_loop().time())
        ledger.count(200)
        ledger.prompt_tokens += ptok
        ledger.completion_tokens += ctok
        ledger.billed_micro += price.cost_micro(ptok, ctok)
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": ptok, "completion_tokens": ctok,
                      "total_tokens": ptok + ctok},
        })

    def _refuse(self, tokens: int) -> web.Response | None:
        """The account's limits and quota, checked as a request arrives."""
        lim, ledger = self.config.limits, self.ledger
        now = asyncio.get_running_loop().time()
        ledger.arrivals.append(now)
        quota = self.config.faults.quota_micro
        if quota is not None and ledger.billed_micro >= quota:
            ledger.count(429)
            return _moonshot_error(429, "exceeded_current_quota_error",
                                   "Your account balance is insufficient")
        if lim.concurrency is not None and ledger.in_flight >= lim.concurrency:
            ledger.count(429)
            return _moonshot_error(429, "rate_limit_reached_error",
                                   f"max organization concurrency {lim.concurrency} reached",
                                   {"Retry-After": "1"})
        for window, limit, amount, what in ((self.rpm, lim.rpm, 1, "RPM"),
                                            (self.tpm, lim.tpm, tokens, "TPM")):
            if limit is not None:
                wait = window.room(now, limit, amount)
                if wait > 0:
                    ledger.count(429)
                    return _moonshot_error(429, "rate_limit_reached_error",
                                           f"max {what} {limit} reached",
                                           {"Retry-After": retry_after_header(wait)})
        self.rpm.add(now)
        self.tpm.add(now, tokens)
        return None

    def _fault(self, fault: str) -> web.Response:
        status, etype = {"error_500": (500, "server_error"), "error_503": (503, "server_error"),
                         "overloaded": (429, "engine_overloaded_error")}[fault]
        self.ledger.count(status)
        headers = {"Retry-After": "1"} if status == 429 else None
        return _moonshot_error(status, etype, "injected fault", headers)

    async def messages(self, request: web.Request) -> web.Response:
        ledger = self.ledger
        ledger.claude_requests += 1
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not self._key_ok(request.headers.get("x-api-key") or bearer or None):
            ledger.count(401)
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        try:
            body = await request.json()
            model, msgs = body["model"], body["messages"]
            max_tokens = int(body["max_tokens"])
        except (ValueError, KeyError, TypeError):
            ledger.count(400)
            return _anthropic_error(400, "invalid_request_error", "Invalid request body")
        price = PRICES.get(model)
        if price is None:
            ledger.count(404)
            return _anthropic_error(404, "not_found_error", f"model: {model}")
        fault = self.dice.roll_claude()
        if fault == "rate_limit":
            ledger.count(429)
            return _anthropic_error(429, "rate_limit_error", "injected rate limit",
                                    {"retry-after": "1"})
        if fault == "overloaded":
            ledger.count(529)
            return _anthropic_error(529, "overloaded_error", "Overloaded")
        await self._latency()
        prompt = " ".join(str(m.get("content", "")) for m in msgs)
        text = review_answer(prompt, rng_for(msgs))
        itok = count_tokens(prompt + str(body.get("system", "")))
        otok = min(count_tokens(text), max_tokens)
        ledger.count(200)
        ledger.claude_billed_micro += price.cost_micro(itok, otok)
        return web.json_response({
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": itok, "output_tokens": otok},
        })

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.ledger.report(self.config.limits.window_s))


class SimServer:
    """The simulator in a background thread with its own event loop (for tests and benches)."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.sim = Simulator(config or SimConfig())
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.sim.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined,union-attr]
        self.port = sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(config: SimConfig, host: str, port: int, on_ready: Any = None) -> None:
    """Run until interrupted (``swarm simulate``); ``on_ready(port)`` once listening."""

    async def main() -> None:
        runner = web.AppRunner(Simulator(config).app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[attr-defined,union-attr]
        if on_ready:
            on_ready(sockets[0].getsockname()[1])
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
