"""Signed SendGrid batches through `bridge serve` into the real broker and registry, read back with
confluent-kafka's stock AvroDeserializer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.avro import to_record
from bridge.events import UNMAPPED, Delivery
from bridge.headers import Headers
from bridge.providers.sendgrid import SendGrid, SendGridSender, signature_headers
from tests.support.stack import (
    Bridge,
    Stack,
    dead_letters,
    decode,
    post,
    read_topic,
    records_with,
    run_cli,
    sent_event_ids,
    start_bridge,
)

pytestmark = pytest.mark.integration
SENDGRID = SendGrid()
SENDER = SendGridSender()
SOURCE = "sendgrid-it"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sendgrid"


def private_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


# The current key and the one being rotated out; the bridge holds their public halves, and the
# current private key as its `secrets` entry, which only `bridge send-test` uses.
CURRENT, PREVIOUS, STRANGER = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
ENV = {
    "IT_SENDGRID_SIGNING_KEY": private_b64(CURRENT),
    "IT_SENDGRID_KEY_CURRENT": public_b64(CURRENT),
    "IT_SENDGRID_KEY_PREVIOUS": public_b64(PREVIOUS),
}


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    sources = f"""
        - name: {SOURCE}
          provider: sendgrid
          secrets: ["${{IT_SENDGRID_SIGNING_KEY}}"]
          options:
            public_keys: ["${{IT_SENDGRID_KEY_CURRENT}}", "${{IT_SENDGRID_KEY_PREVIOUS}}"]
    """
    with start_bridge(stack, tmp_path_factory.mktemp("sendgrid"), sources, ENV) as (url, prefix, config):
        yield Bridge(url, prefix, config, stack, source=SOURCE, secrets=(private_b64(CURRENT),))


def signed(body: bytes, key: ec.EllipticCurvePrivateKey = CURRENT, now: float | None = None) -> dict[str, str]:
    return signature_headers(body, private_b64(key), time.time() if now is None else now)


def batch(*event_types: str) -> bytes:
    """One SendGrid delivery holding an example event of each type, as SendGrid batches them."""
    now = datetime.now(UTC)
    elements = [json.loads(SENDER.example(event_type, now))[0] for event_type in event_types]
    return json.dumps(elements, separators=(",", ":")).encode() + b"\r\n"


def test_a_signed_batch_fans_out_to_its_topics_decodable_by_the_stock_deserializer(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    body = batch("message.delivered", "message.clicked", "message.soft_bounced", UNMAPPED)
    before = datetime.now(UTC)
    response = post(bridge, body, signed(body))
    assert response.status_code == 200, response.text
    expected = SENDGRID.normalise(Delivery(bridge.source, "sendgrid", Headers(), body, before))
    assert response.json() == {"status": "published", "events": [event.event_id for event in expected]}
    assert [event.event_type for event in expected] == [
        "message.delivered", "message.clicked", "message.soft_bounced", UNMAPPED
    ]  # fmt: skip

    for event in expected:
        [record] = records_with(bridge.stack, f"{bridge.prefix}.{event.event_type}", event.event_id)
        decoded = decode(registry, record)
        received_at = decoded.pop("received_at")
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= received_at <= datetime.now(UTC)
        want = to_record(event)
        want.pop("received_at")
        assert {name: decoded[name] for name in want} == want
        assert record.key() == event.key.encode() == (event.message_id or "").encode()
        headers = dict(record.headers() or [])
        assert (headers["event_type"], headers["provider"], headers["source"], headers["attempt"]) == (
            event.event_type.encode(), b"sendgrid", bridge.source.encode(), b""
        )  # fmt: skip
        assert datetime.fromisoformat(headers["received_at"].decode()) == received_at
        assert record.value()[0] == 0  # Confluent wire format: magic byte, then the schema id


def test_the_sdk_vector_verifies_over_http_with_its_trailing_crlf(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The published vector through a real server: nothing between the socket and the verifier
    may trim the body. Its timestamp is from 2020, so the source allows that age."""
    key = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
        "2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
    )
    body = (FIXTURES / "sdk_vector_dropped.json").read_bytes()  # ends in CRLF, as SendGrid sends
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+"
        "uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=",
        "X-Twilio-Email-Event-Webhook-Timestamp": "1600112502",
        "Content-Type": "application/json",
    }
    sources = f"""
        - name: vector
          provider: sendgrid
          tolerance_seconds: {int(time.time()) - 1600112502 + 86_400}
          options: {{public_keys: ["{key}"]}}
    """
    with start_bridge(stack, tmp_path_factory.mktemp("vector"), sources, {}) as (url, prefix, _):
        accepted = httpx.post(f"{url}/webhooks/vector", content=body, headers=headers, timeout=35)
        trimmed = httpx.post(f"{url}/webhooks/vector", content=body.rstrip(), headers=headers, timeout=35)
        assert accepted.status_code == 200, accepted.text
        assert trimmed.status_code == 401, trimmed.text
        [record] = read_topic(stack.bootstrap_servers, f"{prefix}.message.failed")
        assert record.key() == b"LRzXl_NHStOGhQ4kofSm_A"


