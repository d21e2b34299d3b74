"""Avro: the schemas in schemas/, their registration, and Confluent wire-format encoding."""

from __future__ import annotations

import array
import io
import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.common._httpx_compat import httpx  # the client's HTTP library
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.validation import ValidationError, validate

from bridge.errors import PayloadInvalid, RegistryUnavailable
from bridge.events import EVENT_TYPES, CanonicalEvent, topic_for

_PACKAGE = Path(__file__).resolve().parent
# Installed from a wheel: bridge/schemas; from a checkout (editable): the repository's schemas/.
SCHEMAS_DIR = next(path for path in (_PACKAGE / "schemas", _PACKAGE.parent / "schemas") if path.is_dir())
COMPATIBILITY = "BACKWARD"
MAGIC_BYTE = 0
# timestamp-millis values every consumer can turn back into a date: Python's datetime (what the
# stock deserializer builds) spans years 1 to 9999, and a day's margin survives any time zone.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999000, tzinfo=UTC)
# Registry errors that mean "fix the schema", not "try later".
CONFLICT = 409
INCOMPATIBLE_STATUSES = {CONFLICT, 422}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
# What the registry client raises when it gets no answer: connection refused, DNS, TLS, timeouts.
UNREACHABLE = (httpx.HTTPError, OSError)


# Plain (not in a union) fields of these types are what fastavro's writer takes without a check: it
# writes True or 1.5 as a long, and 2**40 into an int, silently. Each type's test, as validate's.
_UNCHECKED: dict[str, Callable[[Any], bool]] = {
    "int": lambda value: type(value) is int and INT_MIN <= value <= INT_MAX,
    "long": lambda value: type(value) is int and LONG_MIN <= value <= LONG_MAX,
    "float": lambda value: type(value) in (int, float),
    "double": lambda value: type(value) in (int, float),
    "boolean": lambda value: type(value) is bool,
}
# Everything else the writer refuses by itself when it does not fit: strings, enums, arrays and maps of
# strings, and unions of primitives (the writer picks a union's branch with validate's own tests).
_WRITER_CHECKED = frozenset({"null", "string", "bytes", "enum", *_UNCHECKED})


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    text: str
    parsed: Any
    # (field, test) for the plain fields the writer does not check; None: the schema has a shape the
    # writer may take unchecked (a nested record, an array of longs...), so every record is validated.
    checks: tuple[tuple[str, Callable[[Any], bool]], ...] | None = ()


def load_schemas(directory: Path = SCHEMAS_DIR, event_types: Iterable[str] = EVENT_TYPES) -> dict[str, EventSchema]:
    schemas = {}
    for event_type in event_types:
        text = (directory / f"{event_type}.avsc").read_text(encoding="utf-8")
        parsed = fastavro.parse_schema(json.loads(text))
        schemas[event_type] = EventSchema(event_type, text, parsed, field_checks(parsed))
    return schemas


