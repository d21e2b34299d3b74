"""create_app over a fake publisher and a mock:// registry: one HTTP status per error class."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from httpx import Response
from prometheus_client import generate_latest
from starlette.testclient import TestClient
from starlette.types import Message

from bridge import config
from bridge.app import create_app
from bridge.errors import PublishFailed, RecordTooLarge
from bridge.providers.lettermint import signature_headers
from bridge.publisher import KafkaPublisher, _settle
from bridge.records import Record
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lettermint"
EVENT_ID = b"9b0c4a4e-4e29-4d8b-8b3a-3f0f3e6d2f9b"
MESSAGE_ID = b"f47ac10b-58cc-4372-a567-0e02b2c3d479"
RECEIVED_AT = b"2025-08-08T20:15:12.000+00:00"
PATH = f"/webhooks/{SOURCE}"


def post(
    client: TestClient, body: bytes, *, secret: str = SECRET, signed_at: float = FIXED, **headers: str
) -> Response:
    signed = signature_headers(body, secret, signed_at)
    return client.post(PATH, content=body, headers={**signed, **headers})


def test_signed_delivery_is_published(client: TestClient, publisher: FakePublisher, registry: MockRegistry) -> None:
    response = post(client, DELIVERED)
    assert (response.status_code, response.json()) == (200, {"status": "published", "events": [EVENT_ID.decode()]})
    [record] = publisher.records
    assert (record.topic, record.key) == ("webhooks.message.delivered", MESSAGE_ID)
    assert record.headers == [
        ("event_id", EVENT_ID),
        ("event_type", b"message.delivered"),
        ("provider", b"lettermint"),
        ("source", SOURCE.encode()),
        ("attempt", b"1"),
        ("received_at", RECEIVED_AT),
    ]
    assert record.value.startswith(b"\x00")
    context = SerializationContext(record.topic, MessageField.VALUE)
    decoded = AvroDeserializer(registry)(record.value, context)
    assert (decoded["message_id"], decoded["smtp_status_code"]) == (MESSAGE_ID.decode(), 250)
    assert decoded["raw"] == DELIVERED.decode()


def test_unknown_source(client: TestClient, publisher: FakePublisher) -> None:
    response = client.post("/webhooks/nope", content=DELIVERED, headers=signature_headers(DELIVERED, SECRET, FIXED))
    assert (response.status_code, response.json()["error"]) == (404, "unknown_source")
    assert publisher.records == []


@pytest.mark.parametrize(
    ("body", "secret", "signed_at", "code"),
    [
        (DELIVERED, "whsec_wrong", FIXED, "signature_invalid"),
        (DELIVERED.replace(b"250", b"550"), SECRET, FIXED, "signature_invalid"),
        (DELIVERED, SECRET, FIXED - 301, "stale_timestamp"),
        (DELIVERED, SECRET, FIXED + 301, "stale_timestamp"),
    ],
    ids=["wrong-secret", "tampered-body", "stale", "future"],
)
def test_rejected_signature(
    client: TestClient, publisher: FakePublisher, body: bytes, secret: str, signed_at: float, code: str
) -> None:
    headers = signature_headers(DELIVERED, secret, signed_at)
    response = client.post(PATH, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, code)
    assert publisher.records == []


def test_missing_signature(client: TestClient, publisher: FakePublisher) -> None:
    response = client.post(PATH, content=DELIVERED)
    assert (response.status_code, response.json()["error"]) == (401, "signature_invalid")
    assert publisher.records == []


def test_body_over_the_limit_by_content_length(client: TestClient, publisher: FakePublisher) -> None:
    response = post(client, b" " * 1025)
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert response.json()["detail"] == "body of 1025 bytes exceeds the 1024-byte limit"
    assert publisher.records == []


def test_body_over_the_limit_streamed(client: TestClient, publisher: FakePublisher) -> None:
    """No Content-Length (chunked): the limit is enforced while reading."""
    body = b" " * 1025
    signed = signature_headers(body, SECRET, FIXED)
    response = client.post(PATH, content=(chunk for chunk in (body[:600], body[600:])), headers=signed)
    assert response.request.headers.get("content-length") is None
    assert (response.status_code, response.json()["detail"]) == (413, "body exceeds the 1024-byte limit")
    assert publisher.records == []


def test_body_at_the_limit_is_read(client: TestClient, publisher: FakePublisher) -> None:
    body = DELIVERED + b" " * (1024 - len(DELIVERED))
    assert post(client, body).status_code == 200
    assert len(publisher.records) == 1


SENT = '{"id":"e1","event":"message.sent","timestamp":"2025-08-08T20:15:12Z","data":%s}'
# JSON escapes that decode to a lone surrogate: valid JSON, but not encodable as UTF-8 (Avro strings, Kafka keys).
SURROGATE_SUBJECT = (SENT % '{"subject":"\\ud800"}').encode()
SURROGATE_ID = (SENT % '{"message_id":"\\ud800"}').encode()
# json.loads also accepts UTF-16 and UTF-32 bodies.
UTF16 = (SENT % "{}").encode("utf-16")
INT_OVERFLOW = (
    b'{"event":"message.delivered","timestamp":"2025-08-08T20:15:12Z","data":{"response":{"status_code":9999999999}}}'
)


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "message.delivered", "data": {',
        b"[1, 2]",
        b'{"data": {}, "timestamp": "2025-08-08T20:15:12Z"}',
        b'{"event": "message.sent", "data": {}, "timestamp": "yesterday"}',
        INT_OVERFLOW,
        SURROGATE_SUBJECT,
        SURROGATE_ID,
        UTF16,
    ],
    ids=["truncated", "array", "no-event", "bad-time", "int-overflow", "surrogate-subject", "surrogate-id", "utf-16"],
)
def test_verified_but_unusable_body_is_dead_lettered(client: TestClient, publisher: FakePublisher, body: bytes) -> None:
    response = post(client, body, Authorization="Bearer token", Cookie="session=1")
    assert (response.status_code, response.json()["status"]) == (200, "dead-lettered")
    [record] = publisher.records
    assert (record.topic, record.key, record.value) == ("webhooks.dead-letter", SOURCE.encode(), body)
    headers = dict(record.headers)
    assert headers["dead_letter_reason"] == response.json()["reason"].encode()
    signature = signature_headers(body, SECRET, FIXED)["X-Lettermint-Signature"]
    assert headers["http.x-lettermint-signature"] == signature.encode()
    assert (headers["source"], headers["provider"], headers["received_at"]) == (b"lm", b"lettermint", RECEIVED_AT)
    assert "http.authorization" not in headers
    assert "http.cookie" not in headers


def test_unmapped_event_is_published_raw(client: TestClient, publisher: FakePublisher, registry: MockRegistry) -> None:
    body = b'{"id":"u1","event":"message.teleported","timestamp":"2025-08-08T20:15:12Z","data":{"message_id":"m1"}}'
    response = post(client, body)
    assert (response.status_code, response.json()["status"]) == (200, "published")
    [record] = publisher.records
    assert (record.topic, record.key) == ("webhooks.unmapped", b"m1")
    decoded = AvroDeserializer(registry)(record.value, SerializationContext(record.topic, MessageField.VALUE))
    assert (decoded["event_type"], decoded["provider_event"]) == ("unmapped", "message.teleported")
    assert decoded["raw"] == body.decode()
    metrics = client.get("/metrics").text
    assert 'bridge_unmapped_events_total{provider_event="message.teleported",source="lm"} 1.0' in metrics


def test_publish_failed_asks_for_a_retry(client: TestClient, publisher: FakePublisher) -> None:
    publisher.failure = PublishFailed("no ack")
    response = post(client, DELIVERED)
    assert (response.status_code, response.json()["error"]) == (503, "publish_failed")
    assert response.headers["retry-after"] == "17"


def test_dead_letter_publish_failed_asks_for_a_retry(client: TestClient, publisher: FakePublisher) -> None:
    publisher.failure = PublishFailed("no ack")
    response = post(client, b"not json")
    assert (response.status_code, response.headers["retry-after"]) == (503, "17")


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(("kafka_ready", "status"), [(True, 200), (False, 503)])
def test_readyz(client: TestClient, publisher: FakePublisher, kafka_ready: bool, status: int) -> None:
    publisher.is_ready = kafka_ready
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        status,
        {"ready": kafka_ready, "schemas_registered": True, "kafka": kafka_ready},
    )


def test_unreachable_registry(settings: config.Settings, publisher: FakePublisher) -> None:
    """The bare client cannot reach mock://: not ready, and deliveries get 503 + Retry-After."""
    bare = SchemaRegistryClient({"url": "mock://unit"})
    app = create_app(settings, publisher=publisher, client=bare, clock=lambda: FIXED)
    with TestClient(app) as client:
        ready = client.get("/readyz")
        response = post(client, DELIVERED)
    assert (ready.status_code, ready.json()["schemas_registered"]) == (503, False)
    assert (response.status_code, response.json()["error"], response.headers["retry-after"]) == (
        503,
        "registry_unavailable",
        "17",
    )
    assert publisher.records == []


