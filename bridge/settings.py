"""Settings: the YAML configuration, `${ENV}` substituted and validated once at start-up."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.errors import ConfigError

CONFIG_ENV = "BRIDGE_CONFIG"
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,200}")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Providers give up on a delivery after about 30 s; the bridge must answer before that.
PROVIDER_TIMEOUT_SECONDS = 30


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    publish_timeout_seconds: float = Field(10.0, gt=0, lt=PROVIDER_TIMEOUT_SECONDS)
    retry_after_seconds: int = Field(30, ge=1)
    shutdown_timeout_seconds: float = Field(20.0, gt=0)


class KafkaSettings(_Model):
    bootstrap_servers: str
    # Extra librdkafka settings (security.protocol, sasl.*, ssl.*, compression.type, ...).
    # acks and enable.idempotence are not among them: the delivery guarantee is not configurable.
    producer: dict[str, str | int | float | bool] = {}

    @field_validator("producer")
    @classmethod
    def _guarantee_fixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = {"acks", "request.required.acks", "enable.idempotence", "bootstrap.servers"}
        clash = sorted(fixed & value.keys())
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be overridden (acks=all and idempotence are fixed)")
        return value


class RegistrySettings(_Model):
    url: str
    # Extra SchemaRegistryClient settings, e.g. basic.auth.user.info.
    client: dict[str, str] = {}
    # Register the schemas at start-up. Off where CI runs `bridge register-schemas` instead.
    auto_register: bool = True


class TopicSettings(_Model):
    prefix: str = "webhooks"
    create: bool = True
    partitions: int = Field(-1, description="-1: the broker's num.partitions")
    replication_factor: int = Field(-1, description="-1: the broker's default.replication.factor")

    @field_validator("prefix")
    @classmethod
    def _legal_topic(cls, value: str) -> str:
        if not TOPIC_PREFIX.fullmatch(value):
            raise ValueError("a topic prefix takes letters, digits, '.', '_' and '-'")
        return value


class SourceSettings(_Model):
    name: str
    provider: str
    # Shared secrets, several at once during rotation; which ones a provider needs, it checks.
    secrets: list[SecretStr] = []
    tolerance_seconds: int = Field(300, ge=0)
    # Canonical event types this source publishes; others are acknowledged, counted, not published.
    event_types: list[str] | None = None
    # Provider-specific settings (credentials, keys, allow-lists), validated by the provider.
    options: dict[str, Any] = {}
    _parsed_options: Any = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _url_safe(cls, value: str) -> str:
        if not SOURCE_NAME.fullmatch(value):
            raise ValueError("a source name takes lower-case letters, digits, '-' and '_' (it is a URL segment)")
        return value

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        from bridge.providers import PROVIDERS

        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}; known: {', '.join(sorted(PROVIDERS))}")
        return value

    @field_validator("secrets")
    @classmethod
    def _non_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not secret.get_secret_value() for secret in value):
            raise ValueError("a secret is empty (is its environment variable set?)")
        return value

    @field_validator("event_types")
    @classmethod
    def _canonical(cls, value: list[str] | None) -> list[str] | None:
        from bridge.events import EVENT_TYPES

        unknown = sorted(set(value or ()) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _provider_accepts(self) -> SourceSettings:
        from bridge.providers import PROVIDERS

        if self.provider in PROVIDERS:  # else _known_provider has already said so
            self._parsed_options = PROVIDERS[self.provider].check(self)
        return self

    def secret_values(self) -> list[str]:
        return [secret.get_secret_value() for secret in self.secrets]

    @property
    def parsed_options(self) -> Any:
        """What the provider's `check` made of `options` at start-up."""
        return self._parsed_options

    def publishes(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class Settings(_Model):
    kafka: KafkaSettings
    schema_registry: RegistrySettings
    topics: TopicSettings = Field(default_factory=TopicSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    sources: list[SourceSettings] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceSettings]) -> list[SourceSettings]:
        names = [source.name for source in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {', '.join(repeated)}")
        return value

    def source(self, name: str) -> SourceSettings | None:
        return next((source for source in self.sources if source.name == name), None)


def substitute_env(value: Any, environ: dict[str, str], path: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a loaded YAML tree."""
    if isinstance(value, dict):
        return {
            key: substitute_env(item, environ, f"{path}.{key}" if path else str(key)) for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(item, environ, f"{path}.{index}") for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return ENV_REFERENCE.sub(replace, value)


def parse(text: str, environ: dict[str, str] | None = None, origin: str = "config") -> Settings:
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from error
    if not isinstance(tree, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping")
    tree = substitute_env(tree, dict(os.environ) if environ is None else environ)
    try:
        return Settings.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(f"{origin}: " + _describe(error)) from None


def load(path: str | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if environ is None else environ
    chosen = path or env.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError(f"no configuration: pass --config FILE or set {CONFIG_ENV}")
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {chosen}: {error.strerror}") from None
    return parse(text, env, origin=chosen)


def _describe(error: ValidationError) -> str:
    """One line per problem, each naming the key, e.g. `sources.0.secrets: Field required`."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)