def field_checks(parsed: Any) -> tuple[tuple[str, Callable[[Any], bool]], ...] | None:
    """What the writer leaves unchecked in a record of this (parsed) schema: see EventSchema.checks."""
    checks: list[tuple[str, Callable[[Any], bool]]] = []
    for field in parsed["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind["type"] in ("array", "map"):
            # The writer takes any iterable as an array (a string as its characters) and anything with
            # items() as a map; of their elements, it checks strings.
            if _primitive(kind["items" if kind["type"] == "array" else "values"]) not in ("string", "enum"):
                return None
            checks.append((field["name"], _array if kind["type"] == "array" else _map))
        elif isinstance(kind, list):
            if not all(_primitive(branch) in _WRITER_CHECKED for branch in kind):
                return None
        elif (name := _primitive(kind)) in _UNCHECKED:
            # timestamp-millis: a datetime must be one a consumer can read back, an int must be a long.
            checks.append((field["name"], _timestamp if _logical(kind) else _UNCHECKED[name]))
        elif name not in _WRITER_CHECKED:
            return None
    return tuple(checks)


def _primitive(kind: Any) -> str:
    return str(kind["type"] if isinstance(kind, dict) else kind)


def _logical(kind: Any) -> bool:
    return isinstance(kind, dict) and kind.get("logicalType") in ("timestamp-millis", "timestamp-micros")


def _passes(checks: tuple[tuple[str, Callable[[Any], bool]], ...], record: dict[str, Any]) -> bool:
    return all(name not in record or test(record[name]) for name, test in checks)  # absent: the default


def _array(value: Any) -> bool:
    return type(value) is list or (isinstance(value, Sequence | array.array) and not isinstance(value, str))


def _map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _timestamp(value: Any) -> bool:
    if isinstance(value, datetime):
        try:
            return EARLIEST <= value <= LATEST
        except (TypeError, OverflowError):  # naive, or before year 1 in UTC: _check_times says which
            return False
    return _UNCHECKED["long"](value)


def subject_for(topic: str) -> str:
    """TopicNameStrategy, what Confluent's serializers and deserializers assume by default."""
    return f"{topic}-value"


class Encoder:
    """Encodes events against the registered schema of their topic.

    The bridge registers every schema once (`register`), then encodes with the ids it got back:
    no registry call happens on the request path, unlike AvroSerializer's first use of a subject.
    """

    def __init__(self, client: SchemaRegistryClient, schemas: dict[str, EventSchema], prefix: str) -> None:
        self._client = client
        self._schemas = schemas
        self._prefix = prefix
        self._ids: dict[str, int] = {}

    @property
    def registered(self) -> bool:
        return len(self._ids) == len(self._schemas)

    def register(self, auto_register: bool = True) -> dict[str, int]:
        """Register (or, with auto_register off, look up) every schema; subjects get BACKWARD."""
        try:
            for event_type, schema in self._schemas.items():
                if event_type in self._ids:
                    continue
                subject = subject_for(topic_for(self._prefix, event_type))
                avro = Schema(schema.text, "AVRO")
                if auto_register:
                    _once_more_on_conflict(self._client.set_compatibility, subject, COMPATIBILITY)
                    self._ids[event_type] = _once_more_on_conflict(self._client.register_schema, subject, avro)
                else:
                    self._ids[event_type] = _required_id(self._client.lookup_schema(subject, avro).schema_id, subject)
        except SchemaRegistryError as error:
            if error.http_status_code in INCOMPATIBLE_STATUSES:
                raise
            raise RegistryUnavailable(f"schema registry: {error}") from error
        except UNREACHABLE as error:
            raise RegistryUnavailable(f"schema registry unreachable: {error}") from error
        return dict(self._ids)

    def encode(self, event: CanonicalEvent) -> bytes:
        """Magic byte 0, the 4-byte big-endian schema id, then the Avro binary body."""
        schema_id = self._ids.get(event.event_type)
        if schema_id is None:
            raise RegistryUnavailable(f"schema for {event.event_type} is not registered yet")
        schema = self._schemas[event.event_type]
        record = to_record(event)
        out = io.BytesIO()
        out.write(struct.pack(">bI", MAGIC_BYTE, schema_id))
        try:
            # fastavro's validate costs more than the write and builds an error for every union branch it
            # tries: it runs only where the writer leaves a field unchecked, or to say why a write failed.
            if schema.checks is None or not _passes(schema.checks, record):
                _check_times(record)
                validate(record, schema.parsed, raise_errors=True)
            fastavro.schemaless_writer(out, schema.parsed, record)
        except ValidationError as error:
            raise PayloadInvalid(f"does not fit schema {event.event_type}: {error}") from None
        except UnicodeEncodeError as error:  # a JSON "\ud800" escape: valid JSON, not encodable text
            raise PayloadInvalid(f"text that is not valid Unicode: {error}") from None
        except (TypeError, ValueError, OverflowError, KeyError, AttributeError):
            # The writer refused the record: validate names the field. If it finds nothing, the two disagree,
            # a bug, and the original error goes on (the pipeline logs it and dead-letters the delivery).
            try:
                validate(record, schema.parsed, raise_errors=True)
            except ValidationError as invalid:
                raise PayloadInvalid(f"does not fit schema {event.event_type}: {invalid}") from None
            raise
        return out.getvalue()


def _check_times(record: dict[str, Any]) -> None:
    for name, value in record.items():
        if not isinstance(value, datetime):
            continue
        try:
            instant = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            instant = None
        if instant is None or not EARLIEST <= instant <= LATEST:
            raise PayloadInvalid(f"{name}: {value.isoformat()} is outside {EARLIEST.date()}..{LATEST.date()} (UTC)")


def _once_more_on_conflict(call: Callable[..., Any], *args: Any) -> Any:
    """`call`, and if the registry answers 409, once more: two processes (workers, replicas) registering a new
    prefix at once race, and Apicurio answers the loser's rule creation 409 "already exists", where a second
    try updates it. A schema that really is incompatible is refused again, and that 409 is raised."""
    try:
        return call(*args)
    except SchemaRegistryError as error:
        if error.http_status_code != CONFLICT:
            raise
    return call(*args)


def _required_id(schema_id: int | None, subject: str) -> int:
    if schema_id is None:
        raise RegistryUnavailable(f"the registry returned no schema id for {subject}")
    return schema_id


def to_record(event: CanonicalEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "provider": event.provider,
        "source": event.source,
        "channel": event.channel,
        "message_id": event.message_id,
        "recipient": event.recipient,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
        "attempt": event.attempt,
        "tags": list(event.tags),
        "metadata": dict(event.metadata),
        "provider_event": event.provider_event,
        "raw": event.raw,
        **event.details,
    }