def test_metrics_count_requests_and_rejections(client: TestClient) -> None:
    post(client, DELIVERED)
    post(client, DELIVERED, secret="whsec_wrong")
    metrics = client.get("/metrics").text
    assert 'bridge_requests_total{source="lm",status="200",status_class="2xx"} 1.0' in metrics
    assert 'bridge_requests_total{source="lm",status="401",status_class="4xx"} 1.0' in metrics
    assert 'bridge_rejected_total{code="signature_invalid",source="lm"} 1.0' in metrics
    assert 'bridge_events_published_total{event_type="message.delivered",source="lm"} 1.0' in metrics


def test_unknown_sources_do_not_create_metric_series(client: TestClient) -> None:
    client.post("/webhooks/made-up-name-4711", content=b"{}")
    assert "made-up-name-4711" not in client.get("/metrics").text


RECORD = Record("webhooks.message.delivered", b"k", b"v")


def test_kafka_publisher_without_a_broker_fails_in_time() -> None:
    async def publish_then_close() -> float:
        async with KafkaPublisher("127.0.0.1:1", {}, timeout=0.5, shutdown_timeout=0.1) as publisher:
            started = time.monotonic()
            with pytest.raises(PublishFailed):
                await publisher.publish([RECORD])
            return time.monotonic() - started

    assert asyncio.run(publish_then_close()) < 3


