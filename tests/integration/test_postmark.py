"""Postmark deliveries (Basic auth and/or a secret header) through `bridge serve` into the real
broker and registry, read back with confluent-kafka's stock AvroDeserializer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import to_record
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.postmark import EXAMPLE_TYPES, Postmark, PostmarkSender, credential_headers
from tests.support.stack import (
    Served,
    Stack,
    dead_letters,
    decode,
    post_to,
    records_with,
    run_cli,
    sent_event_ids,
    start_bridge,
)

pytestmark = pytest.mark.integration
POSTMARK = Postmark()
SENDER = PostmarkSender()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "postmark"

USER, PASSWORD = "postmark", "it-p@ss:word"  # '@' and ':' as a webhook URL would percent-encode them
OLD_USER, OLD_PASSWORD = "postmark-old", "it-previous-password"
HEADER, TOKEN, OLD_TOKEN = "X-Webhook-Token", "tok_integration-current", "tok_integration-previous"
ENV = {
    "PM_USER": USER,
    "PM_PASSWORD": PASSWORD,
    "PM_OLD_USER": OLD_USER,
    "PM_OLD_PASSWORD": OLD_PASSWORD,
    "PM_TOKEN": TOKEN,
    "PM_OLD_TOKEN": OLD_TOKEN,
}
SOURCES = f"""
    - name: postmark-basic
      provider: postmark
      options:
        basic_auth:
          - {{username: "${{PM_USER}}", password: "${{PM_PASSWORD}}"}}
          - {{username: "${{PM_OLD_USER}}", password: "${{PM_OLD_PASSWORD}}"}}
    - name: postmark-both
      provider: postmark
      secrets: ["${{PM_TOKEN}}", "${{PM_OLD_TOKEN}}"]
      options:
        header: {HEADER}
        basic_auth:
          - {{username: "${{PM_USER}}", password: "${{PM_PASSWORD}}"}}
