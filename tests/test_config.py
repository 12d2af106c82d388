"""Settings: precedence env > .env > config.yaml > profile > default, aliases, ranges, and
one-line errors that never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm.config import load_settings
from swarm.errors import ConfigError


def test_defaults_are_the_500k_profile() -> None:
    s = load_settings()
    assert (s.swarm_profile, s.total_agents, s.max_concurrent, s.budget_usd) == (
        "500k", 500_000, 500, 75.0)
    assert s.kimi_base_url == "https://api.moonshot.ai/v1"
    assert s.anthropic_base_url == "https://api.anthropic.com"
    assert s.kimi_model == "moonshot-v1-8k"
    assert s.budget_stop_ratio == 0.95
    assert s.test_tasks == 100
    assert s.moonshot_api_key is None and s.simulated
    assert s.slots_per_message == "auto"


def test_100k_profile() -> None:
    s = load_settings(swarm_profile="100k")
    assert (s.total_agents, s.max_concurrent, s.budget_usd, s.test_tasks, s.kimi_max_tokens) == (
        100_000, 50, 15.0, 10, 400)


def test_precedence_env_dotenv_yaml_profile_default(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text(
        "SWARM_PROFILE: 100k\nMAX_CONCURRENT: 11\nBUDGET_USD: 9\nRPM_LIMIT: 300\n"
        "kimi_temperature: 0.3\n")
    (tmp_path / ".env").write_text("MAX_CONCURRENT=22\nBUDGET_USD=8\n")
    monkeypatch.setenv("MAX_CONCURRENT", "33")
    s = load_settings()
    assert s.max_concurrent == 33  # env beats .env
    assert s.budget_usd == 8.0  # .env beats config.yaml
    assert s.rpm_limit == 300  # config.yaml beats the profile
    assert s.kimi_temperature == 0.3  # config.yaml beats the default
    assert s.swarm_profile == "100k" and s.total_agents == 100_000  # profile from config.yaml
    assert s.tpm_limit == 2_000_000  # the profile beats the default


def test_max_kimi_agents_is_an_alias_of_total_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_KIMI_AGENTS", "50000")
    assert load_settings().total_agents == 50_000


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("MAX_CONCURRENT", "0", "MAX_CONCURRENT"),
    ("BUDGET_USD", "-1", "BUDGET_USD"),
    ("BUDGET_STOP_RATIO", "1.5", "BUDGET_STOP_RATIO"),
    ("RPM_LIMIT", "many", "RPM_LIMIT"),
    ("SWARM_PROFILE", "nosuch", "unknown profile"),
    ("SLOTS_PER_MESSAGE", "some", "SLOTS_PER_MESSAGE"),
    ("SLOTS_PER_MESSAGE", "0", "SLOTS_PER_MESSAGE"),
])
def test_bad_values_give_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                  needle: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_malformed_yaml(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("max_concurrent: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings()
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings()


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-very-secret-kimi-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    s = load_settings()
    assert "sk-very-secret" not in repr(s) and "sk-ant-very" not in str(s.model_dump())
    assert s.moonshot_api_key is not None
    assert s.moonshot_api_key.get_secret_value() == "sk-very-secret-kimi-key"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    monkeypatch.setenv("MAX_CONCURRENT", "x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "sk-very-secret" not in str(info.value)


def test_unknown_model_price_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_MODEL", "kimi-next-unpriced")
    s = load_settings()
    assert s.kimi_price() is None
    monkeypatch.setenv("KIMI_PRICE_IN", "1.5")
    monkeypatch.setenv("KIMI_PRICE_OUT", "6")
    price = load_settings().kimi_price()
    assert price is not None and (price.input, price.output) == (1.5, 6.0)
