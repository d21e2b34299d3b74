"""Standard Webhooks / Resend deliveries signed by the real svix and standardwebhooks libraries, through
`bridge serve` into the real broker and registry, read back with confluent-kafka's stock AvroDeserializer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from standardwebhooks.webhooks import Webhook as ReferenceWebhook
from svix.webhooks import Webhook as SvixWebhook

from bridge.avro import to_record
from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.standard_webhooks import StandardWebhooks, StandardWebhooksSender
from tests.support.stack import (
    Bridge,
    Stack,
    dead_letters,
    decode,
    post,
    records_with,
    run_cli,
    sent_event_ids,
    start_bridge,
)

pytestmark = pytest.mark.integration
PROVIDER = StandardWebhooks()
SENDER = StandardWebhooksSender()
SOURCE = "resend-it"
SECRETS = tuple(
    "whsec_" + base64.b64encode(f"resend-it-{name}-secret-0123".encode()).decode() for name in ("cur", "old")
)
ENV = {"RESEND_IT_CURRENT": SECRETS[0], "RESEND_IT_PREVIOUS": SECRETS[1]}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "standard-webhooks"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """A Standard Webhooks source with two secrets (rotation), served by a real `bridge serve`."""
    sources = f"""
        - name: {SOURCE}
          provider: standard-webhooks
          secrets: ["${{RESEND_IT_CURRENT}}", "${{RESEND_IT_PREVIOUS}}"]
    """
    with start_bridge(stack, tmp_path_factory.mktemp("standard-webhooks"), sources, ENV) as (url, prefix, config):
        yield Bridge(url, prefix, config, stack, source=SOURCE, secrets=SECRETS)


def library_signed(
    body: bytes, secret: str = SECRETS[0], prefix: str = "svix", now: float | None = None
) -> dict[str, str]:
    """Headers as Resend (svix-) or a Standard Webhooks sender (webhook-) sends them, signed by svix."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    signature = SvixWebhook(secret).sign(msg_id, stamp, body.decode())
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(int(stamp.timestamp())),
        f"{prefix}-signature": signature,
        "Content-Type": "application/json",
    }


def expected(bridge: Bridge, body: bytes, headers: dict[str, str]) -> CanonicalEvent:
    delivery = Delivery(bridge.source, "standard-webhooks", Headers(headers), body, datetime.now(UTC))
    [event] = PROVIDER.normalise(delivery)
    return event


def millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_each_fixture_lands_on_its_topic_decodable_by_the_stock_deserializer(
    bridge: Bridge, registry: SchemaRegistryClient, path: Path
) -> None:
    body = path.read_bytes()
    headers = library_signed(body)
    want = expected(bridge, body, headers)
    before = datetime.now(UTC).replace(microsecond=0)
    response = post(bridge, body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "published", "events": [headers["svix-id"]]}

    [record] = records_with(bridge.stack, f"{bridge.prefix}.{want.event_type}", want.event_id)
    decoded = decode(registry, record)
    assert before <= decoded.pop("received_at") <= datetime.now(UTC)
    fields = to_record(want)
    fields.pop("received_at")
    fields["occurred_at"] = millis(want.occurred_at)  # timestamp-millis: the spec's example has microseconds
    assert {name: decoded[name] for name in fields} == fields
    assert (decoded["event_id"], decoded["raw"]) == (headers["svix-id"], body.decode())
    assert record.key() == want.key.encode()
    record_headers = dict(record.headers() or [])
    assert (record_headers["event_type"], record_headers["provider"], record_headers["source"]) == (
        want.event_type.encode(),
        b"standard-webhooks",
        bridge.source.encode(),
    )
    assert record_headers["attempt"] == b""  # Standard Webhooks sends no attempt number


def test_a_resend_bounce_is_hard_and_keyed_by_its_email_id(bridge: Bridge, registry: SchemaRegistryClient) -> None:
    body = (FIXTURES / "email.bounced.json").read_bytes()
    headers = library_signed(body)
    assert post(bridge, body, headers).status_code == 200
    [record] = records_with(bridge.stack, f"{bridge.prefix}.message.hard_bounced", headers["svix-id"])
    decoded = decode(registry, record)
    assert (record.key(), decoded["message_id"], decoded["recipient"], decoded["bounce_class"]) == (
        b"56761188-7520-42d8-8898-ff6fc54ce618",
        "56761188-7520-42d8-8898-ff6fc54ce618",
        "delivered@resend.dev",
        "Suppressed",
    )
    assert decoded["metadata"] == {"category": "confirm_email"}


def test_webhook_prefixed_headers_signed_by_the_reference_library_are_published(bridge: Bridge) -> None:
    body = SENDER.example("message.delivered", datetime.now(UTC))
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": ReferenceWebhook(SECRETS[0]).sign(msg_id, stamp, body.decode()),
    }
    response = post(bridge, body, headers)
    assert response.status_code == 200, response.text
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.delivered", msg_id)) == 1


def test_a_delivery_signed_with_the_previous_secret_is_published(bridge: Bridge) -> None:
    body = SENDER.example("message.opened", datetime.now(UTC))
    headers = library_signed(body, SECRETS[1])
    assert post(bridge, body, headers).status_code == 200
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.opened", headers["svix-id"])) == 1


def tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"user@", b"attacker@"), library_signed(body)


def wrong_secret(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, library_signed(body, "whsec_" + base64.b64encode(b"not-configured-secret-00").decode())


def stale(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, library_signed(body, now=time.time() - 301)


def from_the_future(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, library_signed(body, now=time.time() + 310)  # whole seconds: clear of the boundary


def unsigned(body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = library_signed(body)
    del headers["svix-signature"]
    return body, headers


@pytest.mark.parametrize("forge", [tampered, wrong_secret, stale, from_the_future, unsigned])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(
    bridge: Bridge, forge: Callable[[bytes], tuple[bytes, dict[str, str]]]
) -> None:
    body = SENDER.example("message.delivered", datetime.now(UTC))
    forged, headers = forge(body)
    response = post(bridge, forged, headers)
    assert response.status_code == 401, response.text
    assert records_with(bridge.stack, f"{bridge.prefix}.message.delivered", headers["svix-id"]) == []


def test_a_verified_but_malformed_body_lands_whole_in_the_dead_letter_topic(bridge: Bridge) -> None:
    body = f'{{"type":"email.delivered","data":{{"email_id":"{uuid.uuid4()}"}}'.encode()  # cut short
    headers = library_signed(body)
    response = post(bridge, body, headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    record_headers = dict(record.headers() or [])
    assert record_headers["dead_letter_reason"].startswith(b"body is not JSON")
    assert record_headers["http.svix-id"] == headers["svix-id"].encode()


def test_send_test_posts_a_signed_resend_example_that_is_published(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    result = run_cli(bridge.config, ENV, "send-test", "--event", "message.delivered")
    assert result.returncode == 0, result.stderr
    event_id = sent_event_ids(result)[0]
    [record] = records_with(bridge.stack, f"{bridge.prefix}.message.delivered", event_id)
    decoded = decode(registry, record)
    assert (decoded["provider_event"], decoded["recipient"]) == ("email.delivered", "user@example.com")
    assert json.loads(decoded["raw"])["data"]["email_id"] == decoded["message_id"] == record.key().decode()
