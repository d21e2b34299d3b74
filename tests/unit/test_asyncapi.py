"""`bridge schemas export`: the .avsc files and an AsyncAPI 3.0 document valid against the official JSON Schema
(`@asyncapi/specs`, pinned, tests/support/asyncapi_specs.py) that describes the records the bridge really writes."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bridge import asyncapi, config
from bridge.avro import Encoder, load_schemas
from bridge.cli import main
from bridge.dlq import REPLAYED_FROM
from bridge.events import DEAD_LETTER, EVENT_TYPES, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import Pipeline
from bridge.providers.lettermint import Lettermint, signature_headers
from bridge.records import dead_letter_record, event_record, record_limit, topic_limit
from bridge.routes import Route
from tests.support import asyncapi_specs
from tests.support.fakes import DELIVERED, FIXED, MINIMAL_YAML, SECRET, SOURCE, FakePublisher, MockRegistry

CONFIG = """
kafka: {bootstrap_servers: "k1.example:9092, k2.example:9092"}
schema_registry: {url: "http://127.0.0.1:1/apis/ccompat/v7"}
topics: {prefix: acme}
sources:
  - {name: lm, provider: lettermint, secrets: ["whsec_x"]}
"""
RECEIVED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
DELIVERY = Delivery("lm", "lettermint", Headers(raw=[(b"content-type", b"application/json")]), b"{}", RECEIVED)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not asyncapi_specs.npm_available():
        pytest.skip("npm is not installed (apt-get install npm; .ci/run does), so @asyncapi/specs cannot be fetched")
    return asyncapi_specs.validator()


@pytest.fixture
def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["--config", str(config), "schemas", "export", "--out", str(out)]) == 0
    assert f"wrote {len(EVENT_TYPES)} schemas and {out / 'asyncapi.yaml'}" in capsys.readouterr().out
    return out


def document(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((out / "asyncapi.yaml").read_text(encoding="utf-8"))
    return loaded


def test_the_exported_document_is_valid_asyncapi_3(exported: Path, validator: jsonschema.Draft7Validator) -> None:
    found = document(exported)
    assert [error.message for error in validator.iter_errors(found)] == []
    assert found["asyncapi"] == "3.0.0"


def _without_info_version(found: dict[str, Any]) -> None:
    del found["info"]["version"]


def _without_operation_action(found: dict[str, Any]) -> None:
    del found["operations"]["send-message.delivered"]["action"]


def _server_without_protocol(found: dict[str, Any]) -> None:
    del found["servers"]["broker-1"]["protocol"]


def _unknown_channel_key(found: dict[str, Any]) -> None:
    found["channels"]["message.delivered"]["topic"] = "acme.message.delivered"


def _binding_of_another_version(found: dict[str, Any]) -> None:
    found["channels"]["message.delivered"]["messages"]["message.delivered"]["bindings"]["kafka"]["bindingVersion"] = "9"


@pytest.mark.parametrize(
    "breakage",
    [
        _without_info_version,
        _without_operation_action,
        _server_without_protocol,
        _unknown_channel_key,
        _binding_of_another_version,
    ],
)
def test_the_official_schema_rejects_a_broken_copy(
    exported: Path, validator: jsonschema.Draft7Validator, breakage: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(document(exported))
    breakage(broken)
    assert not validator.is_valid(broken)


def test_every_topic_is_a_channel_with_a_send_operation(exported: Path) -> None:
    found = document(exported)
    assert set(found["channels"]) == {*EVENT_TYPES, DEAD_LETTER}
    for name, channel in found["channels"].items():
        assert channel["address"] == channel["bindings"]["kafka"]["topic"] == f"acme.{name}"
        assert found["operations"][f"send-{name}"]["action"] == "send"
        assert found["operations"][f"send-{name}"]["channel"] == {"$ref": f"#/channels/{name}"}
    assert found["servers"] == {
        "broker-1": {"host": "k1.example:9092", "protocol": "kafka"},
        "broker-2": {"host": "k2.example:9092", "protocol": "kafka"},
    }


def test_each_event_message_carries_its_avro_schema_and_the_message_id_key(exported: Path) -> None:
    local = load_schemas()
    channels = document(exported)["channels"]
    for event_type in EVENT_TYPES:
        message = channels[event_type]["messages"][event_type]
        assert message["payload"] == {
            "schemaFormat": asyncapi.AVRO_FORMAT,
            "schema": json.loads(local[event_type].text),
        }
        kafka = message["bindings"]["kafka"]
        assert (kafka["key"]["type"], kafka["bindingVersion"]) == ("string", "0.5.0")
        assert message["x-schema-registry-subject"] == f"acme.{event_type}-value"


def test_the_exported_avsc_files_are_the_local_schemas(exported: Path) -> None:
    for event_type, schema in load_schemas().items():
        assert json.loads((exported / f"acme.{event_type}-value.avsc").read_text()) == json.loads(schema.text)


def test_the_event_headers_are_exactly_those_an_event_record_carries(exported: Path) -> None:
    event = CanonicalEvent.of(
        DELIVERY,
        event_id="e1",
        event_type="message.delivered",
        provider_event="delivered",
        key="m1",
        occurred_at=RECEIVED,
    )
    written = {
        name: value.decode() if isinstance(value, bytes) else value
        for name, value in event_record("acme", event, b"").headers
    }
    headers = document(exported)["channels"]["message.delivered"]["messages"]["message.delivered"]["headers"]
    assert headers["required"] == list(written)
    assert jsonschema.Draft7Validator(headers).is_valid(written)
    assert not jsonschema.Draft7Validator(headers).is_valid({**written, "surprise": "x"})


def test_the_dead_letter_is_described_as_raw_bytes_with_its_headers(exported: Path) -> None:
    message = document(exported)["channels"][DEAD_LETTER]["messages"]["DeadLetter"]
    assert (message["contentType"], message["payload"]["format"]) == ("application/octet-stream", "binary")
    record = dead_letter_record("acme", DELIVERY, "data: missing", frozenset())
    written = {
        name: (value or b"").decode() if isinstance(value, bytes | None) else value for name, value in record.headers
    }
    assert "http.content-type" in written
    assert set(message["headers"]["required"]) == {name for name in written if not name.startswith("http.")}
    assert jsonschema.Draft7Validator(message["headers"]).is_valid(written)
    assert not jsonschema.Draft7Validator(message["headers"]).is_valid({**written, "surprise": "x"})


def test_export_writes_to_the_current_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(config), "schemas", "export"]) == 0
    assert (tmp_path / "asyncapi.yaml").is_file()
    assert len(list(tmp_path.glob("*.avsc"))) == len(EVENT_TYPES)


def export(tmp_path: Path, config_text: str) -> dict[str, Any]:
    config = tmp_path / "bridge.yaml"
    config.write_text(config_text, encoding="utf-8")
    assert main(["--config", str(config), "schemas", "export", "--out", str(tmp_path / "out")]) == 0
    return document(tmp_path / "out")


def limits(found: dict[str, Any]) -> dict[str, int]:
    return {
        name: channel["bindings"]["kafka"]["topicConfiguration"]["max.message.bytes"]
        for name, channel in found["channels"].items()
    }


def test_each_channel_gives_the_max_message_bytes_topics_apply_creates_it_with(exported: Path, tmp_path: Path) -> None:
    derived = topic_limit(record_limit(1024 * 1024, 16384))  # the default server limits'
    assert limits(document(exported)) == dict.fromkeys([*EVENT_TYPES, DEAD_LETTER], derived)
    chosen = CONFIG.replace(
        "topics: {prefix: acme}",
        f"topics: {{prefix: acme, max_message_bytes: {derived + 10}, "
        f"overrides: {{dead-letter: {{max_message_bytes: {derived + 20}}}}}}}",
    )
    found = limits(export(tmp_path, chosen))
    assert found == {**dict.fromkeys(EVENT_TYPES, derived + 10), DEAD_LETTER: derived + 20}


def test_a_secured_kafka_is_a_kafka_secure_server(tmp_path: Path) -> None:
    secured = CONFIG.replace('"k1.example:9092, k2.example:9092"}', '"k1.example:9093", security_protocol: SSL}')
    assert export(tmp_path, secured)["servers"] == {"broker-1": {"host": "k1.example:9093", "protocol": "kafka-secure"}}


def test_the_document_writes_every_value_out_with_no_yaml_aliases(exported: Path) -> None:
    text = (exported / "asyncapi.yaml").read_text(encoding="utf-8")
    assert "&id" not in text and "*id" not in text
    channels = document(exported)["channels"]
    provider = channels["message.delivered"]["messages"]["message.delivered"]["headers"]["properties"]["provider"]
    assert channels[DEAD_LETTER]["messages"]["DeadLetter"]["headers"]["properties"]["provider"] == provider


def test_a_replayed_record_carries_replayed_from_and_the_headers_allow_it(exported: Path) -> None:
    settings = config.parse(MINIMAL_YAML, environ={})
    encoder = Encoder(MockRegistry("asyncapi-replay"), load_schemas(), "webhooks")
    encoder.register()
    publisher = FakePublisher()
    pipeline = Pipeline(encoder, publisher, Metrics(), "webhooks", max_record_bytes=64 * 1024)
    signed = Delivery(
        SOURCE, "lettermint", Headers(signature_headers(DELIVERED, SECRET, FIXED)), DELIVERED,
        datetime.fromtimestamp(FIXED, UTC),
    )  # fmt: skip
    origin = b"webhooks.dead-letter:0:7"
    route = Route.build(settings.sources[0], Lettermint())
    asyncio.run(pipeline.process(route, signed, headers=[(REPLAYED_FROM, origin)]))
    [record] = publisher.records
    written = {name: (value or b"").decode() for name, value in record.headers}
    assert written[REPLAYED_FROM] == origin.decode()
    headers = document(exported)["channels"]["message.delivered"]["messages"]["message.delivered"]["headers"]
    assert REPLAYED_FROM in headers["properties"] and REPLAYED_FROM not in headers["required"]
    assert jsonschema.Draft7Validator(headers).is_valid(written)
    del written[REPLAYED_FROM]
    assert jsonschema.Draft7Validator(headers).is_valid(written)  # optional: a first delivery has none
