"""Duplicates: concurrent copies wait for the first one's outcome; recent ones are answered without publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from bridge.avro import Encoder, load_schemas
from bridge.dedupe import RecentDeliveries
from bridge.errors import PublishFailed
from bridge.events import Delivery
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import Duplicate, Pipeline, Published
from bridge.providers.lettermint import Lettermint, signature_headers
from bridge.records import Record
from bridge.routes import Route
from tests.support.fakes import (
    DELIVERED,
    FIXED,
    MINIMAL_YAML,
    SECRET,
    FakePublisher,
    MockRegistry,
    wait_until_registered,
)


class SlowPublisher(FakePublisher):
    """Acknowledges once `gate` opens; the first `failures` publishes fail."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.failures = failures
        self.calls = 0

    async def publish(self, records: Sequence[Record]) -> None:
        self.calls += 1
        await self.gate.wait()
        if self.calls <= self.failures:
            raise PublishFailed("not this time")
        self.records.extend(records)


def signed(at: float = FIXED) -> Delivery:
    headers = Headers(signature_headers(DELIVERED, SECRET, at))
    return Delivery("lm", "lettermint", headers, DELIVERED, datetime.fromtimestamp(at, UTC))


def pipeline(publisher: FakePublisher, recent: RecentDeliveries) -> tuple[Pipeline, Route]:
    settings = config.parse(MINIMAL_YAML, environ={})
    encoder = Encoder(MockRegistry("dedupe"), load_schemas(), "webhooks")
    encoder.register()
    return Pipeline(encoder, publisher, Metrics(), "webhooks", 64 * 1024, recent), Route.build(
        settings.sources[0], Lettermint()
    )


def test_concurrent_copies_wait_for_the_first_and_publish_once() -> None:
    publisher = SlowPublisher()
    process, route = pipeline(publisher, RecentDeliveries(60, 100))

    async def run() -> list[object]:
        copies = [asyncio.create_task(process.process(route, signed(FIXED + n))) for n in range(3)]
        await asyncio.sleep(0.05)  # all three are in: one publishing, two waiting
        publisher.gate.set()
        return list(await asyncio.gather(*copies))

    outcomes = asyncio.run(run())
    assert [type(outcome) for outcome in outcomes] == [Published, Duplicate, Duplicate]
    assert (publisher.calls, len(publisher.records)) == (1, 1)


def test_a_copy_waiting_on_a_failed_first_tries_itself() -> None:
    publisher = SlowPublisher(failures=1)
    process, route = pipeline(publisher, RecentDeliveries(60, 100))

    async def run() -> list[object]:
        first = asyncio.create_task(process.process(route, signed()))
        second = asyncio.create_task(process.process(route, signed(FIXED + 1)))
        await asyncio.sleep(0.05)
        publisher.gate.set()
        return list(await asyncio.gather(first, second, return_exceptions=True))

    first, second = asyncio.run(run())
    assert isinstance(first, PublishFailed) and isinstance(second, Published)
    assert (publisher.calls, len(publisher.records)) == (2, 1)


def test_a_redelivery_within_the_ttl_is_a_duplicate_and_after_it_is_published_again() -> None:
    now = [0.0]
    publisher = FakePublisher()
    process, route = pipeline(publisher, RecentDeliveries(60, 100, clock=lambda: now[0]))
    assert isinstance(asyncio.run(process.process(route, signed())), Published)
    assert isinstance(asyncio.run(process.process(route, signed(FIXED + 30))), Duplicate)
    now[0] = 61
    assert isinstance(asyncio.run(process.process(route, signed(FIXED + 61))), Published)
    assert len(publisher.records) == 2


def test_memory_is_bounded_oldest_forgotten_first() -> None:
    recent = RecentDeliveries(60, 2)

    async def fill() -> bool:
        for key in ("a", "b", "c"):
            assert await recent.claim(key)
            recent.settle(key, acknowledged=True)
        return await recent.claim("a")  # forgotten: it may publish again

    assert asyncio.run(fill()) and len(recent) == 2


def test_without_a_ttl_only_concurrent_copies_are_coalesced() -> None:
    publisher = FakePublisher()
    process, route = pipeline(publisher, RecentDeliveries(0, 100))
    outcomes = [asyncio.run(process.process(route, signed(FIXED + n))) for n in range(2)]
    assert [type(outcome) for outcome in outcomes] == [Published, Published]


def test_http_answers_a_duplicate_with_200_and_counts_it(registry: MockRegistry) -> None:
    publisher = FakePublisher()
    app = create_app(config.parse(MINIMAL_YAML, environ={}), publisher=publisher, client=registry, clock=lambda: FIXED)
    with TestClient(app) as client:
        wait_until_registered(client)
        answers = [
            client.post("/webhooks/lm", content=DELIVERED, headers=signature_headers(DELIVERED, SECRET, FIXED)).json()
            for _ in range(2)
        ]
        metrics = client.get("/metrics").text
    assert [answer["status"] for answer in answers] == ["published", "duplicate"]
    assert answers[0]["events"] == answers[1]["events"]
    assert len(publisher.records) == 1
    assert 'bridge_duplicates_total{source="lm"} 1.0' in metrics


@pytest.mark.parametrize("ttl", [0.0, 3600.0])
def test_the_ttl_and_size_are_configured_under_server(ttl: float) -> None:
    settings = config.parse(MINIMAL_YAML + f"server: {{dedupe_seconds: {ttl}, dedupe_max_entries: 5}}\n", environ={})
    assert (settings.server.dedupe_seconds, settings.server.dedupe_max_entries) == (ttl, 5)
