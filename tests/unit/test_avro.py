"""avro: the schemas in schemas/, their registration, and Confluent wire-format encoding."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import validation

from bridge.avro import SCHEMAS_DIR, Encoder, field_checks, load_schemas, subject_for, to_record
from bridge.errors import PayloadInvalid, RegistryUnavailable
from bridge.events import EVENT_TYPES, CanonicalEvent, topic_for
from tests.support.fakes import MockRegistry

PREFIX = "webhooks"
COMMON = (
    "event_id",
    "event_type",
    "provider",
    "source",
    "channel",
    "message_id",
    "recipient",
    "occurred_at",
    "received_at",
    "attempt",
    "tags",
    "metadata",
    "provider_event",
    "raw",
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*.avsc"))
OCCURRED = datetime(2025, 8, 8, 20, 15, 12, 123000, tzinfo=UTC)
RECEIVED = datetime(2025, 8, 8, 20, 15, 13, 456000, tzinfo=UTC)


def fields(path_or_type: Any) -> list[dict[str, Any]]:
    path = path_or_type if not isinstance(path_or_type, str) else SCHEMAS_DIR / f"{path_or_type}.avsc"
    return list(json.loads(path.read_text(encoding="utf-8"))["fields"])


def event(event_type: str = "message.delivered", **overrides: Any) -> CanonicalEvent:
    values: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": event_type,
        "provider": "lettermint",
        "source": "lm",
        "provider_event": event_type,
        "key": "msg-1",
        "occurred_at": OCCURRED,
        "received_at": RECEIVED,
        "raw": '{"event":"x"}',
        "message_id": "msg-1",
        "recipient": "user@example.com",
        "attempt": 2,
        "tags": ("welcome",),
        "metadata": {"order": "42"},
        **overrides,
    }
    return CanonicalEvent(**values)


def decode(client: MockRegistry, event_type: str, value: bytes) -> dict[str, Any]:
    context = SerializationContext(topic_for(PREFIX, event_type), MessageField.VALUE)
    decoded: dict[str, Any] = AvroDeserializer(client)(value, context)
    return decoded


@pytest.fixture
def encoder(registry: MockRegistry) -> Encoder:
    return Encoder(registry, load_schemas(), PREFIX)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_schema_parses(path: Any) -> None:
    parsed = fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))
    assert parsed["type"] == "record"


def test_one_schema_per_event_type() -> None:
    assert sorted(path.stem for path in SCHEMA_FILES) == sorted(EVENT_TYPES)
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_starts_with_the_common_fields(event_type: str) -> None:
    reference = fields("unmapped")
    assert tuple(field["name"] for field in reference) == COMMON
    head = fields(event_type)[: len(COMMON)]
    assert [(f["name"], f["type"], f.get("default")) for f in head] == [
        (f["name"], f["type"], f.get("default")) for f in reference
    ]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_extra_fields_are_optional_with_a_default(event_type: str) -> None:
    """A field with a default can be added or removed under BACKWARD compatibility."""
    for field in fields(event_type)[len(COMMON) :]:
        kind = field["type"]
        assert "default" in field, field["name"]
        if isinstance(kind, list):
            assert kind[0] == "null" and field["default"] is None, field["name"]
        else:
            assert kind["type"] in {"array", "map"} and not field["default"], field["name"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_reads_records_written_before_its_extra_fields(event_type: str) -> None:
    """BACKWARD: a reader with today's schema resolves data written by one with only the common fields."""
    schema = json.loads((SCHEMAS_DIR / f"{event_type}.avsc").read_text(encoding="utf-8"))
    older = {**schema, "fields": schema["fields"][: len(COMMON)]}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(older), to_record(event(event_type)))
    out.seek(0)
    record = fastavro.schemaless_reader(out, fastavro.parse_schema(older), fastavro.parse_schema(schema))
    defaults = {field["name"]: field["default"] for field in schema["fields"][len(COMMON) :]}
    assert record == {**to_record(event(event_type)), **defaults}


def test_register_returns_an_id_per_event_type(encoder: Encoder, registry: MockRegistry) -> None:
    assert not encoder.registered
    ids = encoder.register()
    assert list(ids) == list(EVENT_TYPES)
    assert len(set(ids.values())) == len(EVENT_TYPES)
    assert encoder.registered
    subjects = {subject_for(topic_for(PREFIX, event_type)) for event_type in EVENT_TYPES}
    assert set(registry.get_subjects()) == subjects
    assert registry.compatibility == dict.fromkeys(subjects, "BACKWARD")


def test_register_is_idempotent(encoder: Encoder, registry: MockRegistry) -> None:
    first = encoder.register()
    assert Encoder(registry, load_schemas(), PREFIX).register() == first


def test_lookup_without_auto_register(encoder: Encoder, registry: MockRegistry) -> None:
    ids = encoder.register()
    registry.compatibility.clear()
    assert Encoder(registry, load_schemas(), PREFIX).register(auto_register=False) == ids
    assert registry.compatibility == {}


def test_lookup_of_unregistered_schemas_is_unavailable(encoder: Encoder) -> None:
    """With auto-register off, missing subjects (404) are waited for: CI's register-schemas may still come."""
    with pytest.raises(RegistryUnavailable):
        encoder.register(auto_register=False)
    assert not encoder.registered


@pytest.mark.parametrize(
    ("status", "expected"), [(409, SchemaRegistryError), (422, SchemaRegistryError), (500, RegistryUnavailable)]
)
def test_registry_refusals(status: int, expected: type[Exception]) -> None:
    """An incompatible schema (409, 422) fails the deployment; anything else is retried as unavailable."""

    class Refusing(MockRegistry):
        def register_schema(self, subject_name: str, schema: Any, normalize_schemas: bool = False) -> int:
            raise SchemaRegistryError(status, status * 100, "no")

    with pytest.raises(expected):
        Encoder(Refusing(), load_schemas(), PREFIX).register()


