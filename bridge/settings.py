"""Core settings: Kafka, registry, topics, server, and the fields every source has; `${ENV}` substitution.

Providers build their source models on `SourceSettings`; `bridge.config` puts them together into
the whole configuration. The import graph runs one way: config → providers → settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import ErrorDetails

from bridge.errors import ConfigError
from bridge.events import EVENT_TYPES

CONFIG_ENV = "BRIDGE_CONFIG"
SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TOPIC_PREFIX = r"^[A-Za-z0-9._-]{1,200}$"
MESSAGE_KEY = re.compile(r"([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*): ")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Providers give up on a delivery after about 30 s; the bridge must answer before that.
PROVIDER_TIMEOUT_SECONDS = 30
# Request headers never copied into dead-letter records: credentials. Sources add their own.
PRIVATE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class ConfigModel(BaseModel):
    """Every configuration object: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(ConfigModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    publish_timeout_seconds: float = Field(10.0, gt=0, lt=PROVIDER_TIMEOUT_SECONDS)
    retry_after_seconds: int = Field(30, ge=1)
    shutdown_timeout_seconds: float = Field(20.0, gt=0)
    # Connection hygiene: the internet reaches this port, slow or greedy clients must not hold it.
    head_timeout_seconds: float = Field(
        10.0, gt=0, description="From a request's first byte to the end of its headers; then 408 and close."
    )
    body_timeout_seconds: float = Field(
        20.0, gt=0, description="From the end of the headers to the end of the body; then the connection is closed."
    )
    keep_alive_seconds: float = Field(
        5.0, gt=0, description="How long a connection may sit idle, before its first request or between requests."
    )
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="Request line plus headers; beyond it 431 and close.")
    max_headers: int = Field(100, ge=8, description="Header lines per request; beyond it 431 and close.")
    max_connections: int = Field(1000, ge=1, description="Open connections; beyond it new ones get 503 + Retry-After.")
    max_concurrent_requests: int = Field(
        256, ge=1, description="Requests being handled at once; beyond it 503 + Retry-After."
    )
    # Duplicates: a redelivery of what this process acknowledged is answered without publishing again.
    dedupe_seconds: float = Field(
        3600.0, ge=0, description="How long an acknowledged delivery is remembered (0: only concurrent copies)."
    )
    dedupe_max_entries: int = Field(100_000, ge=1, description="Deliveries remembered at most (oldest first out).")
    access_log: bool = Field(
        False,
        description="uvicorn's access line for every request, at INFO. Off by default: each delivery has its own "
        "structured line, and bridge_requests_total counts every answer by status.",
    )
    workers: int = Field(
        1,
        ge=1,
        description="Processes serving the port, each with its own producer (`serve --workers` overrides; Linux). "
        "Metrics, the dedupe window and the connection limits are per process; rate limits are divided.",
    )


class KafkaSettings(ConfigModel):
    bootstrap_servers: str
    producer: dict[str, str | int | float | bool] = Field(
        {},
        description="Extra librdkafka settings (security.protocol, sasl.*, ssl.*, compression.type, ...); "
        "acks and enable.idempotence are fixed: the delivery guarantee is not configurable.",
    )

    @field_validator("producer")
    @classmethod
    def _guarantee_fixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = {"acks", "request.required.acks", "enable.idempotence", "bootstrap.servers"}
        clash = sorted(fixed & value.keys())
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be overridden (acks=all and idempotence are fixed)")
        return value


class RegistrySettings(ConfigModel):
    url: str
    client: dict[str, str] = Field({}, description="Extra SchemaRegistryClient settings, e.g. basic.auth.user.info.")
    auto_register: bool = Field(
        True, description="Register the schemas at start-up; off where CI runs `bridge register-schemas`."
    )


class TopicSettings(ConfigModel):
    prefix: str = Field("webhooks", pattern=TOPIC_PREFIX, description="topic = <prefix>.<event type>")
    create: bool = True
    partitions: int = Field(-1, description="-1: the broker's num.partitions")
    replication_factor: int = Field(-1, description="-1: the broker's default.replication.factor")


class RateLimit(ConfigModel):
    """A token bucket: `per_second` tokens added each second, at most `burst` held; one per request."""

    per_second: float = Field(gt=0)
    burst: int = Field(1, ge=1)


class SourceSettings(ConfigModel):
    """What every source has. Each provider subclasses it with `provider: Literal[...]` and its `options`."""

    name: str = Field(pattern=SOURCE_NAME, description="The route: POST /webhooks/<name>.")
    provider: str
    secrets: list[SecretStr] = Field([], description="Shared secrets, several at once during rotation.")
    tolerance_seconds: int = Field(300, ge=0, description="Signed-timestamp window, both directions.")
    event_types: list[str] | None = Field(
        None, description="Canonical event types this source publishes; others are acknowledged and counted."
    )
    rate_limit: RateLimit | None = Field(
        None, description="Off by default. Requests beyond it get 429 with Retry-After, before any verification."
    )

    @field_validator("secrets")
    @classmethod
    def _non_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not secret.get_secret_value() for secret in value):
            raise ValueError("a secret is empty (is its environment variable set?)")
        return value

    @field_validator("event_types")
    @classmethod
    def _canonical(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
        return value

    def secret_values(self) -> list[str]:
        return [secret.get_secret_value() for secret in self.secrets]

    def publishes(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def private_headers(self) -> frozenset[str]:
        """Lower-case names of request headers that carry credentials: never copied into dead letters."""
        return PRIVATE_HEADERS

    def require_secrets(self) -> None:
        if not self.secrets:
            raise ValueError("secrets: this provider needs at least one secret")


class SecretSource(SourceSettings):
    """A source verified with shared secrets (HMAC keys): at least one is required."""

    @model_validator(mode="after")
    def _needs_secrets(self) -> Self:
        self.require_secrets()
        return self


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


def problem_line(problem: ErrorDetails, skip: frozenset[str] = frozenset()) -> str:
    """`<key path>: <message>` for one pydantic error; `skip` names path parts pydantic adds that are
    not keys (a union's tag)."""
    parts = list(problem["loc"])
    keys = [str(part) for index, part in enumerate(parts) if not (part in skip and _after_index(parts, index))]
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        message = "unknown key"
    elif problem["type"] == "string_pattern_mismatch" and keys[-1:] == ["name"]:
        message = "a source name takes lower-case letters, digits, '-' and '_' (it is a URL segment)"
    elif problem["type"] == "string_pattern_mismatch" and keys[-1:] == ["prefix"]:
        message = "a topic prefix takes letters, digits, '.', '_' and '-'"
    # A model-level check names its key in the message ("options.header: ..."): make it part of the path.
    if (named := MESSAGE_KEY.match(message)) is not None:
        more = named.group(1).split(".")
        keys, message = [*keys, *(more[1:] if keys[-1:] == more[:1] else more)], message[named.end() :]
    return f"{'.'.join(keys) or '(top level)'}: {message}"


def _after_index(parts: Sequence[str | int], index: int) -> bool:
    """A union's tag stands first (one source) or right after a source's index (`sources.0.<tag>`)."""
    return index == 0 or (index == 2 and parts[0] == "sources" and isinstance(parts[1], int))


class NoOptions(ConfigModel):
    """`options` of a provider configured by secrets alone: any key is an error."""
