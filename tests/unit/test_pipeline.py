"""The pipeline on its own, no HTTP: Delivery in, Outcome out; dead letters replay through the same path."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from benchmarks.pipeline_cpu import bodies, pipeline_cpu
from bridge import config
from bridge.avro import Encoder, load_schemas
from bridge.errors import RecordTooLarge, SignatureInvalid, StaleTimestamp
from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import DeadLettered, Pipeline, Published
from bridge.providers.lettermint import Lettermint, LettermintSource, signature_headers
from bridge.records import MAX_REASON_CHARS, read_dead_letter
from bridge.routes import Route
from tests.support.fakes import DELIVERED, FIXED, MINIMAL_YAML, SECRET, FakePublisher, MockRegistry

RECEIVED = datetime.fromtimestamp(FIXED, UTC)
LIMIT = 64 * 1024


@pytest.fixture
def parts() -> tuple[Pipeline, Route, FakePublisher]:
    settings = config.parse(MINIMAL_YAML, environ={})
    encoder = Encoder(MockRegistry("pipeline"), load_schemas(), "webhooks")
    encoder.register()
    publisher = FakePublisher()
    return (
        Pipeline(encoder, publisher, Metrics(), "webhooks", max_record_bytes=LIMIT),
        Route.build(settings.sources[0], Lettermint()),
        publisher,
    )


def delivery(body: bytes, signed_at: float = FIXED, received: datetime = RECEIVED) -> Delivery:
    return Delivery("lm", "lettermint", Headers(signature_headers(body, SECRET, signed_at)), body, received)


def test_a_delivery_is_published_without_any_transport(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    outcome = asyncio.run(pipeline.process(route, delivery(DELIVERED)))
    assert isinstance(outcome, Published)
    assert [event.event_type for event in outcome.events] == ["message.delivered"]
    assert [record.topic for record in publisher.records] == ["webhooks.message.delivered"]


def test_an_unauthentic_delivery_publishes_nothing(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    forged = Delivery("lm", "lettermint", Headers(signature_headers(DELIVERED, "whsec_x", FIXED)), DELIVERED, RECEIVED)
    with pytest.raises(SignatureInvalid):
        asyncio.run(pipeline.process(route, forged))
    assert publisher.records == []


def test_a_dead_letter_replays_through_the_same_pipeline(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    unusable = b'{"id": "x", "event": "message.delivered", "timestamp": "2025-08-08T20:15:12Z"}'
    outcome = asyncio.run(pipeline.process(route, delivery(unusable)))
    assert isinstance(outcome, DeadLettered) and outcome.reason == "data: missing or not an object"
    [record] = publisher.records
    letter = read_dead_letter(record.value, record.headers)
    assert letter.delivery == delivery(unusable)  # the exact delivery, signature headers included
    # Hours later its signature is stale; a replay skips authentication (it was checked on arrival).
    later = Delivery(**{**letter.delivery.__dict__, "received_at": datetime.fromtimestamp(FIXED + 7200, UTC)})
    with pytest.raises(StaleTimestamp):
        asyncio.run(pipeline.process(route, later))
    replayed = asyncio.run(pipeline.process(route, later, authenticate=False))
    assert isinstance(replayed, DeadLettered)  # still unusable, and kept again, whole
    assert publisher.records[-1].value == unusable


def test_the_benchmark_measures_the_pipeline_itself() -> None:
    assert pipeline_cpu(bodies(3)) > 0


class Crashing(Lettermint):
    """A provider with a bug in `stage`: the pipeline must keep the authentic delivery, not crash."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def verify(self, headers: Headers, body: bytes, source: LettermintSource, now: float) -> None:
        if self.stage == "verify":
            raise KeyError("a verifier bug")
        super().verify(headers, body, source, now)

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        if self.stage == "normalise":
            raise ZeroDivisionError("a mapping bug")
        return super().normalise(delivery)


def crashing(parts: tuple[Pipeline, Route, FakePublisher], stage: str) -> Route:
    return Route.build(parts[1].source, Crashing(stage))


