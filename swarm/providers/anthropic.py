"""Anthropic Messages API: ``POST {ANTHROPIC_BASE_URL}/v1/messages``."""

from __future__ import annotations

import httpx

from swarm.errors import ServerError
from swarm.providers.http import Http
from swarm.providers.kimi import Completion

API_VERSION = "2023-06-01"


class AnthropicClient:
    def __init__(self, base_url: str, api_key: str, http: Http) -> None:
        self.url = httpx.URL(base_url.rstrip("/") + "/v1/messages")  # parsed once
        self._headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self.http = http

    def message(self, model: str, system: str, user: str, max_tokens: int) -> Completion:
        body = self.http.post_json(
            self.url,
            "claude",
            self._headers,
            {
                "model": model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            },
        )
        try:
            text = "".join(
                block.get("text", "") for block in body["content"] if block.get("type") == "text"
            )
            usage = body["usage"]
            return Completion(
                text=text,
                prompt_tokens=int(usage["input_tokens"]),
                completion_tokens=int(usage["output_tokens"]),
                finish_reason=str(body.get("stop_reason", "")),
                model=str(body.get("model", model)),
            )
        except (KeyError, TypeError, ValueError):
            raise ServerError("claude: answer lacks content or usage", status=200) from None