def test_late_delivery_report_does_not_kill_the_poll_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    escaped: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    publisher = KafkaPublisher("127.0.0.1:1", {"log_level": 0}, timeout=0.5)
    asyncio.run(publisher.__aenter__())  # the poll thread outlives this loop, as the test needs
    with pytest.raises(PublishFailed):
        asyncio.run(publisher.publish([RECORD]))
    deadline = time.monotonic() + 3  # librdkafka times the record out (message.timeout.ms) and reports it
    while not escaped and time.monotonic() < deadline:
        time.sleep(0.05)
    publisher.close(0.1)
    assert [str(hook.exc_value) for hook in escaped] == []


def test_a_fatal_producer_error_fails_the_liveness_probe(client: TestClient, publisher: FakePublisher) -> None:
    assert client.get("/healthz").status_code == 200
    publisher.fatal = "Local: Fatal error: idempotent producer sequence desynchronised"
    response = client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (503, "failed")
    assert "sequence" in response.json()["kafka_fatal"]


def test_the_kafka_publisher_records_only_fatal_errors() -> None:
    publisher = KafkaPublisher("127.0.0.1:1", {}, timeout=0.5)
    publisher._on_error(KafkaError(KafkaError._TRANSPORT, "broker down"))
    assert publisher.fatal is None
    publisher._on_error(KafkaError(KafkaError._FATAL, "sequence desynchronised", fatal=True))
    assert publisher.fatal is not None
    assert asyncio.run(publisher.ready()) is False


def test_the_lifespan_enters_and_leaves_whatever_publisher_it_is_given(
    settings: config.Settings, registry: MockRegistry
) -> None:
    publisher = FakePublisher()  # not a KafkaPublisher: its lifecycle must not be skipped
    with TestClient(create_app(settings, publisher=publisher, client=registry, clock=lambda: FIXED)):
        assert (publisher.entered, publisher.exited) == (1, 0)
    assert (publisher.entered, publisher.exited) == (1, 1)


class Broken(FakePublisher):
    """A publisher with a bug: what reaches the client is a 500, and it must still be counted."""

    async def publish(self, records: Sequence[Record]) -> None:
        raise RuntimeError("a bug")


def test_a_500_is_counted(settings: config.Settings, registry: MockRegistry) -> None:
    app = create_app(settings, publisher=Broken(), client=registry, clock=lambda: FIXED)
    with TestClient(app, raise_server_exceptions=False) as test:
        wait_until_registered(test)
        assert post(test, DELIVERED).status_code == 500
        metrics = test.get("/metrics").text
    assert 'bridge_requests_total{source="lm",status="500",status_class="5xx"} 1.0' in metrics


