"""Signed SendAPI deliveries through `bridge serve` into the real broker and registry, read back with
confluent-kafka's stock AvroDeserializer."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import to_record
from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.sendapi import SendAPI, SendAPISender, signature_headers
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
SENDAPI = SendAPI()
SENDER = SendAPISender()
SOURCE = "sendapi-it"
SECRETS = ("whsec_sendapi-it-current", "whsec_sendapi-it-previous")
ENV = {"SENDAPI_IT_CURRENT": SECRETS[0], "SENDAPI_IT_PREVIOUS": SECRETS[1]}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sendapi"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """A SendAPI source with two secrets (rotation), served by a real `bridge serve`."""
    sources = f"""
        - name: {SOURCE}
          provider: sendapi
          secrets: ["${{SENDAPI_IT_CURRENT}}", "${{SENDAPI_IT_PREVIOUS}}"]
    """
    with start_bridge(stack, tmp_path_factory.mktemp("sendapi"), sources, ENV) as (url, prefix, config):
        yield Bridge(url, prefix, config, stack, source=SOURCE, secrets=SECRETS)


def signed(body: bytes, secret: str = SECRETS[0]) -> dict[str, str]:
    return signature_headers(body, secret)


def expected(bridge: Bridge, body: bytes) -> CanonicalEvent:
    [event] = SENDAPI.normalise(Delivery(bridge.source, "sendapi", Headers(), body, datetime.now(UTC)))
    return event


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_each_fixture_lands_on_its_topic_decodable_by_the_stock_deserializer(
    bridge: Bridge, registry: SchemaRegistryClient, path: Path
) -> None:
    body = path.read_bytes()
    want = expected(bridge, body)
    before = datetime.now(UTC).replace(microsecond=0)
    response = post(bridge, body, signed(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "published", "events": [want.event_id]}

    [record] = records_with(bridge.stack, f"{bridge.prefix}.{want.event_type}", want.event_id)
    decoded = decode(registry, record)
    assert before <= decoded.pop("received_at") <= datetime.now(UTC)
    fields = to_record(want)
    fields.pop("received_at")
    assert {name: decoded[name] for name in fields} == fields
    assert decoded["raw"] == body.decode()
    assert record.key() == want.key.encode()
    headers = dict(record.headers() or [])
    assert (headers["event_type"], headers["provider"], headers["source"], headers["attempt"]) == (
        want.event_type.encode(),
        b"sendapi",
        bridge.source.encode(),
        b"",  # SendAPI sends no attempt number
    )


def test_the_docs_bounce_example_is_a_hard_bounce_keyed_by_its_message(
    bridge: Bridge, registry: SchemaRegistryClient
) -> None:
    body = (FIXTURES / "email.bounced.json").read_bytes()
    assert post(bridge, body, signed(body)).status_code == 200
    event_id = "email.bounced:eml_01H9...QP:2026-03-09T14:30:10Z"
    records = records_with(bridge.stack, f"{bridge.prefix}.message.hard_bounced", event_id)
    decoded = decode(registry, records[-1])
    assert (records[-1].key(), decoded["channel"], decoded["smtp_status_code"], decoded["bounce_class"]) == (
        b"eml_01H9...QP",
        "email",
        550,
        "hard",
    )


def test_a_delivery_signed_with_the_previous_secret_is_published(bridge: Bridge) -> None:
    body = SENDER.example("sms.delivered", datetime.now(UTC))
    response = post(bridge, body, signed(body, SECRETS[1]))
    assert response.status_code == 200, response.text
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.delivered", expected(bridge, body).event_id)) == 1


def tampered(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"+1555", b"+1666"), signed(body)


def wrong_secret(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, "whsec_not-configured")


def without_prefix(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"X-SendAPI-Signature": signed(body)["X-SendAPI-Signature"].removeprefix("sha256=")}


def unsigned(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json"}


@pytest.mark.parametrize("forge", [tampered, wrong_secret, without_prefix, unsigned])
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(
    bridge: Bridge, forge: Callable[[bytes], tuple[bytes, dict[str, str]]]
) -> None:
    body = SENDER.example("verify.completed", datetime.now(UTC))
    forged, headers = forge(body)
    response = post(bridge, forged, headers)
    assert response.status_code == 401, response.text
    for candidate in {body, forged}:
        event_id = expected(bridge, candidate).event_id
        assert records_with(bridge.stack, f"{bridge.prefix}.verification.completed", event_id) == []


def test_a_verified_but_malformed_body_lands_whole_in_the_dead_letter_topic(bridge: Bridge) -> None:
    body = json.dumps({"event": "sms.sent", "data": {"id": os.urandom(8).hex()}}).encode()  # no time at all
    response = post(bridge, body, signed(body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    headers = dict(record.headers() or [])
    reason = headers["dead_letter_reason"]
    assert isinstance(reason, bytes) and reason.startswith(b"timestamp: missing")
    assert headers["http.x-sendapi-signature"] == signed(body)["X-SendAPI-Signature"].encode()


def test_send_test_posts_a_signed_example_that_is_published(bridge: Bridge) -> None:
    result = run_cli(bridge.config, ENV, "send-test", "--event", "message.hard_bounced")
    assert result.returncode == 0, result.stderr
    event_id = sent_event_ids(result)[0]
    assert event_id.startswith("email.bounced:eml_")
    assert len(records_with(bridge.stack, f"{bridge.prefix}.message.hard_bounced", event_id)) == 1
