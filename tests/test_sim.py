"""The simulator speaks the providers' exact shapes: proven with the official SDKs."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from swarm.catalog import BY_NAME, messages_for
from swarm.outputs import parse_answer
from swarm.prices import PRICES
from swarm.sim.server import SimConfig, SimServer


def test_openai_sdk_reads_moonshot_shape(sim: SimServer) -> None:
    client = openai.OpenAI(api_key="sk-anything", base_url=sim.url + "/v1")
    task = BY_NAME["competitor_intel"]
    msgs = messages_for(task, seed=1, index=42)
    resp = client.chat.completions.create(model="moonshot-v1-8k", messages=msgs,  # type: ignore[arg-type]
                                          max_tokens=500, temperature=0.8)
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    assert resp.model == "moonshot-v1-8k"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    answer = parse_answer(resp.choices[0].message.content or "", task)
    assert answer is not None and set(task.fields) <= set(answer)
    again = client.chat.completions.create(model="moonshot-v1-8k", messages=msgs,  # type: ignore[arg-type]
                                           max_tokens=500)
    assert again.choices[0].message.content == resp.choices[0].message.content  # deterministic
    ledger = httpx.get(sim.url + "/_stats").json()
    billed = 2 * PRICES["moonshot-v1-8k"].cost_micro(resp.usage.prompt_tokens,
                                                    resp.usage.completion_tokens)
    assert ledger["by_status"] == {"200": 2} and ledger["billed_micro"] == billed


def test_openai_sdk_sees_moonshot_401() -> None:
    with SimServer(SimConfig(latency_ms=0, jitter_ms=0, api_key="sk-right")) as sim:
        client = openai.OpenAI(api_key="sk-wrong", base_url=sim.url + "/v1", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="moonshot-v1-8k",
                                           messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 401
        assert info.value.body["type"] == "invalid_authentication_error"  # type: ignore[index]


def test_max_tokens_truncates_with_length(sim: SimServer) -> None:
    task = BY_NAME["gold_nugget_extraction"]
    r = httpx.post(sim.url + "/v1/chat/completions", headers={"Authorization": "Bearer k"},
                   json={"model": "moonshot-v1-8k", "messages": messages_for(task, 1, 1),
                         "max_tokens": 5}).json()
    assert r["choices"][0]["finish_reason"] == "length"
    assert r["usage"]["completion_tokens"] == 5
    assert parse_answer(r["choices"][0]["message"]["content"], task) is None


def test_anthropic_sdk_reads_messages_shape(sim: SimServer) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-anything", base_url=sim.url)
    msg = client.messages.create(
        model="claude-haiku-4-5", max_tokens=1024, system="review",
        messages=[{"role": "user", "content": 'stats {"viral_content_idea": {"completed": 3}}'}])
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    decision = json.loads(msg.content[0].text)  # type: ignore[union-attr]
    assert "viral_content_idea" in decision["weights"]


def test_unknown_model_is_404(sim: SimServer) -> None:
    r = httpx.post(sim.url + "/v1/chat/completions", headers={"Authorization": "Bearer k"},
                   json={"model": "no-such-model", "messages": []})
    assert r.status_code == 404 and r.json()["error"]["type"] == "resource_not_found_error"
