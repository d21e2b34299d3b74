"""`bridge schemas export`: the .avsc files and an AsyncAPI 3.0 document valid against the official JSON Schema
(`@asyncapi/specs`, pinned, tests/support/asyncapi_specs.py) that describes the records the bridge really writes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bridge import asyncapi
from bridge.avro import load_schemas
from bridge.cli import main
from bridge.events import DEAD_LETTER, EVENT_TYPES, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.records import dead_letter_record, event_record
from tests.support import asyncapi_specs

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
