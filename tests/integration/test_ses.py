"""Signed SNS deliveries of SES events through `bridge serve` into the real broker and registry, read back
with confluent-kafka's stock AvroDeserializer. The signing certificate is pinned (options.certificates),
so nothing is fetched from AWS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bridge.avro import to_record
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.ses import EXAMPLE_TOPIC_ARN, SEND_TEST_CERT_URL, Ses
from bridge.providers.ses.sender import EXAMPLE_EVENTS, SesSender, sign_body, sns_headers
from tests.support.stack import (
    Bridge,
    Stack,
    dead_letters,
    decode,
    post_to,
    records_with,
    start_bridge,
)

pytestmark = pytest.mark.integration
SES = Ses()
SENDER = SesSender()
SOURCE = "ses-it"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def self_signed(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = datetime.now(UTC) - timedelta(days=1)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number()).not_valid_before(start)
    cert = builder.not_valid_after(start + timedelta(days=30)).sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


KEY, FORGER = private_key(), private_key()
SECRET, FORGER_SECRET = private_pem(KEY), private_pem(FORGER)
ENV = {"SES_IT_CERT": self_signed(KEY), "SES_IT_KEY": SECRET}


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """An SES source allowing the example topic, its test certificate pinned, served by `bridge serve`."""
    sources = f"""
        - name: {SOURCE}
          provider: ses
          secrets: ["${{SES_IT_KEY}}"]
          options:
            topic_arns: ["{EXAMPLE_TOPIC_ARN}"]
            certificates:
              "{SEND_TEST_CERT_URL}": "${{SES_IT_CERT}}"
    """
    with start_bridge(stack, tmp_path_factory.mktemp("ses"), sources, ENV) as (url, prefix, config):
        yield Bridge(url, prefix, config, stack, source=SOURCE, secrets=(SECRET,))


def post(bridge: Bridge, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    sent = headers if headers is not None else sns_headers(body)
    return post_to(bridge, bridge.source, body, sent)


def notification(message: dict[str, Any] | str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": EXAMPLE_TOPIC_ARN,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "SigningCertURL": SEND_TEST_CERT_URL,
    } | fields


def sign(envelope: dict[str, Any], secret: str = SECRET, version: str = "2") -> bytes:
    return sign_body(json.dumps(envelope).encode(), secret, version=version)


def expected(bridge: Bridge, body: bytes) -> list[CanonicalEvent]:
    return SES.normalise(Delivery(bridge.source, "ses", Headers(), body, datetime.now(UTC)))


def assert_published(bridge: Bridge, registry: SchemaRegistryClient, event: CanonicalEvent) -> None:
    [record] = records_with(bridge.stack, f"{bridge.prefix}.{event.event_type}", event.event_id)
    decoded = decode(registry, record)
    decoded.pop("received_at")
    want = to_record(event)
    want.pop("received_at")
    assert {name: decoded[name] for name in want} == want
    assert record.key() == event.key.encode()
    headers = dict(record.headers() or [])
    assert (headers["event_type"], headers["provider"], headers["source"], headers["attempt"]) == (
        event.event_type.encode(), b"ses", SOURCE.encode(), b""
    )  # fmt: skip
    assert record.value()[0] == 0  # Confluent wire format


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("event_type", sorted(EXAMPLE_EVENTS))
def test_each_example_lands_on_its_topic_decodable_by_the_stock_deserializer(
    bridge: Bridge, registry: SchemaRegistryClient, event_type: str, version: str
) -> None:
    body = sign_body(SENDER.example(event_type, datetime.now(UTC)), SECRET, version=version)
    response = post(bridge, body)
    assert response.status_code == 200, response.text
    [event] = expected(bridge, body)
    assert (event.event_type, response.json()) == (event_type, {"status": "published", "events": [event.event_id]})
    assert_published(bridge, registry, event)


def test_one_notification_for_two_recipients_fans_out(bridge: Bridge, registry: SchemaRegistryClient) -> None:
    body = sign(notification((FIXTURES / "identity.bounce-without-dsn.json").read_text()))
    response = post(bridge, body)
    assert response.status_code == 200, response.text
    events = expected(bridge, body)
    sns_id = json.loads(body)["MessageId"]
    assert response.json()["events"] == [f"{sns_id}:jane@example.com", f"{sns_id}:richard@example.com"]
    for event in events:
        assert_published(bridge, registry, event)


def test_a_message_with_no_canonical_type_is_published_raw_to_unmapped(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    message = '{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"You have successfully subscribed"}'
    body = sign(notification(message))
    assert post(bridge, body).status_code == 200
    [event] = expected(bridge, body)
    assert (event.event_type, event.raw) == (UNMAPPED, message)
    assert_published(bridge, registry, event)


def tampered(envelope: dict[str, Any]) -> bytes:
    signed = json.loads(sign(envelope))
    return json.dumps(signed | {"Message": signed["Message"].replace("recipient@", "attacker@")}).encode()


def forged(envelope: dict[str, Any]) -> bytes:
    return sign(envelope, secret=FORGER_SECRET)


def foreign_topic(envelope: dict[str, Any]) -> bytes:
    return sign(envelope | {"TopicArn": "arn:aws:sns:us-east-1:999999999999:ses-events"})


def plain_http_certificate(envelope: dict[str, Any]) -> bytes:
    return sign(envelope | {"SigningCertURL": SEND_TEST_CERT_URL.replace("https://", "http://")})


def unsigned(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("forge", [tampered, forged, foreign_topic, plain_http_certificate, unsigned])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(
    bridge: Bridge, forge: Callable[[dict[str, Any]], bytes]
) -> None:
    body = forge(json.loads(SENDER.example("message.delivered", datetime.now(UTC))))
    response = post(bridge, body, {"Content-Type": "text/plain; charset=UTF-8"})
    assert response.status_code == 401, response.text
    event_id = f"{json.loads(body)['MessageId']}:recipient@example.com"
    assert records_with(bridge.stack, f"{bridge.prefix}.message.delivered", event_id) == []


def test_a_subscription_confirmation_is_surfaced_and_counted(bridge: Bridge) -> None:
    envelope = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f",
        "TopicArn": EXAMPLE_TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {EXAMPLE_TOPIC_ARN}.",
        "SubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={EXAMPLE_TOPIC_ARN}",
        "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "SigningCertURL": SEND_TEST_CERT_URL,
    }
    response = post(bridge, sign(envelope))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "subscription-pending",
        "topic_arn": EXAMPLE_TOPIC_ARN,
        "subscribe_url": envelope["SubscribeURL"],
    }
    metrics = httpx.get(f"{bridge.url}/metrics", timeout=10).text
    assert f'bridge_handshakes_total{{source="{SOURCE}",status="subscription-pending"}} 1.0' in metrics


def test_a_verified_but_unusable_message_lands_whole_in_the_dead_letter_topic(bridge: Bridge) -> None:
    body = sign(notification(f"not json {uuid.uuid4()}"))
    response = post(bridge, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    headers = dict(record.headers() or [])
    assert headers["dead_letter_reason"].startswith(b"Message (SES JSON) is not JSON")
    assert headers["http.x-amz-sns-message-type"] == b"Notification"
