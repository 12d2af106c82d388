"""The HTTP clients: error classes by status and type, Retry-After, network errors, and no
secret in any message."""

from __future__ import annotations

import threading

import httpx
import pytest

from swarm import errors
from swarm.providers.anthropic import AnthropicClient
from swarm.providers.http import Http, backoff_wait, retry_after_seconds
from swarm.providers.kimi import KimiClient

KEY = "sk-live-0123456789abcdefSECRET"


def kimi_with(handler) -> KimiClient:  # type: ignore[no-untyped-def]
    transport = httpx.MockTransport(handler)
    return KimiClient("https://kimi.test/v1", KEY, Http(transport))


def call(client: KimiClient):  # type: ignore[no-untyped-def]
    return client.chat("moonshot-v1-8k", [{"role": "user", "content": "hi"}], 10, 0.5)


def moonshot_error(status: int, etype: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    body = {"error": {"message": f"failed for key {KEY}", "type": etype}}
    return lambda request: httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(("status", "etype", "cls", "retryable"), [
    (401, "invalid_authentication_error", errors.AuthError, False),
    (403, "permission_denied_error", errors.AuthError, False),
    (400, "invalid_request_error", errors.BadRequest, False),
    (404, "resource_not_found_error", errors.BadRequest, False),
    (429, "rate_limit_reached_error", errors.RateLimited, True),
    (429, "engine_overloaded_error", errors.Overloaded, True),
    (429, "exceeded_current_quota_error", errors.QuotaExhausted, False),
    (500, "server_error", errors.ServerError, True),
    (503, "", errors.ServerError, True),
])
def test_status_errors_map_to_classes(status, etype, cls, retryable) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.StatusError) as info:
        call(kimi_with(moonshot_error(status, etype)))
    assert type(info.value) is cls
    assert info.value.retryable is retryable
    assert info.value.status == status
    assert KEY not in str(info.value)


def test_retry_after_header_is_kept() -> None:
    with pytest.raises(errors.RateLimited) as info:
        call(kimi_with(moonshot_error(429, "rate_limit_reached_error", {"Retry-After": "7"})))
    assert info.value.retry_after == 7.0


def test_network_errors_say_whether_the_request_was_sent() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(errors.NetworkError) as info:
        call(kimi_with(refuse))
    assert info.value.sent is False and info.value.retryable
    with pytest.raises(errors.NetworkError) as info:
        call(kimi_with(drop))
    assert info.value.sent is True


def test_success_returns_text_and_usage() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "created": 1, "model": "moonshot-v1-8k",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

    c = call(kimi_with(ok))
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason) == ("{}", 3, 2, "stop")


def test_malformed_success_is_a_server_error() -> None:
    with pytest.raises(errors.ServerError):
        call(kimi_with(lambda request: httpx.Response(200, json={"choices": []})))
    with pytest.raises(errors.ServerError):
        call(kimi_with(lambda request: httpx.Response(200, text="<html>")))


def test_anthropic_overloaded_and_rate_limited() -> None:
    def respond(status: int, etype: str):  # type: ignore[no-untyped-def]
        body = {"type": "error", "error": {"type": etype, "message": "no"}}
        return AnthropicClient("https://claude.test", KEY, Http(httpx.MockTransport(
            lambda r: httpx.Response(status, json=body, headers={"retry-after": "3"}))))

    with pytest.raises(errors.Overloaded):
        respond(529, "overloaded_error").message("m", "s", "u", 10)
    with pytest.raises(errors.RateLimited) as info:
        respond(429, "rate_limit_error").message("m", "s", "u", 10)
    assert info.value.retry_after == 3.0


def test_retry_after_forms_and_backoff_bounds() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert backoff_wait(1, rand=lambda: 1.0) == 1.0
    assert backoff_wait(4, rand=lambda: 1.0) == 8.0
    assert backoff_wait(30, rand=lambda: 1.0) == 60.0
    assert backoff_wait(3, rand=lambda: 0.0) == 0.0


def test_redact_removes_registered_and_key_shaped_secrets() -> None:
    errors.register_secret("plain-secret-value")
    assert "plain-secret-value" not in errors.redact("oops plain-secret-value here")
    assert "sk-abcdef123456" not in errors.redact("key sk-abcdef123456 leaked")
    assert "abc.def.ghi" not in errors.redact("Authorization: Bearer abc.def.ghi")


def test_per_thread_http_gives_each_thread_its_own_transport() -> None:
    """Worker threads never share a connection pool (see Http.per_thread)."""
    http = Http.per_thread(5.0)
    seen: list[tuple[httpx.BaseTransport, httpx.BaseTransport]] = []
    threads = [threading.Thread(target=lambda: seen.append((http.transport, http.transport)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(first is again for first, again in seen)  # kept by its thread
    assert len({id(first) for first, _ in seen}) == 3  # and no other's
    shared = Http(httpx.MockTransport(lambda request: httpx.Response(200)))
    assert shared.transport is shared.transport
