"""Settings: environment > `.env` > `config.yaml` > profile > default.

Every name is the environment variable's name (case-insensitive); `config.yaml` takes the
same names as keys. A profile (`SWARM_PROFILE` or `--profile`) fills in what no source set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from swarm.errors import ConfigError, register_secret
from swarm.prices import Price, price_for

PROFILES: dict[str, dict[str, Any]] = {
    # The seed's swarm_100k.py, at Moonshot tier-1 limits (50 concurrent, 200 RPM, 2M TPM).
    "100k": {
        "total_agents": 100_000,
        "max_concurrent": 50,
        "budget_usd": 15.0,
        "rpm_limit": 200,
        "tpm_limit": 2_000_000,
        "kimi_max_tokens": 400,
        "test_tasks": 10,
        "default_tasks": 1_000,
    },
    # The seed's swarm_500k.py, at Moonshot tier-5 limits (1,000 concurrent, 10K RPM, 5M TPM).
    "500k": {
        "total_agents": 500_000,
        "max_concurrent": 500,
        "budget_usd": 75.0,
        "rpm_limit": 10_000,
        "tpm_limit": 5_000_000,
        "kimi_max_tokens": 500,
        "test_tasks": 100,
        "default_tasks": 10_000,
    },
}

SECRET_FIELDS = {"moonshot_api_key", "anthropic_api_key", "flower_basic_auth"}


class _YamlSource(PydanticBaseSettingsSource):
    """`config.yaml` (or `$SWARM_CONFIG`): a mapping of setting names, any case."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole mapping

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{self.path}: not valid YAML{where}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: must be a mapping of setting names to values")
        return {str(k).lower(): v for k, v in data.items()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
    )

    swarm_profile: Literal["100k", "500k"] = "500k"

    moonshot_api_key: SecretStr | None = None
    kimi_base_url: str = "https://api.moonshot.ai/v1"
    kimi_model: str = "moonshot-v1-8k"
    kimi_max_tokens: int = Field(500, ge=1, le=32_768)
    kimi_temperature: float = Field(0.8, ge=0, le=2)
    kimi_timeout_s: float = Field(60.0, gt=0, le=600)
    kimi_max_attempts: int = Field(5, ge=1, le=20)
    kimi_price_in: float | None = Field(None, ge=0)
    kimi_price_out: float | None = Field(None, ge=0)

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_model: str = "claude-haiku-4-5"
    anthropic_max_tokens: int = Field(1024, ge=1, le=8192)
    anthropic_price_in: float | None = Field(None, ge=0)
    anthropic_price_out: float | None = Field(None, ge=0)
    max_claude_agents: int = Field(2, ge=1, le=100)

    redis_url: str | None = None
    max_concurrent: int = Field(500, ge=1, le=10_000)
    total_agents: int = Field(
        500_000,
        ge=1,
        le=5_000_000,
        validation_alias=AliasChoices("total_agents", "max_kimi_agents"),
    )
    test_tasks: int = Field(100, ge=1)
    default_tasks: int = Field(10_000, ge=1)
    budget_usd: float = Field(75.0, gt=0, le=1_000_000)
    budget_stop_ratio: float = Field(0.95, gt=0, le=1)
    rpm_limit: int = Field(10_000, ge=1)
    tpm_limit: int = Field(5_000_000, ge=1)
    window_size: int | None = Field(None, ge=1)
    worker_threads: int | None = Field(None, ge=1, le=1000)
    # "auto": sized from the run's measured call latency (see swarm.producer.message_size)
    slots_per_message: Annotated[int, Field(ge=1, le=100)] | Literal["auto"] = "auto"
    lease_ttl_s: float = Field(300.0, ge=10)
    refeed_after_s: float = Field(900.0, ge=1)
    sweep_every_s: float = Field(30.0, gt=0)

    output_dir: Path = Path("output")
    state_dir: Path = Path(".swarm")
    orchestrate_every_s: float = Field(60.0, gt=0)
    revenue_conversion: float = Field(0.10, ge=0, le=1)

    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    task_events: bool = True  # Celery task events, which Flower shows (about 10 % of CPU)
    flower_basic_auth: SecretStr | None = None  # "user:password", read by Flower itself
    flower_port: int = Field(5555, ge=1, le=65535)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("SWARM_CONFIG", "config.yaml"))
        return init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls, path)

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lowered = {str(k).lower(): k for k in data}
        name = str(data.get(lowered.get("swarm_profile", ""), "500k")).lower()
        profile = PROFILES.get(name)
        if profile is None:
            raise ValueError(f"SWARM_PROFILE: unknown profile {name!r} (choose 100k or 500k)")
        data = dict(data)
        data[lowered.get("swarm_profile", "swarm_profile")] = name
        for key, value in profile.items():
            names = {key, "max_kimi_agents"} if key == "total_agents" else {key}
            if not names & lowered.keys():
                data[key] = value
        return data

    # -- derived values ---------------------------------------------------------------

    @property
    def window(self) -> int:
        return self.window_size or max(20, 10 * self.max_concurrent)

    @property
    def threads(self) -> int:
        """Threads per worker process: WORKER_THREADS, else MAX_CONCURRENT up to 200."""
        return self.worker_threads or min(self.max_concurrent, 200)

    @property
    def stop_line_micro(self) -> int:
        return int(self.budget_usd * self.budget_stop_ratio * 1_000_000)

    @property
    def simulated(self) -> bool:
        return self.moonshot_api_key is None

    def kimi_price(self) -> Price | None:
        return price_for(self.kimi_model, self.kimi_price_in, self.kimi_price_out)

    def anthropic_price(self) -> Price | None:
        return price_for(self.anthropic_model, self.anthropic_price_in, self.anthropic_price_out)

    def broker_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if field and field.lower() not in SECRET_FIELDS and "input" in err and err["loc"]:
            parts.append(f"{field.upper()}: {msg} (got {err['input']!r})")
        elif err["loc"]:
            parts.append(f"{field.upper()}: {msg}")
        else:
            parts.append(msg)
    return "invalid settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise :class:`ConfigError` with one line saying what is wrong."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    for field in SECRET_FIELDS:
        secret = getattr(settings, field)
        if secret is not None:
            value = secret.get_secret_value()
            register_secret(value)
            register_secret(value.partition(":")[2])
    return settings