def test_a_client_that_goes_away_mid_body_is_counted_not_a_traceback(
    settings: config.Settings, registry: MockRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, publisher=FakePublisher(), client=registry, clock=lambda: FIXED)
    sent: list[Message] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [(b"content-length", b"100")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    messages = iter([{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}])

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 499
    text = generate_latest(app.metrics.registry).decode()
    assert 'bridge_aborted_requests_total{source="lm"} 1.0' in text
    assert 'bridge_requests_total{source="lm",status="499",status_class="4xx"} 1.0' in text
    assert [entry.levelname for entry in caplog.records if entry.levelname in ("ERROR", "WARNING")] == []


def test_a_source_over_its_rate_limit_gets_429_with_retry_after(registry: MockRegistry) -> None:
    limited = config.parse(
        MINIMAL_YAML.replace("secrets:", "rate_limit: {per_second: 0.5, burst: 2}, secrets:"), environ={}
    )
    now = [FIXED]
    app = create_app(limited, publisher=FakePublisher(), client=registry, clock=lambda: now[0])
    with TestClient(app) as test:
        wait_until_registered(test)
        answers = [post(test, DELIVERED).status_code for _ in range(3)]
        refused = post(test, DELIVERED)
        now[0] += 2  # one token back
        later = post(test, DELIVERED).status_code
        metrics = test.get("/metrics").text
    assert answers == [200, 200, 429]
    assert (refused.status_code, refused.headers["retry-after"], refused.json()["error"]) == (429, "2", "rate_limited")
    assert later == 200
    assert 'bridge_rate_limited_total{source="lm"} 2.0' in metrics


def test_a_producer_limit_below_the_largest_record_is_a_configuration_error() -> None:
    yaml = MINIMAL_YAML.replace(
        'kafka: {bootstrap_servers: "127.0.0.1:1"}',
        'kafka: {bootstrap_servers: "127.0.0.1:1", producer: {message.max.bytes: 1000000}}',
    )
    with pytest.raises(
        config.ConfigError, match=r"kafka\.producer\.message\.max\.bytes: 1000000 is below the \d+ bytes"
    ):
        config.parse(yaml, environ={})


def test_too_large_errors_from_kafka_are_permanent() -> None:
    loop = asyncio.new_event_loop()
    try:
        future: asyncio.Future[None] = loop.create_future()
        _settle(future, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        with pytest.raises(RecordTooLarge):
            future.result()
        other: asyncio.Future[None] = loop.create_future()
        _settle(other, KafkaError(KafkaError._MSG_TIMED_OUT))
        with pytest.raises(PublishFailed):
            other.result()
    finally:
        loop.close()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_webhook_endpoint_takes_post_only(client: TestClient, publisher: FakePublisher, method: str) -> None:
    response = client.request(method, "/webhooks/lm", content=DELIVERED)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert response.json()["error"] == "method_not_allowed"
    assert publisher.records == []
    assert 'status="405"' in client.get("/metrics").text


def test_readyz_says_why_the_schemas_are_not_registered(settings: config.Settings, publisher: FakePublisher) -> None:
    """A registry that refuses the bridge (wrong credentials, say): the reason is in /readyz, not only in the log."""

    class Refusing(MockRegistry):
        def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
            raise SchemaRegistryError(401, 40101, "Unauthorized")

    app = create_app(settings, publisher=publisher, client=Refusing(), clock=lambda: FIXED)
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while "problems" not in (body := client.get("/readyz").json()) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert body["schemas_registered"] is False
    assert any("schema registry" in problem and "Unauthorized" in problem for problem in body["problems"])


def test_with_a_management_port_the_probes_and_metrics_leave_the_public_app(
    settings: config.Settings, publisher: FakePublisher, registry: MockRegistry
) -> None:
    apart = settings.model_copy(update={"server": settings.server.model_copy(update={"management_port": 9090})})
    app = create_app(apart, publisher=publisher, client=registry, clock=lambda: FIXED)
    assert app.management is not None
    with TestClient(app) as public, TestClient(app.management) as management:
        wait_until_registered(management)
        for path in ("/healthz", "/readyz", "/metrics"):
            assert public.get(path).status_code == 404, path
            assert management.get(path).status_code == 200, path
        assert post(public, DELIVERED).status_code == 200
        assert management.get(f"/webhooks/{SOURCE}").status_code == 404
        assert management.post(f"/webhooks/{SOURCE}/token").status_code == 404  # nothing of the public app there
        assert 'bridge_requests_total{source="' in management.get("/metrics").text
        assert "bridge_ready 1.0" in management.get("/metrics").text
        app.shutting_down = True  # as the server sets it on SIGTERM: the management /readyz says so
        assert (management.get("/readyz").status_code, management.get("/readyz").json()) == (
            503,
            {"ready": False, "shutting_down": True},
        )
        assert "bridge_ready 0.0" in management.get("/metrics").text
    assert create_app(settings, publisher=publisher, client=registry).management is None