def test_a_delivery_signed_with_the_previous_key_is_published(bridge: Bridge) -> None:
    body = batch("message.opened")
    response = post(bridge, body, signed(body, PREVIOUS))
    assert response.status_code == 200, response.text
    [event_id] = response.json()["events"]
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.opened", event_id)) == 1


def tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"user@", b"attacker@"), signed(body)


def wrong_key(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, STRANGER)


def stale(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, now=time.time() - 301)


def unsigned(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json"}


@pytest.mark.parametrize("forge", [tampered, wrong_key, stale, unsigned])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(bridge: Bridge, forge: Any) -> None:
    body = batch("message.delivered")
    response = post(bridge, *forge(body))
    assert response.status_code == 401, response.text
    event_id = json.loads(body)[0]["sg_event_id"]
    assert records_with(bridge.stack, f"{bridge.prefix}.message.delivered", event_id) == []


def test_a_verified_batch_with_an_unusable_element_is_dead_lettered_whole(bridge: Bridge) -> None:
    good = json.loads(batch("message.delivered"))[0]
    body = json.dumps([good, {"email": "user@example.com", "timestamp": 1}]).encode() + b"\r\n"  # no `event`
    response = post(bridge, body, signed(body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    headers = dict(record.headers() or [])
    assert headers["dead_letter_reason"] == b"1.event: missing or not a string"
    assert headers["http.x-twilio-email-event-webhook-timestamp"].isdigit()
    assert records_with(bridge.stack, f"{bridge.prefix}.message.delivered", good["sg_event_id"]) == []


def test_send_test_signs_with_the_configured_private_key_and_is_published(bridge: Bridge) -> None:
    # the subprocesses read the same config, ${...} and all
    result = run_cli(bridge.config, ENV, "send-test", "--event", "message.clicked")
    assert result.returncode == 0, result.stderr
    [event_id] = sent_event_ids(result)
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.clicked", event_id)) == 1

    consumed = run_cli(bridge.config, ENV, "consume", f"{bridge.prefix}.message.clicked")
    assert consumed.returncode == 0, consumed.stderr
    [line] = [json.loads(line) for line in consumed.stdout.splitlines() if event_id in line]
    assert (line["value"]["provider"], line["value"]["url"], line["headers"]["provider"]) == (
        "sendgrid", "https://example.com/welcome", "sendgrid"
    )  # fmt: skip


def test_an_unknown_event_is_published_raw_to_unmapped(bridge: Bridge, registry: SchemaRegistryClient) -> None:
    element = {"event": "account_status_change", "sg_event_id": uuid.uuid4().hex, "timestamp": 1709142428}
    element["type"] = "compliance_suspend"
    body = json.dumps([element]).encode() + b"\r\n"
    assert post(bridge, body, signed(body)).status_code == 200
    [record] = records_with(bridge.stack, f"{bridge.prefix}.{UNMAPPED}", element["sg_event_id"])
    decoded = decode(registry, record)
    assert (decoded["provider_event"], json.loads(decoded["raw"]), record.key()) == (
        "account_status_change", element, element["sg_event_id"].encode()
    )  # fmt: skip
