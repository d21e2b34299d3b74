"""Core settings: Kafka, registry, topics, server, and the fields every source has; `${ENV}` substitution.

Providers build their source models on `SourceSettings`; `bridge.config` puts them together into
the whole configuration. The import graph runs one way: config → providers → settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import ErrorDetails

from bridge import kafka_config
from bridge.errors import ConfigError
from bridge.events import EVENT_TYPES, WRITTEN_TOPICS
from bridge.secrets import FILE_REFERENCE, as_file_secret, lines, read_secret_file

CONFIG_ENV = "BRIDGE_CONFIG"
SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TOPIC_PREFIX = r"^[A-Za-z0-9._-]{1,200}$"
MESSAGE_KEY = re.compile(r"([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*): ")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# `${file:/path}` or an environment reference, in one pass: a value read from either is not scanned again.
REFERENCE = re.compile(r"\$\{file:([^}]+)\}|" + ENV_REFERENCE.pattern)
# Where `${file:/path}` stays a reference, re-read when the file changes (bridge/secrets.py).
ROTATING = re.compile(r"sources\.\d+\.secrets\.\d+|kafka\.sasl\.password")
# What stands in for a reference that could not be resolved, for commands that tolerate it.
UNRESOLVED = "(unresolved)"
# Providers give up on a delivery after about 30 s; the bridge must answer before that.
PROVIDER_TIMEOUT_SECONDS = 30
# The reference consumers' stores (bridge/consumers/store.py): one SQLite file per consumer unless configured.
STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
DEFAULT_STORE = "sqlite:///bridge-consumer-{name}.db"
# Request headers never copied into dead-letter records: credentials. Sources add their own.
PRIVATE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Kafka security: which protocols use SASL or TLS, and the SASL mechanisms that take a user and password.
SASL_PROTOCOLS = frozenset({"SASL_SSL", "SASL_PLAINTEXT"})
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
USER_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
# A secret that may be `${file:/path}`: then a FileSecret, read again when the file changes.
MaybeFileSecret = Annotated[SecretStr, BeforeValidator(as_file_secret)]


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
    management_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /healthz, /readyz and /metrics on this port only (the public port then answers 404 for "
        "them), so an Ingress in front of `port` reaches nothing but /webhooks/. Default: all on `port`.",
    )
    management_host: str | None = Field(None, description="Bind address of management_port; default: host.")

    @model_validator(mode="after")
    def _ports_differ(self) -> Self:
        if self.management_port == self.port:
            raise ValueError(f"management_port: {self.port} is `port` too; give the management endpoints their own")
        return self


class KafkaSaslSettings(ConfigModel):
    """SASL: the mechanism and, for PLAIN and SCRAM, the user. OAUTHBEARER's sasl.oauthbearer.* go in kafka.producer."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]
    username: str | None = None
    password: MaybeFileSecret | None = Field(
        None, description="`${file:/path}` is re-read when the file changes, and the producer re-authenticates with it."
    )

    @model_validator(mode="after")
    def _user_for_password_mechanisms(self) -> Self:
        if self.mechanism in USER_MECHANISMS and not (self.username and self.password):
            raise ValueError(f"{self.mechanism} needs username and password")
        if self.password is not None and not self.password.get_secret_value():
            raise ValueError("password: empty (is its environment variable set?)")
        return self


