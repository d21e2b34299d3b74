"""The whole configuration: core settings plus `sources`, a union of every provider's source model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import yaml
from pydantic import Discriminator, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from bridge.errors import ConfigError
from bridge.providers import PROVIDERS
from bridge.records import BATCH_OVERHEAD_BYTES, record_limit
from bridge.settings import (
    CONFIG_ENV,
    ConfigModel,
    ConsumersSettings,
    KafkaSettings,
    RegistrySettings,
    ServerSettings,
    SourceSettings,
    TopicSettings,
    problem_line,
    substitute_env,
)

PROVIDER_NAMES = frozenset(PROVIDERS)
# `provider` picks the model, so `options` is checked by the provider's own schema (and in the JSON Schema).
# The union is built from the registry at run time; to the type checker every source is a SourceSettings.
if TYPE_CHECKING:
    AnySource = SourceSettings
else:
    AnySource = Annotated[Union[tuple(spec.source for spec in PROVIDERS.values())], Discriminator("provider")]  # noqa: UP007
# Pydantic's words for a missing or unknown `provider`: reworded to name the key and the choices.
TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


class Settings(ConfigModel):
    kafka: KafkaSettings
    schema_registry: RegistrySettings
    topics: TopicSettings = Field(default_factory=TopicSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    sources: list[AnySource] = Field(min_length=1)
    consumers: ConsumersSettings = Field(default_factory=ConsumersSettings)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceSettings]) -> list[SourceSettings]:
        names = [source.name for source in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _records_fit(self) -> Settings:
        needed = record_limit(self.server.max_body_bytes, self.server.max_header_bytes) + BATCH_OVERHEAD_BYTES
        chosen = self.kafka.producer.get("message.max.bytes")
        if chosen is not None and int(chosen) < needed:
            raise ValueError(
                f"kafka.producer.message.max.bytes: {chosen} is below the {needed} bytes a record may take "
                "(server.max_body_bytes + server.max_header_bytes + record overhead); raise it or lower those"
            )
        for key, topic_bytes in self.topics.chosen_max_message_bytes().items():
            if topic_bytes < needed:
                raise ValueError(f"{key}: {topic_bytes} is below the {needed} bytes a record needs; raise or unset it")
        return self

    def source(self, name: str) -> SourceSettings | None:
        return next((source for source in self.sources if source.name == name), None)


_SOURCE: TypeAdapter[SourceSettings] = TypeAdapter(AnySource)


def parse_source(tree: dict[str, Any]) -> SourceSettings:
    """One source, as in the `sources` list; errors name its keys."""
    try:
        return _SOURCE.validate_python(tree)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def expand(
    text: str, environ: dict[str, str] | None = None, origin: str = "config", unresolved: list[str] | None = None
) -> dict[str, Any]:
    """The YAML text as a tree, `${VAR}` substituted: what the settings and the JSON Schema judge.
    `unresolved`: see settings.substitute_env."""
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from error
    if not isinstance(tree, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping")
    return dict(substitute_env(tree, dict(os.environ) if environ is None else environ, unresolved=unresolved))


def parse(
    text: str, environ: dict[str, str] | None = None, origin: str = "config", unresolved: list[str] | None = None
) -> Settings:
    tree = expand(text, environ, origin, unresolved)
    try:
        return Settings.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(f"{origin}: " + _describe(error)) from None


def load(
    path: str | None = None, environ: dict[str, str] | None = None, unresolved: list[str] | None = None
) -> Settings:
    env = dict(os.environ) if environ is None else environ
    chosen = path or env.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError(f"no configuration: pass --config FILE or set {CONFIG_ENV}")
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {chosen}: {error.strerror}") from None
    return parse(text, env, origin=chosen, unresolved=unresolved)


def json_schema() -> str:
    """The JSON Schema (draft 2020-12) of the configuration, after `${VAR}` substitution."""
    schema = Settings.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "webhook-kafka-bridge configuration"
    return json.dumps(schema, indent=2, sort_keys=True)


def _describe(error: ValidationError) -> str:
    return "; ".join(_line(problem) for problem in error.errors())


def _line(problem: ErrorDetails) -> str:
    if problem["type"] not in TAG_ERRORS:
        return problem_line(problem, skip=PROVIDER_NAMES)
    where = ".".join(str(part) for part in problem["loc"])
    given = problem["input"].get("provider") if isinstance(problem["input"], dict) else None
    if given is None:
        return f"{where}.provider: Field required; known providers: {', '.join(sorted(PROVIDERS))}"
    return f"{where}.provider: unknown provider {given!r}; known: {', '.join(sorted(PROVIDERS))}"