"""
BASIC = f"{USER}:{PASSWORD}"
BOTH = f"{BASIC}\nheader:{HEADER}:{TOKEN}"


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with start_bridge(stack, tmp_path_factory.mktemp("postmark"), SOURCES, ENV) as (url, prefix, config):
        yield Served(url, prefix, config, stack)


def post(bridge: Served, source: str, body: bytes, credentials: str | None) -> httpx.Response:
    headers = credential_headers(credentials) if credentials else {"Content-Type": "application/json"}
    return post_to(bridge, source, body, headers)


def expected(source: str, body: bytes, received_at: datetime) -> CanonicalEvent:
    [event] = POSTMARK.normalise(Delivery(source, "postmark", Headers(), body, received_at))
    return event


@pytest.mark.parametrize("event_type", EXAMPLE_TYPES)
def test_every_example_lands_on_its_topic_decodable_by_the_stock_deserializer(
    bridge: Served, registry: SchemaRegistryClient, event_type: str
) -> None:
    body = SENDER.example(event_type, datetime.now(UTC))
    before = datetime.now(UTC)
    response = post(bridge, "postmark-both", body, BOTH)
    assert response.status_code == 200, response.text
    want = expected("postmark-both", body, before)
    assert response.json() == {"status": "published", "events": [want.event_id]}

    [record] = records_with(bridge.stack, bridge.topic(event_type), want.event_id)
    decoded = decode(registry, record)
    received_at = decoded.pop("received_at")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= received_at <= datetime.now(UTC)
    fields = to_record(want)
    fields.pop("received_at")
    fields["occurred_at"] = fields["occurred_at"].replace(microsecond=fields["occurred_at"].microsecond // 1000 * 1000)
    assert {name: decoded[name] for name in fields} == fields
    assert all(decoded[name] in (None, []) for name in decoded.keys() - fields.keys())  # schema defaults
    assert record.key() == want.key.encode()
    headers = dict(record.headers() or [])
    assert (headers["event_type"], headers["provider"], headers["source"], headers["attempt"]) == (
        event_type.encode(), b"postmark", b"postmark-both", b""
    )  # fmt: skip
    assert datetime.fromisoformat(headers["received_at"].decode()) == received_at


def test_the_documented_delivery_example_is_published(bridge: Served, registry: SchemaRegistryClient) -> None:
    body = (FIXTURES / "Delivery.json").read_bytes()
    assert post(bridge, "postmark-basic", body, BASIC).status_code == 200
    event_id = "Delivery:883953f4-6105-42a2-a16a-77a8eac79483:john@example.com:2019-11-05T16:33:54.907025+00:00"
    [record] = records_with(bridge.stack, bridge.topic("message.delivered"), event_id)
    decoded = decode(registry, record)
    assert (decoded["message_id"], decoded["raw"], decoded["metadata"]) == (
        "883953f4-6105-42a2-a16a-77a8eac79483", body.decode(), {"a_key": "a_value", "b_key": "b_value"}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "credentials"),
    [
        ("postmark-basic", f"{OLD_USER}:{OLD_PASSWORD}"),
        ("postmark-basic", "postmark:it-p%40ss%3Aword"),  # the URL's percent-encoded userinfo, as is
        ("postmark-both", f"{BASIC}\nheader:{HEADER}:{OLD_TOKEN}"),
    ],
    ids=["previous-basic", "percent-encoded-basic", "previous-header-secret"],
)
def test_rotated_and_encoded_credentials_are_accepted(bridge: Served, source: str, credentials: str) -> None:
    body = SENDER.example("message.delivered", datetime.now(UTC))
    response = post(bridge, source, body, credentials)
    assert response.status_code == 200, response.text
    assert len(records_with(bridge.stack, bridge.topic("message.delivered"), response.json()["events"][0])) == 1


@pytest.mark.parametrize(
    ("source", "credentials"),
    [
        ("postmark-basic", f"{USER}:wrong-password"),
        ("postmark-basic", f"{OLD_USER}:{PASSWORD}"),
        ("postmark-basic", f"header:{HEADER}:{TOKEN}"),
        ("postmark-basic", None),
        ("postmark-both", BASIC),
        ("postmark-both", f"header:{HEADER}:{TOKEN}"),
        ("postmark-both", f"{BASIC}\nheader:{HEADER}:tok_forged"),
    ],
    ids=["wrong-password", "mixed-credentials", "header-not-basic", "none", "no-header", "no-basic", "wrong-header"],
)
def test_an_unauthenticated_delivery_gets_401_and_publishes_nothing(
    bridge: Served, source: str, credentials: str | None
) -> None:
    body = SENDER.example("message.delivered", datetime.now(UTC))
    response = post(bridge, source, body, credentials)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "signature_invalid"
    event_id = expected(source, body, datetime.now(UTC)).event_id
    assert records_with(bridge.stack, bridge.topic("message.delivered"), event_id) == []


def test_a_bounce_type_without_a_canonical_name_is_published_raw_to_unmapped(
    bridge: Served, registry: SchemaRegistryClient
) -> None:
    payload = json.loads(SENDER.example("message.hard_bounced", datetime.now(UTC)))
    payload |= {"Type": "OpenRelayTest", "TypeCode": 1024}
    body = json.dumps(payload).encode()
    assert post(bridge, "postmark-basic", body, BASIC).status_code == 200
    [record] = records_with(bridge.stack, bridge.topic(UNMAPPED), f"Bounce:{payload['ID']}")
    decoded = decode(registry, record)
    assert (decoded["provider_event"], decoded["raw"], decoded["message_id"]) == (
        "Bounce/OpenRelayTest", body.decode(), payload["MessageID"]
    )  # fmt: skip
    assert record.key() == payload["MessageID"].encode()


def dead_letter(bridge: Served, source: str, credentials: str) -> dict[str, bytes]:
    body = f'{{"RecordType":"Delivery","MessageID":"{uuid.uuid4()}"'.encode()  # cut short
    response = post(bridge, source, body, credentials)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dead-lettered"
    [record] = dead_letters(bridge, body)
    return dict(record.headers() or [])


def test_a_verified_but_malformed_body_lands_whole_in_the_dead_letter_topic(bridge: Served) -> None:
    headers = dead_letter(bridge, "postmark-basic", BASIC)
    assert headers["dead_letter_reason"].startswith(b"body is not JSON")
    assert headers["source"] == b"postmark-basic"
    assert "http.authorization" not in headers


def test_the_secret_header_stays_out_of_dead_letters(bridge: Served) -> None:
    headers = dead_letter(bridge, "postmark-both", BOTH)
    assert TOKEN.encode() not in headers.values()


def test_send_test_posts_an_example_that_is_published(bridge: Served) -> None:
    result = run_cli(bridge.config, ENV, "send-test", "--source", "postmark-both")
    assert result.returncode == 0, result.stderr
    event_id = sent_event_ids(result)[0]
    assert len(records_with(bridge.stack, bridge.topic("message.delivered"), event_id)) == 1
