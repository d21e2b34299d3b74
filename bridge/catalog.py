"""The bridge's subjects in the schema registry: what is registered, how it compares with schemas/, and `check`.

Used by the `bridge schemas` commands; downstream teams run `bridge schemas check --schemas DIR` in CI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import SchemaParseException

from bridge.avro import COMPATIBILITY, UNREACHABLE, EventSchema, load_schemas, subject_for
from bridge.errors import ConfigError, RegistryUnavailable
from bridge.events import EVENT_TYPES, topic_for
from bridge.schema_diff import Change, diff

NOT_FOUND = 404
T = TypeVar("T")


@dataclass(frozen=True)
class Subject:
    """One subject the bridge writes to: `<prefix>.<event type>-value`, and its schema in schemas/."""

    event_type: str
    name: str
    local: EventSchema


@dataclass(frozen=True)
class Registered:
    version: int
    schema_id: int
    text: str


@dataclass(frozen=True)
class Verdict:
    """`check`'s answer for one subject: the registry's verdict and the diff that explains it."""

    subject: str
    level: str
    registered: Registered | None
    compatible: bool
    changes: list[Change] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A summary line naming the fields that break it, then one line per change."""
        if self.registered is None:
            return [f"{self.subject}: not registered yet (compatible: the first registration is version 1)"]
        against = f"version {self.registered.version} (id {self.registered.schema_id})"
        if not self.changes:
            said = "compatible with" if self.compatible else "incompatible with"
            head = f"{self.subject}: {said} {against}: no field changes"
        elif self.compatible:
            head = f"{self.subject}: compatible with {against} ({self.level})"
        else:
            head = f"{self.subject}: incompatible with {against} ({self.level}): {self._reasons()}"
        return [head, *(_line(change, self.level) for change in self.changes)]

    def _reasons(self) -> str:
        breaking = [change.text for change in self.changes if change.breaks_level(self.level)]
        # The registry may see what this diff does not (a transitive level, an older version): say so.
        return "; ".join(breaking) or "the registry gives no reason and the diff against the latest version finds none"


def _line(change: Change, level: str) -> str:
    return f"  ! {change.text} (breaks {level})" if change.breaks_level(level) else f"  - {change.text}"


def subjects(prefix: str, schemas: dict[str, EventSchema]) -> list[Subject]:
    return [
        Subject(event_type, subject_for(topic_for(prefix, event_type)), schema)
        for event_type, schema in schemas.items()
    ]


@contextmanager
def reachable() -> Iterator[None]:
    """Registry failures other than "not found" as RegistryUnavailable, with the registry's words."""
    try:
        yield
    except SchemaRegistryError as error:
        raise RegistryUnavailable(f"schema registry: {error}") from error
    except UNREACHABLE as error:
        raise RegistryUnavailable(f"schema registry unreachable: {error}") from error


def registered(client: SchemaRegistryClient, subject: str, version: int | None = None) -> Registered | None:
    """The subject's latest (or given) version; None if the registry has no such subject or version."""
    found = _unless_missing(
        lambda: client.get_version(subject, version) if version else client.get_latest_version(subject)
    )
    return None if found is None else _registered(found)


def _registered(found: RegisteredSchema) -> Registered:
    return Registered(
        found.version or 0, found.schema_id or 0, (found.schema.schema_str if found.schema else None) or ""
    )


def _unless_missing(call: Callable[[], T]) -> T | None:
    with reachable():
        try:
            return call()
        except SchemaRegistryError as error:
            if error.http_status_code == NOT_FOUND:
                return None
            raise


def matches(local: EventSchema, found: Registered) -> bool:
    """The same schema as JSON: whitespace and key order aside, docs and defaults included."""
    return bool(json.loads(local.text) == json.loads(found.text))


def level(client: SchemaRegistryClient, subject: str) -> str:
    """The subject's compatibility level, else the registry's global one, else what the bridge sets."""
    return (
        _unless_missing(lambda: client.get_compatibility(subject))
        or _unless_missing(client.get_compatibility)
        or COMPATIBILITY
    )


def check(client: SchemaRegistryClient, subject: Subject) -> Verdict:
    """Ask the registry whether the local schema may be the subject's next version; diff it against the latest."""
    found = registered(client, subject.name)
    if found is None:
        return Verdict(subject.name, COMPATIBILITY, None, compatible=True)
    with reachable():
        compatible = client.test_compatibility(subject.name, Schema(subject.local.text, "AVRO"))
    changes = diff(json.loads(found.text), json.loads(subject.local.text))
    return Verdict(subject.name, level(client, subject.name), found, bool(compatible), changes)


def subject_of(prefix: str, target: str) -> str:
    """The subject a person means: an event type's, or one of the prefix's subjects named in full. Anything
    else is refused here, so a misspelt event type is not mistaken for a subject nobody registered."""
    subjects = {subject_for(topic_for(prefix, event_type)) for event_type in EVENT_TYPES}
    if target in subjects:
        return target
    if target in EVENT_TYPES:
        return subject_for(topic_for(prefix, target))
    if target.endswith("-value"):
        raise ConfigError(f"{target}: not a subject of prefix {prefix} (<prefix>.<event type>-value)")
    raise ConfigError(f"unknown event type {target}; known: {', '.join(EVENT_TYPES)}")


def indented(text: str) -> str:
    """A schema as indented JSON, as `schemas show` prints it."""
    parsed: Any = json.loads(text)
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def local(directory: Path) -> dict[str, EventSchema]:
    """The event schemas in `directory`, named `<event type>.avsc`; a subset is fine (a team checks what it
    changed), a file named for no event type is refused, so a misspelt name cannot pass unchecked."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: {'not a folder' if directory.exists() else 'no such folder'}")
    present = [event_type for event_type in EVENT_TYPES if (directory / f"{event_type}.avsc").is_file()]
    unknown = sorted(path.name for path in directory.glob("*.avsc") if path.stem not in EVENT_TYPES)
    if unknown:
        raise ConfigError(f"{directory}: {', '.join(unknown)}: not an event type's schema (<event type>.avsc)")
    if not present:
        raise ConfigError(f"{directory}: no <event type>.avsc file")
    try:
        return load_schemas(directory, present)
    except (ValueError, SchemaParseException) as error:  # JSON or Avro syntax
        raise ConfigError(f"{directory}: not a valid Avro schema: {error}") from error
