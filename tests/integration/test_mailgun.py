"""Mailgun deliveries, signed in the body, through `bridge serve` into the real broker and registry:
published once and read back with confluent-kafka's stock AvroDeserializer; forged and replayed
deliveries answered 401 with nothing published."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import to_record
from bridge.events import DEAD_LETTER, UNMAPPED, Delivery
from bridge.headers import Headers
from bridge.providers.mailgun import Mailgun
from tests.support.stack import (
    Served,
    Stack,
    dead_letters,
    decode,
    post_to,
    read_topic,
    records_with,
    start_bridge,
)

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mailgun"
KEYS = ("key-integration-current", "key-integration-previous")
SOURCE = "mailgun-it"


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A Mailgun source with two signing keys (rotation), served by a real `bridge serve`."""
    sources = f"""
        - name: {SOURCE}
          provider: mailgun
          secrets: ["${{IT_MAILGUN_CURRENT}}", "${{IT_MAILGUN_PREVIOUS}}"]
    """
    env = {"IT_MAILGUN_CURRENT": KEYS[0], "IT_MAILGUN_PREVIOUS": KEYS[1]}
    with start_bridge(stack, tmp_path_factory.mktemp("mailgun"), sources, env) as (url, prefix, config):
        yield Served(url, prefix, config, stack)


def signature(key: str, timestamp: str, token: str) -> str:
    """Mailgun's scheme, computed here rather than by the module under test."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def delivery(payload: dict[str, Any], key: str = KEYS[0], signed_at: float | None = None) -> tuple[bytes, str]:
    """`payload` with a fresh token and a signature object for `key`; returns (body, token)."""
    token = secrets.token_hex(25)
    timestamp = str(int(time.time() if signed_at is None else signed_at))
    block = {"timestamp": timestamp, "token": token, "signature": signature(key, timestamp, token)}
    return json.dumps({**payload, "signature": block}).encode(), token


def fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return payload


def post(served: Served, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return post_to(served, SOURCE, body, headers)


def to_millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("accepted.json", "message.created"),
        ("delivered.json", "message.delivered"),
        ("failed-permanent.json", "message.hard_bounced"),
        ("failed-temporary.json", "message.soft_bounced"),
        ("rejected.json", "message.failed"),
        ("opened.json", "message.opened"),
        ("clicked.json", "message.clicked"),
        ("unsubscribed.json", "message.unsubscribed"),
        ("complained.json", "message.spam_complaint"),
    ],
)
def test_a_signed_delivery_lands_on_its_topic_decodable_by_the_stock_deserializer(
    served: Served, registry: SchemaRegistryClient, name: str, event_type: str
) -> None:
    body, token = delivery(fixture(name))
    before = datetime.now(UTC)
    response = post(served, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "published", "events": [token]}

    [record] = records_with(served.stack, served.topic(event_type), token)
    [expected] = Mailgun().normalise(Delivery(SOURCE, "mailgun", Headers(), body, before))
    decoded = decode(registry, record)
    received_at = decoded.pop("received_at")
    assert to_millis(before) <= received_at <= datetime.now(UTC)
    want = to_record(expected) | {"occurred_at": to_millis(expected.occurred_at)}
    want.pop("received_at")
    assert {field: decoded[field] for field in want} == want
    assert all(decoded[field] in (None, []) for field in decoded.keys() - want.keys())  # schema defaults
    assert (decoded["event_id"], decoded["provider"], decoded["raw"]) == (token, "mailgun", body.decode())
    assert record.key() == fixture(name)["event-data"]["message"]["headers"]["message-id"].encode()
    headers = dict(record.headers() or [])
    assert headers["event_type"] == event_type.encode()
    assert headers["provider"] == b"mailgun"
    assert headers["source"] == SOURCE.encode()
    assert headers["attempt"] == str(expected.attempt or "").encode()
    assert datetime.fromisoformat(headers["received_at"].decode()) == received_at
    assert record.value()[0] == 0  # Confluent wire format: magic byte, then the schema id


def test_a_delivery_signed_with_the_previous_key_is_published(served: Served) -> None:
    body, token = delivery(fixture("delivered.json"), key=KEYS[1])
    assert post(served, body).status_code == 200
    assert len(records_with(served.stack, served.topic("message.delivered"), token)) == 1


def test_a_replayed_delivery_gets_401_and_is_published_once(served: Served) -> None:
    body, token = delivery(fixture("delivered.json"))
    assert post(served, body).status_code == 200
    replay = post(served, body)
    assert (replay.status_code, replay.json()) == (401, {"error": "signature_invalid", "detail": "replayed token"})
    assert len(records_with(served.stack, served.topic("message.delivered"), token)) == 1


def wrong_key(payload: dict[str, Any]) -> bytes:
    return delivery(payload, key="key-not-configured")[0]


def tampered_token(payload: dict[str, Any]) -> bytes:
    body, token = delivery(payload)
    return body.replace(token.encode(), token[::-1].encode())


def stale(payload: dict[str, Any]) -> bytes:
    return delivery(payload, signed_at=time.time() - 301)[0]


def unsigned(payload: dict[str, Any]) -> bytes:
    body = json.loads(delivery(payload)[0])
    body["signature"]["signature"] = ""
    return json.dumps(body).encode()


def no_signature_object(payload: dict[str, Any]) -> bytes:
    return json.dumps({"event-data": payload["event-data"]}).encode()


@pytest.mark.parametrize("forge", [wrong_key, tampered_token, stale, unsigned, no_signature_object])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(served: Served, forge: Any) -> None:
    marker = secrets.token_hex(16)
    payload = fixture("delivered.json")
    payload["event-data"]["id"] = marker
    response = post(served, forge(payload))
    assert (response.status_code, response.json()["error"]) in {(401, "signature_invalid"), (401, "stale_timestamp")}
    for topic in ("message.delivered", DEAD_LETTER, UNMAPPED):
        records = read_topic(served.stack.bootstrap_servers, f"{served.prefix}.{topic}")
        assert not any(marker.encode() in (record.value() or b"") for record in records)


def test_an_event_without_a_canonical_type_is_published_raw_to_unmapped(
    served: Served, registry: SchemaRegistryClient
) -> None:
    payload = fixture("delivered.json")
    payload["event-data"] |= {"event": "stored"}
    body, token = delivery(payload)
    assert post(served, body).status_code == 200
    [record] = records_with(served.stack, served.topic(UNMAPPED), token)
    decoded = decode(registry, record)
    assert (decoded["provider_event"], decoded["raw"], decoded["event_id"]) == ("stored", body.decode(), token)


def test_a_verified_but_unusable_body_lands_whole_in_the_dead_letter_topic(served: Served) -> None:
    body, _ = delivery({"event-data": {"event": "delivered", "timestamp": "yesterday"}})
    response = post(served, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(served, body)
    headers = dict(record.headers() or [])
    assert headers["dead_letter_reason"].startswith(b"event-data.timestamp")
    assert (headers["provider"], headers["source"]) == (b"mailgun", SOURCE.encode())