def test_a_conflict_lost_to_another_process_is_tried_once_more() -> None:
    """Two workers or replicas registering a new prefix at once: the loser's first answer is a 409."""

    class Racing(MockRegistry):
        def __init__(self) -> None:
            super().__init__()
            self.lost: set[str | None] = set()

        def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
            if subject_name not in self.lost:
                self.lost.add(subject_name)
                raise SchemaRegistryError(409, 40900, "A rule named 'COMPATIBILITY' already exists")
            return super().set_compatibility(subject_name, level)

    registry = Racing()
    ids = Encoder(registry, load_schemas(), PREFIX).register()
    assert len(ids) == len(EVENT_TYPES)
    assert set(registry.compatibility.values()) == {"BACKWARD"}


def test_encode_before_register(encoder: Encoder) -> None:
    with pytest.raises(RegistryUnavailable, match=r"message\.delivered"):
        encoder.encode(event())


def test_wire_format(encoder: Encoder) -> None:
    ids = encoder.register()
    value = encoder.encode(event())
    magic, schema_id = struct.unpack(">bI", value[:5])
    assert (magic, schema_id) == (0, ids["message.delivered"])
    body = fastavro.schemaless_reader(io.BytesIO(value[5:]), load_schemas()["message.delivered"].parsed, None)
    assert body["event_id"] == "evt-1"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_round_trip_through_confluents_deserializer(encoder: Encoder, registry: MockRegistry, event_type: str) -> None:
    encoder.register()
    decoded = decode(registry, event_type, encoder.encode(event(event_type)))
    assert {name: decoded[name] for name in COMMON} == {name: to_record(event(event_type))[name] for name in COMMON}
    assert set(decoded) == {field["name"] for field in fields(event_type)}


def test_round_trip_keeps_details(encoder: Encoder, registry: MockRegistry) -> None:
    encoder.register()
    details = {
        "reason": None,
        "smtp_status_code": 250,
        "smtp_enhanced_status_code": "2.0.0",
        "smtp_response": "OK",
        "session_id": "s-1",
    }
    decoded = decode(registry, "message.delivered", encoder.encode(event(details=details, attempt=None, tags=())))
    assert decoded == to_record(event(details=details, attempt=None, tags=()))
    assert (decoded["occurred_at"], decoded["attempt"], decoded["tags"]) == (OCCURRED, None, [])


@pytest.mark.parametrize(
    ("event_type", "overrides"),
    [
        ("message.delivered", {"details": {"smtp_status_code": "abc"}}),
        ("message.delivered", {"details": {"smtp_status_code": 2**31}}),
        ("message.opened", {"details": {"first": "yes"}}),
        ("message.created", {"details": {"to": "user@example.com"}}),
        ("message.sent", {"channel": "pigeon"}),
        ("message.sent", {"metadata": {"order": 42}}),
    ],
)
def test_details_that_do_not_fit_the_schema(encoder: Encoder, event_type: str, overrides: dict[str, Any]) -> None:
    encoder.register()
    with pytest.raises(PayloadInvalid, match=f"does not fit schema {event_type}"):
        encoder.encode(event(event_type, **overrides))


def test_unencodable_text_is_payload_invalid(encoder: Encoder) -> None:
    """JSON may carry a lone surrogate (`"\\ud800"`); Avro strings are UTF-8, so it cannot be encoded."""
    encoder.register()
    with pytest.raises(PayloadInvalid):
        encoder.encode(event("message.sent", details={"subject": "\ud800"}))


# Values of every kind, for every field: encode skips fastavro's validate when the write succeeds.
ODD_VALUES: list[Any] = [
    None,
    True,
    1.5,
    7,
    2**31,
    -(2**31) - 1,
    2**63,
    "text",
    b"bytes",
    ["x"],
    [1],
    {"k": "v"},
    {"k": 1},
    OCCURRED,
]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_encode_refuses_what_validate_refuses(encoder: Encoder, registry: MockRegistry, event_type: str) -> None:
    """Whatever fastavro's validate refuses is PayloadInvalid; whatever it accepts comes back as written."""
    encoder.register()
    parsed = load_schemas()[event_type].parsed
    for field in fields(event_type):
        for value in ODD_VALUES:
            candidate = event(event_type, details={field["name"]: value})  # details override common fields too
            if validation.validate(to_record(candidate), parsed, raise_errors=False):
                decoded = decode(registry, event_type, encoder.encode(candidate))
                got = decoded[field["name"]]
                if isinstance(got, datetime) and type(value) is int:  # timestamp-millis given as milliseconds
                    got = round((got - EPOCH).total_seconds() * 1000)
                assert got == value, (field["name"], value)
            else:
                with pytest.raises(PayloadInvalid, match=f"does not fit schema {event_type}: "):
                    encoder.encode(candidate)


def test_schemas_the_writer_cannot_check_are_always_validated() -> None:
    def schema(kind: Any) -> Any:
        return fastavro.parse_schema({"type": "record", "name": "T", "fields": [{"name": "f", "type": kind}]})

    assert field_checks(schema({"type": "array", "items": "long"})) is None
    assert field_checks(schema(["null", {"type": "record", "name": "R", "fields": []}])) is None
    assert [name for name, _ in field_checks(schema({"type": "array", "items": "string"})) or ()] == ["f"]
    assert field_checks(schema(["null", "int", "string"])) == ()
    (name, test), *_ = field_checks(schema("int")) or [("", None)]
    assert name == "f" and test is not None
    assert [test(value) for value in (1, 2**31 - 1, 2**31, True, 1.0)] == [True, True, False, False, False]
