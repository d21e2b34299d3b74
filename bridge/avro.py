"""Avro: the schemas in schemas/, their registration, and Confluent wire-format encoding."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable
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
INCOMPATIBLE_STATUSES = {409, 422}


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    text: str
    parsed: Any


def load_schemas(directory: Path = SCHEMAS_DIR, event_types: Iterable[str] = EVENT_TYPES) -> dict[str, EventSchema]:
    schemas = {}
    for event_type in event_types:
        text = (directory / f"{event_type}.avsc").read_text(encoding="utf-8")
        schemas[event_type] = EventSchema(event_type, text, fastavro.parse_schema(json.loads(text)))
    return schemas


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
                    self._client.set_compatibility(subject, COMPATIBILITY)
                    self._ids[event_type] = self._client.register_schema(subject, avro)
                else:
                    self._ids[event_type] = _required_id(self._client.lookup_schema(subject, avro).schema_id, subject)
        except SchemaRegistryError as error:
            if error.http_status_code in INCOMPATIBLE_STATUSES:
                raise
            raise RegistryUnavailable(f"schema registry: {error}") from error
        except (httpx.HTTPError, OSError) as error:  # connection refused, DNS, timeouts
            raise RegistryUnavailable(f"schema registry unreachable: {error}") from error
        return dict(self._ids)

    def encode(self, event: CanonicalEvent) -> bytes:
        """Magic byte 0, the 4-byte big-endian schema id, then the Avro binary body."""
        schema_id = self._ids.get(event.event_type)
        if schema_id is None:
            raise RegistryUnavailable(f"schema for {event.event_type} is not registered yet")
        schema = self._schemas[event.event_type].parsed
        record = to_record(event)
        _check_times(record)
        out = io.BytesIO()
        out.write(struct.pack(">bI", MAGIC_BYTE, schema_id))
        try:
            validate(record, schema, raise_errors=True)
            fastavro.schemaless_writer(out, schema, record)
        except ValidationError as error:
            raise PayloadInvalid(f"does not fit schema {event.event_type}: {error}") from None
        except UnicodeEncodeError as error:  # a JSON "\ud800" escape: valid JSON, not encodable text
            raise PayloadInvalid(f"text that is not valid Unicode: {error}") from None
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
