"""Every error Swarm raises on purpose has one root, :class:`SwarmError`.

    SwarmError
    ├── ConfigError            bad settings or input: one line, exit 2, nothing queued
    ├── RedisUnavailable       the configured Redis does not answer
    └── ProviderError          a call to Kimi or Claude did not give an answer
        ├── NetworkError       no HTTP answer at all: connect/read timeout, dropped connection
        └── StatusError        an HTTP answer with an error status
            ├── AuthError          401/403: never retried
            ├── BadRequest         400/404/413/422: never retried
            ├── RateLimited        429 rate_limit_reached_error: retried after the shared cooldown
            ├── Overloaded         429 engine_overloaded_error, 529: retried after the cooldown
            ├── QuotaExhausted     429 exceeded_current_quota_error, 402: stops the run
            └── ServerError        5xx: retried with backoff

Messages pass through :func:`redact` so that no API key ever reaches a log, a task's
state in Flower, or an output file.
"""

from __future__ import annotations

import re

_KEY_PATTERNS = re.compile(r"(sk-(?:ant-)?[A-Za-z0-9_\-]{6,})|(Bearer\s+[A-Za-z0-9_\-\.]{6,})")
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so :func:`redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    return _KEY_PATTERNS.sub("***", text)


class SwarmError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigError(SwarmError):
    """Invalid settings or command-line input."""


class RedisUnavailable(SwarmError):
    """Redis cannot be reached."""


class ProviderError(SwarmError):
    retryable = False
    reason = "provider_error"


class NetworkError(ProviderError):
    """The request got no HTTP answer. ``sent`` tells whether the request may have reached
    the provider (then it may have been billed)."""

    retryable = True
    reason = "network"

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class StatusError(ProviderError):
    reason = "status"

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthError(StatusError):
    reason = "auth"


class BadRequest(StatusError):
    reason = "bad_request"


class RateLimited(StatusError):
    retryable = True
    reason = "rate_limited"


class Overloaded(StatusError):
    retryable = True
    reason = "overloaded"


class QuotaExhausted(StatusError):
    reason = "quota_exhausted"


class ServerError(StatusError):
    retryable = True
    reason = "server_error"
