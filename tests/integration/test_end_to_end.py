"""Signed Lettermint deliveries through `bridge serve` into the real broker and registry, read back
with confluent-kafka's stock AvroDeserializer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from bridge.avro import to_record
from bridge.events import EVENT_TYPES, UNMAPPED, Delivery
from bridge.headers import Headers
from bridge.providers.lettermint import Lettermint, LettermintSender, LettermintSource, signature_headers
from bridge.records import read_dead_letter
from tests.support.stack import Bridge, dead_letters, decode, post, records_with, run_cli, sent_event_ids

pytestmark = pytest.mark.integration
LETTERMINT = Lettermint()
SENDER = LettermintSender()
PUBLISHED_TYPES = [event_type for event_type in EVENT_TYPES if event_type != UNMAPPED]


def signed(bridge: Bridge, body: bytes, secret: str | None = None, now: float | None = None) -> dict[str, str]:
    return signature_headers(body, secret or bridge.secrets[0], time.time() if now is None else now)


@pytest.mark.parametrize("event_type", PUBLISHED_TYPES)
def test_every_event_type_lands_on_its_topic_decodable_by_the_stock_deserializer(
    bridge: Bridge, registry: SchemaRegistryClient, event_type: str
) -> None:
    body = SENDER.example(event_type, datetime.now(UTC))
    before = datetime.now(UTC)
    response = post(bridge, body, signed(bridge, body))
    assert response.status_code == 200, response.text
    event_id = json.loads(body)["id"]
    assert response.json() == {"status": "published", "events": [event_id]}

    topic = f"{bridge.prefix}.{event_type}"
    [record] = records_with(bridge.stack, topic, event_id)
    delivery = Delivery(bridge.source, "lettermint", Headers(signed(bridge, body)), body, before)
    [expected] = LETTERMINT.normalise(delivery)
    decoded = decode(registry, record)
    received_at = decoded.pop("received_at")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= received_at <= datetime.now(UTC)
    want = to_record(expected)
    want.pop("received_at")
    assert {name: decoded[name] for name in want} == want
    assert all(decoded[name] in (None, []) for name in decoded.keys() - want.keys())  # schema defaults
    assert record.key() == expected.key.encode()
    headers = dict(record.headers() or [])
    assert headers["event_type"] == event_type.encode()
    assert headers["provider"] == b"lettermint"
    assert headers["source"] == bridge.source.encode()
    assert headers["attempt"] == b"1"
    assert datetime.fromisoformat(headers["received_at"].decode()) == received_at
    assert record.value()[0] == 0  # Confluent wire format: magic byte, then the schema id


def test_a_delivery_signed_with_the_previous_secret_is_published(bridge: Bridge) -> None:
    body = SENDER.example("message.sent", datetime.now(UTC))
    response = post(bridge, body, signed(bridge, body, secret=bridge.secrets[1]))
    assert response.status_code == 200, response.text
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.sent", json.loads(body)["id"])) == 1


def tampered(bridge: Bridge, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"user@", b"attacker@"), signed(bridge, body)


def wrong_secret(bridge: Bridge, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(bridge, body, secret="whsec_not-configured")


def stale(bridge: Bridge, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(bridge, body, now=time.time() - 301)


def unsigned(bridge: Bridge, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json"}


@pytest.mark.parametrize("forge", [tampered, wrong_secret, stale, unsigned])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(bridge: Bridge, forge: Any) -> None:
    body = SENDER.example("message.delivered", datetime.now(UTC))
    response = post(bridge, *forge(bridge, body))
    assert response.status_code == 401, response.text
    event_id = json.loads(body)["id"]
    assert records_with(bridge.stack, f"{bridge.prefix}.message.delivered", event_id) == []


def test_a_verified_but_malformed_body_lands_whole_in_the_dead_letter_topic(bridge: Bridge) -> None:
    marker = uuid.uuid4().hex
    body = f'{{"id":"{marker}","event":"message.delivered","data":{{"message_id":"m-1"}}'.encode()  # cut short
    response = post(bridge, body, signed(bridge, body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    headers = dict(record.headers() or [])
    assert headers["dead_letter_reason"].startswith(b"body is not JSON")
    assert headers["source"] == bridge.source.encode()
    assert headers["http.x-lettermint-signature"].startswith(b"t=")


def test_a_dead_letter_read_back_from_kafka_is_the_delivery_that_made_it(bridge: Bridge) -> None:
    body = f'{{"id":"{uuid.uuid4().hex}","event":"message.delivered"}}'.encode()  # no data
    sent = {**signed(bridge, body), "X-Trace": "a", "Authorization": "Bearer not-kept"}
    before = datetime.now(UTC)
    assert post(bridge, body, sent).json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    letter = read_dead_letter(record.value(), record.headers() or [])
    assert (letter.delivery.source, letter.delivery.provider, letter.delivery.body) == (
        bridge.source,
        "lettermint",
        body,
    )
    assert letter.reason == "data: missing or not an object"
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= letter.delivery.received_at
    headers = letter.delivery.headers
    assert {name: headers[name] for name in ("x-lettermint-signature", "x-lettermint-delivery", "x-trace")} == {
        "x-lettermint-signature": sent["X-Lettermint-Signature"],
        "x-lettermint-delivery": sent["X-Lettermint-Delivery"],
        "x-trace": "a",
    }
    assert "authorization" not in headers  # credentials never reach the topic
    # The delivery read back is authentic as it stood: the signature headers came back byte for byte.
    Lettermint().verify(
        headers,
        letter.delivery.body,
        LettermintSource.model_validate(
            {"name": bridge.source, "provider": "lettermint", "secrets": list(bridge.secrets)}
        ),
        letter.delivery.received_at.timestamp(),
    )


def test_an_event_without_a_canonical_type_is_published_raw_to_unmapped(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    envelope = {
        "id": str(uuid.uuid4()),
        "event": "message.teleported",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "data": {"message_id": "m-teleported", "planet": "Mars"},
    }
    body = json.dumps(envelope).encode()
    assert post(bridge, body, signed(bridge, body)).status_code == 200
    [record] = records_with(bridge.stack, f"{bridge.prefix}.{UNMAPPED}", envelope["id"])
    decoded = decode(registry, record)
    assert (decoded["provider_event"], decoded["raw"], decoded["message_id"]) == (
        "message.teleported",
        body.decode(),
        "m-teleported",
    )


def test_schemas_are_registered_backward_and_the_registry_enforces_it(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    client = registry
    # One lookup per subject: Apicurio caps GET /subjects at apicurio.ccompat.max-subjects (1000).
    for event_type in EVENT_TYPES:
        assert client.get_latest_version(f"{bridge.prefix}.{event_type}-value").schema_id is not None
    subject = f"{bridge.prefix}.message.delivered-value"
    assert client.get_compatibility(subject) == "BACKWARD"
    current = json.loads(client.get_latest_version(subject).schema.schema_str)
    current["fields"].append({"name": "required_without_default", "type": "string"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(json.dumps(current), "AVRO"))
    assert refused.value.http_status_code == 409


def test_send_test_posts_a_signed_example_that_is_published(bridge: Bridge) -> None:
    env = {"IT_SECRET_CURRENT": bridge.secrets[0], "IT_SECRET_PREVIOUS": bridge.secrets[1]}
    result = run_cli(bridge.config, env, "send-test", "--event", "message.opened")
    assert result.returncode == 0, result.stderr
    event_id = sent_event_ids(result)[0]
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.opened", event_id)) == 1

    consumed = run_cli(bridge.config, env, "consume", f"{bridge.prefix}.message.opened")
    assert consumed.returncode == 0, consumed.stderr
    [line] = [json.loads(line) for line in consumed.stdout.splitlines() if event_id in line]
    assert line["value"]["event_id"] == event_id
    assert line["value"]["occurred_at"].endswith("+00:00")
    assert line["headers"]["provider"] == "lettermint"


def test_consume_limits_pretty_prints_waits_from_the_end_and_fails_on_a_missing_topic(bridge: Bridge) -> None:
    env = {"IT_SECRET_CURRENT": bridge.secrets[0], "IT_SECRET_PREVIOUS": bridge.secrets[1]}
    topic = f"{bridge.prefix}.message.clicked"
    for _ in range(2):
        assert run_cli(bridge.config, env, "send-test", "--event", "message.clicked").returncode == 0

    limited = run_cli(bridge.config, env, "consume", topic, "--limit", "1")
    assert limited.returncode == 0, limited.stderr
    assert len(limited.stdout.splitlines()) == 1

    shown = run_cli(bridge.config, env, "consume", topic, "--pretty", "--limit", "1")
    assert shown.returncode == 0, shown.stderr
    head, key, headers, *value = shown.stdout.splitlines()
    assert head.startswith(f"{topic} partition 0 offset 0  20")
    assert key.startswith("  key: ") and "event_type=message.clicked" in headers
    assert '"event_type": "message.clicked"' in "\n".join(value)

    # --from-end: none of the two already there, only what comes after; --limit ends it. Deliveries go on
    # until it prints one, whenever it started reading.
    command = [sys.executable, "-m", "bridge", "--config", str(bridge.config), "consume", topic, "--from-end"]
    with subprocess.Popen(
        [*command, "--limit", "1"], stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    ) as tail:
        deadline = time.monotonic() + 60
        while tail.poll() is None:
            assert time.monotonic() < deadline, "consume --from-end printed nothing"
            assert run_cli(bridge.config, env, "send-test", "--event", "message.clicked").returncode == 0
            time.sleep(1)
        out = tail.stdout.read() if tail.stdout else ""
    assert tail.returncode == 0
    [line] = [json.loads(text) for text in out.splitlines()]
    assert line["offset"] >= 2  # not one of the two before it

    missing = run_cli(bridge.config, env, "consume", f"{bridge.prefix}.no-such-topic")
    assert missing.returncode == 1
    assert f"topic {bridge.prefix}.no-such-topic does not exist" in missing.stderr

    # The registry unreachable (or Kafka): one line saying which, no traceback.
    elsewhere = bridge.config.with_name("unreachable.yaml")
    text = bridge.config.read_text(encoding="utf-8")
    elsewhere.write_text(
        text.replace(bridge.stack.registry_url, "http://127.0.0.1:9/apis/ccompat/v7"), encoding="utf-8"
    )
    unreachable = run_cli(elsewhere, env, "consume", topic, "--limit", "1")
    assert unreachable.returncode == 1
    assert "consume failed: schema registry http://127.0.0.1:9/apis/ccompat/v7: " in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
