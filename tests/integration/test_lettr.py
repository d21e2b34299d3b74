"""Lettr batches through `bridge serve` into the real broker and registry: Basic + lettr-signature, and
OAuth2 Bearer tokens fetched from the bridge's own token endpoint; read back with the stock AvroDeserializer."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import to_record
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.lettr import Lettr
from bridge.providers.lettr.sender import signature_headers
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
LETTR = Lettr()
BASIC_SOURCE, OAUTH_SOURCE, SIGNED_SOURCE = "lettr-basic-it", "lettr-oauth-it", "lettr-signed-it"
USER, PASSWORD = "lettr", "integration-password"
OLD_USER, OLD_PASSWORD = "lettr-old", "integration-password-before-rotation"
SIGNING_SECRET = "integration-signing-secret"
CLIENT_ID, CLIENT_SECRET = "lettr-it", "integration-client-secret"
ENV = {
    "IT_LETTR_PASSWORD": PASSWORD,
    "IT_LETTR_OLD_PASSWORD": OLD_PASSWORD,
    "IT_LETTR_SIGNING": SIGNING_SECRET,
    "IT_LETTR_CLIENT_SECRET": CLIENT_SECRET,
}
SOURCES = f"""
- name: {BASIC_SOURCE}
  provider: lettr
  secrets: ["${{IT_LETTR_SIGNING}}"]
  options:
    basic_auth:
      - {{username: {USER}, password: "${{IT_LETTR_PASSWORD}}"}}
      - {{username: {OLD_USER}, password: "${{IT_LETTR_OLD_PASSWORD}}"}}
- name: {OAUTH_SOURCE}
  provider: lettr
  options:
    oauth2:
      token_ttl_seconds: 120
      clients: [{{client_id: {CLIENT_ID}, client_secret: "${{IT_LETTR_CLIENT_SECRET}}"}}]
- name: {SIGNED_SOURCE}
  provider: lettr
  secrets: ["${{IT_LETTR_SIGNING}}"]