def test_a_normaliser_bug_dead_letters_the_authentic_delivery(
    parts: tuple[Pipeline, Route, FakePublisher], caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, _, publisher = parts
    outcome = asyncio.run(pipeline.process(crashing(parts, "normalise"), delivery(DELIVERED)))
    assert isinstance(outcome, DeadLettered)
    assert outcome.reason == "processing failed: ZeroDivisionError: a mapping bug"
    [record] = publisher.records
    assert (record.topic, record.value) == ("webhooks.dead-letter", DELIVERED)
    [logged] = [entry for entry in caplog.records if entry.levelname == "ERROR"]
    assert (logged.source, logged.provider) == ("lm", "lettermint")  # type: ignore[attr-defined]


def test_a_verifier_bug_is_an_authentication_failure_not_a_crash(
    parts: tuple[Pipeline, Route, FakePublisher], caplog: pytest.LogCaptureFixture
) -> None:
    pipeline, _, publisher = parts
    with pytest.raises(SignatureInvalid, match="could not be verified"):
        asyncio.run(pipeline.process(crashing(parts, "verify"), delivery(DELIVERED)))
    assert publisher.records == []
    assert [entry.levelname for entry in caplog.records] == ["ERROR"]


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-14:00", "0001-01-01T00:00:00Z"]
)
def test_timestamps_no_consumer_could_decode_are_dead_lettered(
    parts: tuple[Pipeline, Route, FakePublisher], stamp: str
) -> None:
    pipeline, route, publisher = parts
    body = json.dumps({"id": "t", "event": "message.delivered", "timestamp": stamp, "data": {}}).encode()
    outcome = asyncio.run(pipeline.process(route, delivery(body)))
    assert isinstance(outcome, DeadLettered) and outcome.reason.startswith("occurred_at: ")
    assert [record.topic for record in publisher.records] == ["webhooks.dead-letter"]


def test_an_event_record_over_the_limit_dead_letters_the_delivery(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    # `raw` and `subject` both carry the long text: the event record is about twice the body.
    subject = "x" * (LIMIT // 2 + 1000)
    body = json.dumps(
        {"id": "big", "event": "message.sent", "timestamp": "2025-08-08T20:15:12Z", "data": {"subject": subject}}
    )
    outcome = asyncio.run(pipeline.process(route, delivery(body.encode())))
    assert isinstance(outcome, DeadLettered) and "exceeds the 65536-byte record limit" in outcome.reason
    [record] = publisher.records
    assert record.topic == "webhooks.dead-letter" and record.value == body.encode()


def test_a_dead_letter_over_the_limit_is_refused_for_good(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    body = b"[" * (LIMIT + 1)
    with pytest.raises(RecordTooLarge):
        asyncio.run(pipeline.process(route, delivery(body)))
    assert publisher.records == []


def test_the_broker_refusing_a_record_as_too_large_dead_letters_it(
    parts: tuple[Pipeline, Route, FakePublisher],
) -> None:
    pipeline, route, publisher = parts
    publisher.failure = RecordTooLarge("Kafka refused the record as too large")
    with pytest.raises(RecordTooLarge):  # and the dead letter is refused too: a permanent 413, not a 503
        asyncio.run(pipeline.process(route, delivery(DELIVERED)))


def test_dead_letter_reasons_are_bounded(parts: tuple[Pipeline, Route, FakePublisher]) -> None:
    pipeline, route, publisher = parts
    body = json.dumps({"id": "r", "event": "message.delivered", "timestamp": "x" * 5000, "data": {}}).encode()
    outcome = asyncio.run(pipeline.process(route, delivery(body)))
    assert isinstance(outcome, DeadLettered)
    [record] = publisher.records
    reason = dict(record.headers)["dead_letter_reason"]
    assert isinstance(reason, bytes) and len(reason.decode()) <= MAX_REASON_CHARS
    assert outcome.reason == reason.decode()
