"""The pipeline on its own, no HTTP: Delivery in, Outcome out; dead letters replay through the same path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from benchmarks.throughput import bodies, cpu_per_delivery
from bridge import config
from bridge.avro import Encoder, load_schemas
from bridge.errors import SignatureInvalid, StaleTimestamp
from bridge.events import Delivery
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import DeadLettered, Pipeline, Published
from bridge.providers.lettermint import Lettermint, signature_headers
from bridge.records import read_dead_letter
from bridge.routes import Route
from tests.support.fakes import DELIVERED, FIXED, MINIMAL_YAML, SECRET, FakePublisher, MockRegistry

RECEIVED = datetime.fromtimestamp(FIXED, UTC)


@pytest.fixture
def parts() -> tuple[Pipeline, Route, FakePublisher]:
    settings = config.parse(MINIMAL_YAML, environ={})
    encoder = Encoder(MockRegistry("pipeline"), load_schemas(), "webhooks")
    encoder.register()
    publisher = FakePublisher()
    return (
        Pipeline(encoder, publisher, Metrics(), "webhooks"),
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
    assert cpu_per_delivery(bodies(3)) > 0