"""


@pytest.fixture(scope="module")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with start_bridge(stack, tmp_path_factory.mktemp("lettr"), SOURCES, ENV) as (url, prefix, config):
        yield Served(url, prefix, config, stack)


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_and_signed(body: bytes, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": basic(user, password), **signature_headers(body, SIGNING_SECRET)}


def fetch_token(bridge: Served, **form: str) -> httpx.Response:
    fields = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET} | form
    return httpx.post(f"{bridge.url}/webhooks/{OAUTH_SOURCE}/token", data=fields, timeout=35)


def element(category: str, kind: str, **fields: Any) -> dict[str, Any]:
    data = {
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "message_id": uuid.uuid4().hex[:20],
        "rcpt_to": "recipient@example.com",
        "timestamp": str(int(datetime.now(UTC).timestamp())),
        "rcpt_tags": ["it"],
        "rcpt_meta": {"order": 42},
        **fields,
    }
    return {"msys": {category: data}}


def body_of(*elements: dict[str, Any]) -> bytes:
    return json.dumps(list(elements)).encode()


def event_id(item: dict[str, Any]) -> str:
    return str(next(iter(item["msys"].values()))["event_id"])


def expected(source: str, body: bytes) -> list[CanonicalEvent]:
    return LETTR.normalise(Delivery(source, "lettr", Headers({}), body, datetime.now(UTC)))


def check_record(registry: SchemaRegistryClient, record: Message, want: CanonicalEvent) -> None:
    decoded = decode(registry, record)
    decoded.pop("received_at")
    wanted = to_record(want)
    wanted.pop("received_at")
    assert {name: decoded[name] for name in wanted} == wanted
    assert record.key() == want.key.encode()
    headers = dict(record.headers() or [])
    assert (headers["event_type"], headers["provider"], headers["source"], headers["attempt"]) == (
        want.event_type.encode(), b"lettr", want.source.encode(), b""
    )  # fmt: skip
    assert record.value()[0] == 0  # Confluent wire format


def test_a_basic_and_signed_batch_fans_out_to_one_record_per_event(
    bridge: Served, registry: SchemaRegistryClient
) -> None:
    delivered = element("message_event", "delivery")
    bounced = element("message_event", "bounce", bounce_class="10", error_code="550", raw_reason="550 5.1.1 unknown")
    body = body_of(delivered, bounced)
    response = post_to(bridge, BASIC_SOURCE, body, basic_and_signed(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "published", "events": [event_id(delivered), event_id(bounced)]}
    for item, want in zip((delivered, bounced), expected(BASIC_SOURCE, body), strict=True):
        [record] = records_with(bridge.stack, bridge.topic(want.event_type), event_id(item))
        check_record(registry, record, want)
    assert [want.event_type for want in expected(BASIC_SOURCE, body)] == ["message.delivered", "message.hard_bounced"]


def test_the_previous_basic_pair_still_publishes(bridge: Served) -> None:
    item = element("message_event", "delivery")
    body = body_of(item)
    response = post_to(bridge, BASIC_SOURCE, body, basic_and_signed(body, OLD_USER, OLD_PASSWORD))
    assert response.status_code == 200, response.text
    assert len(records_with(bridge.stack, bridge.topic("message.delivered"), event_id(item))) == 1


def forgeries(body: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    good = basic_and_signed(body)
    return {
        "wrong-password": (body, {**good, "Authorization": basic(USER, "guess")}),
        "mixed-pairs": (body, {**good, "Authorization": basic(USER, OLD_PASSWORD)}),
        "tampered": (body.replace(b"recipient@", b"attacker@"), good),
        "no-signature": (body, {"Authorization": good["Authorization"]}),
        "no-authorization": (body, {"lettr-signature": good["lettr-signature"]}),
        "wrong-signing-secret": (body, {**good, **signature_headers(body, "not-the-secret")}),
    }


@pytest.mark.parametrize("forgery", list(forgeries(b"")))
def test_a_forged_basic_delivery_gets_401_and_publishes_nothing(bridge: Served, forgery: str) -> None:
    item = element("message_event", "delivery")
    sent, headers = forgeries(body_of(item))[forgery]
    response = post_to(bridge, BASIC_SOURCE, sent, headers)
    assert response.status_code == 401, response.text
    assert records_with(bridge.stack, bridge.topic("message.delivered"), event_id(item)) == []


def test_an_oauth2_token_from_the_bridge_authorises_a_delivery(bridge: Served, registry: SchemaRegistryClient) -> None:
    answer = fetch_token(bridge)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    token = answer.json()
    assert (token["token_type"], token["expires_in"]) == ("Bearer", 120)
    item = element("track_event", "initial_open", user_agent="Mozilla/5.0", ip_address="203.0.113.9")
    body = body_of(item)
    response = post_to(bridge, OAUTH_SOURCE, body, {"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200, response.text
    [want] = expected(OAUTH_SOURCE, body)
    [record] = records_with(bridge.stack, bridge.topic("message.opened"), event_id(item))
    check_record(registry, record, want)
    assert decode(registry, record)["first"] is True


def test_client_credentials_may_come_as_basic(bridge: Served) -> None:
    answer = httpx.post(
        f"{bridge.url}/webhooks/{OAUTH_SOURCE}/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(CLIENT_ID, CLIENT_SECRET)},
        timeout=35,
    )
    assert answer.status_code == 200, answer.text
    item = element("message_event", "delivery")
    body = body_of(item)
    response = post_to(bridge, OAUTH_SOURCE, body, {"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "not-the-client-secret"}, 401, "signature_invalid"),
        ({"client_id": "someone-else"}, 401, "signature_invalid"),
        ({"grant_type": "password"}, 422, "payload_invalid"),
    ],
)
def test_the_token_endpoint_refuses(bridge: Served, form: dict[str, str], status: int, error: str) -> None:
    answer = fetch_token(bridge, **form)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_a_source_without_oauth2_has_no_token_endpoint(bridge: Served) -> None:
    answer = httpx.post(f"{bridge.url}/webhooks/{BASIC_SOURCE}/token", data={"grant_type": "client_credentials"})
    assert answer.status_code == 404


@pytest.mark.parametrize("forgery", ["edited", "foreign", "basic-instead", "none"])
def test_a_forged_bearer_gets_401_and_publishes_nothing(bridge: Served, forgery: str) -> None:
    token = fetch_token(bridge).json()["access_token"]
    headers = {
        "edited": {"Authorization": f"Bearer {token[:-4]}AAAA"},
        "foreign": {"Authorization": "Bearer some-opaque-token"},
        "basic-instead": {"Authorization": basic(CLIENT_ID, CLIENT_SECRET)},
        "none": {},
    }[forgery]
    item = element("message_event", "delivery")
    response = post_to(bridge, OAUTH_SOURCE, body_of(item), headers)
    assert response.status_code == 401, response.text
    assert records_with(bridge.stack, bridge.topic("message.delivered"), event_id(item)) == []


def test_a_relay_failure_is_published_raw_to_unmapped(bridge: Served, registry: SchemaRegistryClient) -> None:
    item = element("relay_event", "relay_tempfail", raw_reason="451 try later")
    item["msys"]["relay_event"].pop("message_id")
    body = body_of(item)
    assert post_to(bridge, BASIC_SOURCE, body, basic_and_signed(body)).status_code == 200
    [record] = records_with(bridge.stack, bridge.topic(UNMAPPED), event_id(item))
    decoded = decode(registry, record)
    assert (decoded["provider_event"], json.loads(decoded["raw"])) == ("relay_tempfail", item)
    assert record.key() == b"recipient@example.com"


def test_a_verified_batch_with_a_foreign_element_lands_whole_in_the_dead_letter_topic(bridge: Served) -> None:
    body = body_of(element("message_event", "delivery"), {"event": "not-msys", "marker": uuid.uuid4().hex})
    response = post_to(bridge, BASIC_SOURCE, body, basic_and_signed(body))
    assert (response.status_code, response.json()["status"]) == (200, "dead-lettered")
    [record] = dead_letters(bridge, body)
    headers = dict(record.headers() or [])
    assert headers["dead_letter_reason"].startswith(b"[1]: not an object with an msys object")
    assert headers["http.lettr-signature"] == signature_headers(body, SIGNING_SECRET)["lettr-signature"].encode()
    assert "http.authorization" not in headers  # credentials never reach Kafka


def test_the_validation_ping_is_published_as_webhook_test(bridge: Served) -> None:
    body = b'[{"msys":{}}]'
    response = post_to(bridge, BASIC_SOURCE, body, basic_and_signed(body))
    assert response.status_code == 200, response.text
    [ping_id] = response.json()["events"]
    assert len(records_with(bridge.stack, bridge.topic("webhook.test"), ping_id)) == 1


def test_send_test_signs_an_example_that_is_published(bridge: Served) -> None:
    result = run_cli(bridge.config, ENV, "send-test", "--source", SIGNED_SOURCE, "--event", "message.clicked")
    assert result.returncode == 0, result.stderr
    [sent_id] = sent_event_ids(result)
    assert len(records_with(bridge.stack, bridge.topic("message.clicked"), sent_id)) == 1
