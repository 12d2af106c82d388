"""Moonshot/Kimi chat completions: ``POST {KIMI_BASE_URL}/chat/completions``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from swarm.errors import ServerError
from swarm.providers.http import post_json


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    model: str


def make_client(timeout_s: float, max_connections: int) -> httpx.Client:
    """One pooled client per worker process: explicit timeouts, keep-alive sized to the
    threads that share it."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


class KimiClient:
    def __init__(self, base_url: str, api_key: str, client: httpx.Client) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.client = client

    def chat(
        self, model: str, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Completion:
        body = post_json(
            self.client,
            self.url,
            "kimi",
            headers=self._headers,
            json={
                "model": model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
            },
        )
        try:
            choice = body["choices"][0]
            usage = body["usage"]
            return Completion(
                text=choice["message"].get("content") or "",
                prompt_tokens=int(usage["prompt_tokens"]),
                completion_tokens=int(usage["completion_tokens"]),
                finish_reason=str(choice.get("finish_reason", "")),
                model=str(body.get("model", model)),
            )
        except (KeyError, IndexError, TypeError, ValueError):
            raise ServerError("kimi: answer lacks choices or usage", status=200) from None
