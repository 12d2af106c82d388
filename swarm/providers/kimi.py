"""Moonshot/Kimi chat completions: ``POST {KIMI_BASE_URL}/chat/completions``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from swarm.errors import ServerError
from swarm.providers.http import Http


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    model: str


class KimiClient:
    def __init__(self, base_url: str, api_key: str, http: Http) -> None:
        self.url = httpx.URL(base_url.rstrip("/") + "/chat/completions")  # parsed once
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.http = http

    def chat(
        self, model: str, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Completion:
        body = self.http.post_json(
            self.url,
            "kimi",
            self._headers,
            {
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