class KafkaTlsSettings(ConfigModel):
    """TLS: the CA bundle that signed the brokers' certificates, and a client certificate for mutual TLS."""

    ca: str | None = Field(None, description="PEM file of the CA(s) to trust; default: the system's.")
    certificate: str | None = Field(None, description="PEM file of the client certificate (mutual TLS).")
    key: str | None = Field(None, description="PEM file of the client certificate's private key.")
    key_password: SecretStr | None = None
    verify_hostname: bool = Field(True, description="Check the broker's name against its certificate.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.certificate is None) != (self.key is None):
            raise ValueError("certificate and key go together (mutual TLS needs both)")
        return self


class KafkaSettings(ConfigModel):
    bootstrap_servers: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = Field(
        None, description="Default: SASL_SSL with `sasl`, SSL with `tls` alone, else librdkafka's (PLAINTEXT)."
    )
    sasl: KafkaSaslSettings | None = None
    tls: KafkaTlsSettings | None = None
    passthrough: dict[str, str | int | float | bool] = Field(
        {},
        alias="producer",
        description="Extra librdkafka settings (compression.type, sasl.oauthbearer.*, ...), checked against "
        "librdkafka's property names; acks and enable.idempotence are fixed: the delivery guarantee is not "
        "configurable. Admin clients and consumers get every one that is not producer-only.",
    )

    @field_validator("passthrough")
    @classmethod
    def _guarantee_fixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = {"acks", "request.required.acks", "enable.idempotence", "bootstrap.servers", "metadata.broker.list"}
        clash = sorted(fixed & value.keys())
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be overridden (acks=all and idempotence are fixed)")
        problems = [f"unknown librdkafka property {name}" for name in kafka_config.unknown(value)]
        problems += [
            f"{name} is a consumer property (the producer would ignore it)"
            for name in kafka_config.consumer_only(value)
        ]
        if problems:
            raise ValueError("; ".join(problems) + " (known: librdkafka's CONFIGURATION.md)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        protocol = self.protocol()
        if self.sasl is not None and protocol not in SASL_PROTOCOLS:
            raise ValueError(f"sasl: not used with security_protocol {protocol}; SASL_SSL or SASL_PLAINTEXT use it")
        if self.tls is not None and protocol not in TLS_PROTOCOLS:
            raise ValueError(f"tls: not used with security_protocol {protocol}; SSL or SASL_SSL use it")
        if self.sasl is None and protocol in SASL_PROTOCOLS and "sasl.mechanism" not in self.passthrough:
            raise ValueError(f"sasl: security_protocol {protocol} needs a sasl mechanism (kafka.sasl)")
        first_class = sorted(self._first_class().keys() & self.passthrough.keys())
        if first_class:
            raise ValueError(
                f"producer: {', '.join(first_class)} come from kafka.security_protocol/sasl/tls: set them there"
            )
        return self

    def protocol(self) -> str:
        if self.security_protocol is not None:
            return self.security_protocol
        if self.sasl is not None:
            return "SASL_SSL"
        if self.tls is not None:
            return "SSL"
        return str(self.passthrough.get("security.protocol", "PLAINTEXT")).upper()

    @property
    def producer(self) -> dict[str, Any]:
        """Every librdkafka property the configuration gives (but bootstrap.servers): `kafka.producer`, plus
        what security_protocol, sasl and tls map to. A file-backed sasl.password stays a FileSecret (the
        publisher re-reads it); `kafka_config.plain()` turns the values into what librdkafka takes."""
        return {**self.passthrough, **self._first_class()}

    def _first_class(self) -> dict[str, Any]:
        mapped: dict[str, Any] = {}
        if self.security_protocol is not None or self.sasl is not None or self.tls is not None:
            mapped["security.protocol"] = self.protocol()
        if self.sasl is not None:
            mapped["sasl.mechanism"] = self.sasl.mechanism
            if self.sasl.username is not None:
                mapped["sasl.username"] = self.sasl.username
            if self.sasl.password is not None:
                mapped["sasl.password"] = self.sasl.password
        if self.tls is not None:
            mapped.update(_tls_properties(self.tls))
        return mapped


def _tls_properties(tls: KafkaTlsSettings) -> dict[str, Any]:
    locations = {"ssl.ca.location": tls.ca, "ssl.certificate.location": tls.certificate, "ssl.key.location": tls.key}
    mapped: dict[str, Any] = {key: value for key, value in locations.items() if value is not None}
    if tls.key_password is not None:
        mapped["ssl.key.password"] = tls.key_password
    mapped["ssl.endpoint.identification.algorithm"] = "https" if tls.verify_hostname else "none"
    return mapped


class RegistryTlsSettings(ConfigModel):
    """TLS to the registry: the CA that signed its certificate, and a client certificate if it asks for one."""

    ca: str | None = Field(None, description="PEM file of the CA(s) to trust; default: certifi's bundle.")
    certificate: str | None = Field(None, description="PEM file of a client certificate.")
    key: str | None = Field(None, description="PEM file of its private key.")

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> Self:
        if self.key is not None and self.certificate is None:
            raise ValueError("key: needs certificate")
        return self


class RegistryUser(ConfigModel):
    username: str = Field(min_length=1)
    password: SecretStr


class RegistrySettings(ConfigModel):
    url: str
    client: dict[str, str] = Field({}, description="Extra SchemaRegistryClient settings (cache.capacity, proxy, ...).")
    auto_register: bool = Field(
        True, description="Register the schemas at start-up; off where CI runs `bridge register-schemas`."
    )
    tls: RegistryTlsSettings | None = None
    basic_auth: SecretStr | RegistryUser | None = Field(
        None, description='"user:password" (a Confluent Cloud API key and secret) or {username, password}.'
    )
    bearer_token: SecretStr | None = Field(None, description="Sent as `Authorization: Bearer <token>`.")
    logical_cluster: str | None = Field(None, description="With bearer_token on Confluent Cloud: lsrc-...")
    identity_pool: str | None = Field(None, description="With bearer_token on Confluent Cloud: pool-...")

    @field_validator("basic_auth")
    @classmethod
    def _user_and_password(cls, value: SecretStr | RegistryUser | None) -> SecretStr | RegistryUser | None:
        if isinstance(value, SecretStr) and ":" not in value.get_secret_value():
            raise ValueError('basic_auth: "user:password", or {username, password}')
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("basic_auth: and bearer_token both set; the registry takes one")
        clash = sorted(self._first_class().keys() & self.client.keys())
        if clash:
            raise ValueError(f"client: {', '.join(clash)} come from schema_registry.tls/basic_auth/bearer_token")
        return self

    def client_config(self) -> dict[str, Any]:
        """SchemaRegistryClient's settings but `url` and `timeout`: `client` plus tls, basic_auth, bearer_token."""
        return {**self.client, **self._first_class()}

    def _first_class(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.tls is not None:
            locations = {"ssl.ca.location": self.tls.ca, "ssl.certificate.location": self.tls.certificate}
            config.update({key: value for key, value in locations.items() if value is not None})
            if self.tls.key is not None:
                config["ssl.key.location"] = self.tls.key
        if isinstance(self.basic_auth, RegistryUser):
            config["basic.auth.user.info"] = f"{self.basic_auth.username}:{self.basic_auth.password.get_secret_value()}"
        elif self.basic_auth is not None:
            config["basic.auth.user.info"] = self.basic_auth.get_secret_value()
        if self.bearer_token is not None:
            # confluent-kafka's static token needs a logical cluster; a registry other than Confluent's ignores it.
            config["bearer.auth.credentials.source"] = "STATIC_TOKEN"
            config["bearer.auth.token"] = self.bearer_token.get_secret_value()
            config["bearer.auth.logical.cluster"] = self.logical_cluster or ""
            if self.identity_pool is not None:
                config["bearer.auth.identity.pool.id"] = self.identity_pool
        return config


class TopicOverride(ConfigModel):
    """One topic's settings where they differ from `topics:` (e.g. a longer retention for dead letters)."""

    partitions: int | None = Field(None, ge=-1, description="Unset: topics.partitions.")
    replication_factor: int | None = Field(None, ge=-1, description="Unset: topics.replication_factor.")
    min_insync_replicas: int | None = Field(None, ge=-1, description="Unset: topics.min_insync_replicas.")
    retention_ms: int | None = Field(None, ge=-1, description="Unset: topics.retention_ms; -1: kept for ever.")
    max_message_bytes: int | None = Field(None, ge=1, description="Unset: topics.max_message_bytes.")

    @field_validator("partitions", "replication_factor", "min_insync_replicas")
    @classmethod
    def _counted(cls, value: int | None) -> int | None:
        return None if value is None else _count(value)


class TopicSettings(ConfigModel):
    prefix: str = Field("webhooks", pattern=TOPIC_PREFIX, description="topic = <prefix>.<event type>")
    create: bool = True
    partitions: int = Field(-1, description="-1: the broker's num.partitions")
    replication_factor: int = Field(-1, description="-1: the broker's default.replication.factor")
    # Managed by `bridge topics plan|apply` (and used when the bridge creates a topic); a key left at its
    # default is the broker's, and is never changed on an existing topic.
    min_insync_replicas: int = Field(-1, ge=-1, description="-1: the broker's min.insync.replicas")
    retention_ms: int | None = Field(
        None, ge=-1, description="retention.ms; unset: the broker's log.retention.*; -1: records are kept for ever"
    )
    max_message_bytes: int | None = Field(
        None,
        ge=1,
        description="Unset: what the largest record needs (server.max_body_bytes, max_header_bytes); "
        "a value below that is an error",
    )
    overrides: dict[str, TopicOverride] = Field(
        default_factory=dict,
        description="Per topic, by what follows the prefix (an event type, unmapped or dead-letter): "
        "the keys above that differ for it",
    )

    @field_validator("partitions", "replication_factor", "min_insync_replicas")
    @classmethod
    def _counted(cls, value: int) -> int:
        return _count(value)

    @field_validator("overrides")
    @classmethod
    def _known_topics(cls, value: dict[str, TopicOverride]) -> dict[str, TopicOverride]:
        unknown = sorted(set(value) - set(WRITTEN_TOPICS))
        if unknown:
            raise ValueError(f"no such topic: {', '.join(unknown)}; known: {', '.join(WRITTEN_TOPICS)}")
        return value

    def chosen_max_message_bytes(self) -> dict[str, int]:
        """Every max.message.bytes the file sets, by its key, for the check against the record limit."""
        chosen = {"topics.max_message_bytes": self.max_message_bytes}
        for name, override in self.overrides.items():
            chosen[f"topics.overrides.{name}.max_message_bytes"] = override.max_message_bytes
        return {key: value for key, value in chosen.items() if value is not None}


def _count(value: int) -> int:
    if value < 1 and value != -1:
        raise ValueError("at least 1, or -1 for the broker's default")
    return value


class ConsumerSettings(ConfigModel):
    """One reference consumer (bridge/consumers/): where it stores, and its consumer group."""

    store: str | None = Field(
        None, description="Store URL (sqlite:///file.db, postgresql://...); default: consumers.store."
    )
    group: str | None = Field(None, description="Consumer group; default: <topics.prefix>.consumer.<name>.")

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return None if value is None else check_store_url(value)


class ConsumersSettings(ConfigModel):
    """The reference consumers: suppression, analytics, billing. All optional, with defaults."""

    store: str = Field(
        DEFAULT_STORE,
        description="Store URL for every consumer without its own; `{name}` becomes the consumer's name, so each "
        "gets its own SQLite file by default.",
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Records per poll, stored in one transaction.")
    poll_seconds: float = Field(0.5, gt=0, le=30, description="How long one poll waits for records.")
    suppression: ConsumerSettings = Field(default_factory=ConsumerSettings)
    analytics: ConsumerSettings = Field(default_factory=ConsumerSettings)
    billing: ConsumerSettings = Field(default_factory=ConsumerSettings)

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return check_store_url(value)

    def store_for(self, name: str) -> str:
        own: ConsumerSettings = getattr(self, name)
        return (own.store or self.store).replace("{name}", name)

    def group_for(self, name: str, prefix: str) -> str:
        own: ConsumerSettings = getattr(self, name)
        return own.group or f"{prefix}.consumer.{name}"


def check_store_url(value: str) -> str:
    if not value.startswith(STORE_SCHEMES):
        raise ValueError(f"{value!r}: a store URL starts with {' or '.join(STORE_SCHEMES)}")
    return value


class RateLimit(ConfigModel):
    """A token bucket: `per_second` tokens added each second, at most `burst` held; one per request."""

    per_second: float = Field(gt=0)
    burst: int = Field(1, ge=1)


class SourceSettings(ConfigModel):
    """What every source has. Each provider subclasses it with `provider: Literal[...]` and its `options`."""

    name: str = Field(pattern=SOURCE_NAME, description="The route: POST /webhooks/<name>.")
    provider: str
    secrets: list[MaybeFileSecret] = Field(
        [],
        description="Shared secrets, several at once during rotation. `${file:/path}`: the file's lines, each a "
        "secret, read again when the file changes.",
    )
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
        """The secrets as they stand now: a file-backed entry gives its file's current lines."""
        return [value for secret in self.secrets for value in lines(secret)]

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


def substitute_env(value: Any, environ: dict[str, str], path: str = "", unresolved: list[str] | None = None) -> Any:
    """Replace `${VAR}`, `${VAR:-default}` and `${file:/path}` in every string of a loaded YAML tree.

    A value that is exactly `${file:/path}` where a secret is re-read on change (ROTATING) is left as it
    is: the settings make it a FileSecret (bridge/secrets.py). A reference that cannot be resolved is a
    ConfigError; given an `unresolved` list, it is noted there instead and replaced by UNRESOLVED (for
    commands that need only part of the configuration: no webhook secret to list topics, say).
    """
    if isinstance(value, dict):
        return {
            key: substitute_env(item, environ, f"{path}.{key}" if path else str(key), unresolved)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(item, environ, f"{path}.{index}", unresolved) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    rotating = FILE_REFERENCE.fullmatch(value.strip()) if ROTATING.fullmatch(path) else None
    if rotating is not None:
        if unresolved is not None:
            try:
                read_secret_file(rotating.group(1).strip())
            except ValueError as error:
                unresolved.append(f"{path}: {error}")
                return UNRESOLVED
        return value

    def unresolvable(problem: str) -> str:
        if unresolved is None:
            raise ConfigError(f"{path}: {problem}")
        unresolved.append(f"{path}: {problem}")
        return UNRESOLVED

    def replace(match: re.Match[str]) -> str:
        file, name, default = match.group(1), match.group(2), match.group(3)
        if file is not None:
            try:
                return read_secret_file(file.strip())
            except ValueError as error:
                return unresolvable(str(error))
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        return unresolvable(f"environment variable {name} is not set")

    return REFERENCE.sub(replace, value)


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
