"""What the two providers share: sending a request and turning failures into the error tree.

Network errors and bad-status errors are separate branches (see :mod:`swarm.errors`).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from swarm.errors import (
    AuthError,
    BadRequest,
    NetworkError,
    Overloaded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
    StatusError,
)

# Moonshot's (OpenAI-style) and Anthropic's error types, as their `error.type` says.
QUOTA_TYPES = {"exceeded_current_quota_error", "insufficient_quota", "billing_error"}
OVERLOAD_TYPES = {"engine_overloaded_error", "overloaded_error"}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(response: httpx.Response, provider: str) -> StatusError:
    status = response.status_code
    etype, message = "", response.reason_phrase
    try:
        body = response.json()
        err = body.get("error", body) if isinstance(body, dict) else {}
        if isinstance(err, dict):
            etype = str(err.get("type", "") or err.get("code", ""))
            message = str(err.get("message", message))
    except ValueError:
        pass
    text = f"{provider} {status} {etype or 'error'}: {message[:300]}"
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    cls: type[StatusError]
    if status in (401, 403):
        cls = AuthError
    elif status == 402 or etype in QUOTA_TYPES:
        cls = QuotaExhausted
    elif status == 529 or etype in OVERLOAD_TYPES:
        cls = Overloaded
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequest
    return cls(text, status=status, retry_after=retry_after)


class Http:
    """JSON over POST through an httpx transport: a pooled ``httpx.HTTPTransport``, or an
    ``httpx.MockTransport`` in tests. It goes to the transport directly, past
    ``httpx.Client``'s redirect, cookie and auth layers, which a provider call never uses and
    which cost about a fifth of the call's CPU (bench/http_call.py)."""

    HEADERS = {"Accept": "application/json", "User-Agent": "swarm/0.1"}
    TIMEOUT = httpx.Timeout(60.0, connect=10.0)

    def __init__(self, transport: httpx.BaseTransport | Callable[[], httpx.BaseTransport],
                 timeout: httpx.Timeout = TIMEOUT) -> None:
        """``transport``: one for every thread (tests' MockTransport), or a function that
        makes each thread its own."""
        if isinstance(transport, httpx.BaseTransport):
            shared = transport
            self._make: Callable[[], httpx.BaseTransport] = lambda: shared
        else:
            self._make = transport
        self._local = threading.local()
        self._timeout = timeout.as_dict()

    @classmethod
    def per_thread(cls, timeout_s: float) -> Http:
        """For a worker's threads: each keeps one keep-alive connection in a transport of its
        own. One pool shared by hundreds of threads costs CPU that grows with its size (500
        threads: 13 ms of worker CPU a task, bench/BENCHMARKS.md) and can close a connection
        it has just handed to a waiting request, which then hangs until its read timeout and
        is retried, perhaps paid twice (httpcore 1.0.9; encode/httpcore#1110, #1035)."""
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        tls = httpx.create_ssl_context()  # one for all: each holds the CA bundle (~1.6 MB)
        return cls(lambda: httpx.HTTPTransport(verify=tls, limits=limits), timeout)

    @property
    def transport(self) -> httpx.BaseTransport:
        mine: httpx.BaseTransport | None = getattr(self._local, "transport", None)
        if mine is None:
            mine = self._local.transport = self._make()
        return mine

    def post_json(self, url: httpx.URL | str, provider: str, headers: dict[str, str],
                  body: dict[str, Any]) -> dict[str, Any]:
        """POST and return the JSON body, or raise a :class:`ProviderError`."""
        request = httpx.Request("POST", url, headers={**self.HEADERS, **headers}, json=body,
                                extensions={"timeout": self._timeout})
        try:
            response = self.transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            name = type(exc).__name__
            raise NetworkError(f"{provider}: cannot connect ({name})", sent=False) from None
        except httpx.TransportError as exc:  # read/write timeouts, dropped connections
            raise NetworkError(f"{provider}: no answer ({type(exc).__name__})",
                               sent=True) from None
        if response.status_code >= 400:
            raise error_from_response(response, provider)
        try:
            answer = response.json()
        except ValueError:
            raise ServerError(f"{provider}: answer is not JSON",
                              status=response.status_code) from None
        if not isinstance(answer, dict):
            raise ServerError(f"{provider}: answer is not a JSON object",
                              status=response.status_code)
        return answer


def backoff_wait(attempt: int, base: float = 1.0, cap: float = 60.0,
                 rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: U(0, min(cap, base * 2^(attempt-1)))."""
    return rand() * min(cap, base * 2 ** max(0, attempt - 1))


def wait_for(exc: BaseException, attempt: int) -> float:
    """How long to wait before the next attempt: the provider's Retry-After when it gave one,
    else backoff with full jitter."""
    if isinstance(exc, StatusError) and exc.retry_after is not None:
        return exc.retry_after
    return backoff_wait(attempt)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable
