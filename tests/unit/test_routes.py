"""Routes and their provider capabilities: prepare before verify, handshakes, the token endpoint, allow-lists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from bridge.errors import SignatureInvalid
from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.lettermint import Lettermint, signature_headers
from bridge.routes import Route
from bridge.settings import SourceSettings
from tests.support.fakes import (
    DELIVERED,
    FIXED,
    MINIMAL_YAML,
    SECRET,
    SOURCE,
    FakePublisher,
    MockRegistry,
    wait_until_registered,
)


class FakeProvider:
    """Stands in for the lettermint provider: `prepare` (like SNS's certificate fetch), a handshake on
    `{"control": ...}` bodies, and a token endpoint; the source's first secret is its password."""

    def __init__(self) -> None:
        self.prepared: list[bytes] = []

    async def prepare(self, headers: Headers, body: bytes, source: SourceSettings, now: float) -> None:
        self.prepared.append(body)

    def verify(self, headers: Headers, body: bytes, source: SourceSettings, now: float) -> None:
        if body not in self.prepared:
            raise AssertionError("verify ran before prepare")
        if headers.get("x-fake-auth") != source.secret_values()[0]:
            raise SignatureInvalid("wrong fake password")

    async def handshake(self, delivery: Delivery, source: SourceSettings) -> dict[str, Any] | None:
        return {"status": "confirmed"} if delivery.body.startswith(b'{"control"') else None

    def issue_token(
        self, form: Mapping[str, str], authorization: str | None, source: SourceSettings, now: float
    ) -> dict[str, Any]:
        if form.get("client_secret") != source.secret_values()[0]:
            raise SignatureInvalid("bad client credentials")
        return {"access_token": f"token-for-{form.get('client_id')}", "token_type": "Bearer", "expires_in": 60}

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        return [
            CanonicalEvent.of(
                delivery,
                event_id=f"e{index}",
                event_type=event_type,
                provider_event=event_type,
                key=f"m{index}",
                occurred_at=datetime.fromtimestamp(FIXED, UTC),
                raw="{}",
            )
            for index, event_type in enumerate(delivery.body.decode().split(","))
        ]


FAKE_YAML = """
kafka: {bootstrap_servers: "127.0.0.1:1"}
schema_registry: {url: "mock://hooks"}
sources:
  - {name: fake, provider: lettermint, secrets: [open-sesame], event_types: [message.delivered, message.opened]}
"""


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(publisher: FakePublisher) -> Iterator[TestClient]:
    settings = config.parse(FAKE_YAML, environ={})
    app = create_app(
        settings,
        publisher=publisher,
        client=MockRegistry("hooks"),
        clock=lambda: FIXED,
        providers={"lettermint": FakeProvider()},  # injected: nothing global is patched
    )
    with TestClient(app) as test:
        wait_until_registered(test)
        yield test


def test_capabilities_are_resolved_once_per_route() -> None:
    settings = config.parse(FAKE_YAML, environ={})
    fake, real = Route.build(settings.sources[0], FakeProvider()), Route.build(settings.sources[0], Lettermint())
    assert (fake.prepare, fake.handshake, fake.issue_token) != (None, None, None)
    assert (real.prepare, real.handshake, real.issue_token) == (None, None, None)
    assert real.private_headers == {"authorization", "proxy-authorization", "cookie"}


def test_prepare_runs_before_verify_which_can_refuse(client: TestClient, publisher: FakePublisher) -> None:
    response = client.post("/webhooks/fake", content=b"message.delivered", headers={"x-fake-auth": "wrong"})
    assert (response.status_code, response.json()["error"]) == (401, "signature_invalid")
    assert publisher.records == []


def test_events_outside_the_allow_list_are_acknowledged_counted_and_not_published(
    client: TestClient, publisher: FakePublisher
) -> None:
    body = b"message.delivered,message.sent,message.opened"
    response = client.post("/webhooks/fake", content=body, headers={"x-fake-auth": "open-sesame"})
    assert response.json() == {"status": "published", "events": ["e0", "e2"], "filtered": ["e1"]}
    assert [record.topic for record in publisher.records] == ["webhooks.message.delivered", "webhooks.message.opened"]
    metrics = client.get("/metrics").text
    assert 'bridge_filtered_events_total{event_type="message.sent",source="fake"} 1.0' in metrics
    assert 'bridge_events_published_total{event_type="message.opened",source="fake"} 1.0' in metrics


def test_a_delivery_whose_events_are_all_filtered_publishes_nothing(
    client: TestClient, publisher: FakePublisher
) -> None:
    response = client.post("/webhooks/fake", content=b"message.sent", headers={"x-fake-auth": "open-sesame"})
    assert response.json() == {"status": "published", "events": [], "filtered": ["e0"]}
    assert publisher.records == []


def test_a_verified_handshake_is_answered_by_the_provider_and_publishes_nothing(
    client: TestClient, publisher: FakePublisher
) -> None:
    response = client.post("/webhooks/fake", content=b'{"control": 1}', headers={"x-fake-auth": "open-sesame"})
    assert (response.status_code, response.json()) == (200, {"status": "confirmed"})
    assert publisher.records == []
    assert 'bridge_handshakes_total{source="fake",status="confirmed"} 1.0' in client.get("/metrics").text


def test_an_unverified_handshake_is_refused(client: TestClient) -> None:
    response = client.post("/webhooks/fake", content=b'{"control": 1}', headers={"x-fake-auth": "nope"})
    assert response.status_code == 401


def test_the_token_endpoint_issues_for_good_client_credentials(client: TestClient) -> None:
    form = {"grant_type": "client_credentials", "client_id": "lettr", "client_secret": "open-sesame"}
    response = client.post("/webhooks/fake/token", data=form)
    assert response.status_code == 200
    assert response.json()["access_token"] == "token-for-lettr"
    assert response.headers["cache-control"] == "no-store"


def test_the_token_endpoint_refuses_bad_client_credentials(client: TestClient) -> None:
    response = client.post("/webhooks/fake/token", data={"client_id": "lettr", "client_secret": "guess"})
    assert (response.status_code, response.json()["error"]) == (401, "signature_invalid")


def test_a_provider_without_tokens_has_no_token_endpoint(
    settings: config.Settings, publisher: FakePublisher, registry: MockRegistry
) -> None:
    with TestClient(create_app(settings, publisher=publisher, client=registry, clock=lambda: FIXED)) as test:
        response = test.post(f"/webhooks/{SOURCE}/token", data={"grant_type": "client_credentials"})
    assert (response.status_code, response.json()["error"]) == (404, "unknown_source")


def test_an_allow_list_naming_an_unknown_type_is_a_configuration_error() -> None:
    yaml = MINIMAL_YAML.replace("secrets:", "event_types: [message.teleported], secrets:")
    with pytest.raises(config.ConfigError, match=r"sources\.0\.event_types: unknown event types message\.teleported"):
        config.parse(yaml, environ={})


def test_lettermint_refuses_options_it_does_not_have() -> None:
    yaml = MINIMAL_YAML.replace("secrets:", "options: {colour: blue}, secrets:")
    with pytest.raises(config.ConfigError, match=r"sources\.0\.options\.colour: unknown key"):
        config.parse(yaml, environ={})


def test_the_lettermint_signature_still_guards_the_route_with_an_allow_list(
    publisher: FakePublisher, registry: MockRegistry
) -> None:
    yaml = MINIMAL_YAML.replace("secrets:", "event_types: [message.sent], secrets:")
    settings = config.parse(yaml, environ={})
    with TestClient(create_app(settings, publisher=publisher, client=registry, clock=lambda: FIXED)) as test:
        wait_until_registered(test)
        response = test.post(
            f"/webhooks/{SOURCE}", content=DELIVERED, headers=signature_headers(DELIVERED, SECRET, FIXED)
        )
    assert response.json()["filtered"] == ["9b0c4a4e-4e29-4d8b-8b3a-3f0f3e6d2f9b"]
    assert publisher.records == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"grant_type": "client_credentials", "client_id": "lettr", "client_secret": "open-sesame"}', 200),
        (b'{"client_id": "lettr", "client_secret": 7}', 401),
        (b"[1, 2]", 401),
        (b"{not json", 401),
    ],
    ids=["object", "non-string-secret", "array", "malformed"],
)
def test_the_token_endpoint_also_takes_a_json_object(client: TestClient, body: bytes, status: int) -> None:
    response = client.post("/webhooks/fake/token", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
