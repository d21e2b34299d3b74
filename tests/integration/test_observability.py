"""The observability kit on the real stack: /metrics of a real `bridge serve` moves with the deliveries it
answers, and librdkafka's statistics from a real producer become gauges that move with what it sends."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import Metrics
from bridge.providers.lettermint import LettermintSender, signature_headers
from bridge.publisher import KafkaPublisher
from bridge.records import Record
from tests.support.stack import Bridge, Stack, post

pytestmark = pytest.mark.integration
SENDER = LettermintSender()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_counters_move_on_a_real_bridge(bridge: Bridge) -> None:
    before = httpx.get(f"{bridge.url}/metrics").text
    body = SENDER.example("message.delivered", datetime.now(UTC))
    assert post(bridge, body, signature_headers(body, bridge.secrets[0], time.time())).status_code == 200
    assert post(bridge, body, signature_headers(body, "whsec_forged", time.time())).status_code == 401
    assert post(bridge, body, {"Content-Type": "application/json"}).status_code == 401
    after = httpx.get(f"{bridge.url}/metrics").text
    source = bridge.source

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("bridge_requests_total", source=source, status="200", status_class="2xx") == 1
    assert moved("bridge_request_seconds_count", source=source, status_class="4xx") == 2
    assert moved("bridge_verification_failures_total", source=source, reason="no_matching_signature") == 1
    assert moved("bridge_verification_failures_total", source=source, reason="missing_header") == 1
    assert moved("bridge_events_published_total", source=source, event_type="message.delivered") == 1
    assert moved("bridge_publish_seconds_count") == 1
    assert value(after, "bridge_requests_in_flight") == 0
    assert value(after, "bridge_producer_fatal") == 0
    httpx.get(f"{bridge.url}/readyz")
    assert value(httpx.get(f"{bridge.url}/metrics").text, "bridge_ready") == 1


def test_librdkafka_statistics_become_gauges_that_move_with_a_real_producer(stack: Stack) -> None:
    metrics = Metrics()
    topic = f"it-stats-{uuid.uuid4().hex[:8]}"
    # A short interval instead of the default 15 s, through kafka.producer as an operator would set it.
    publisher = KafkaPublisher(
        stack.bootstrap_servers, {"statistics.interval.ms": 200}, timeout=10, statistics=metrics.kafka.update
    )
    metrics.producer_queue.set_function(lambda: publisher.queued)  # as create_app wires it
    scrapes: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []
    rtt_seen: list[float] = []

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return samples(generate_latest(metrics.registry).decode())

    async def publish_and_scrape() -> None:
        async with publisher:
            for _ in range(3):
                await publisher.publish([Record(topic, b"k", b"v" * 100)])
            await asyncio.sleep(0.7)  # a few statistics intervals after the last ack
            scrapes.append(scrape())
            # RTT covers the last interval only: it shows while requests are being answered.
            deadline = time.monotonic() + 10
            sent = 0
            while not rtt_seen or sent < 5:
                assert time.monotonic() < deadline, "no broker RTT while publishing"
                await publisher.publish([Record(topic, b"k", b"v" * 100)])
                sent += 1
                rtt_seen.extend(v for (name, _), v in scrape().items() if name == "bridge_kafka_broker_rtt_p99_seconds")
            await asyncio.sleep(0.7)
            scrapes.append(scrape())

    asyncio.run(publish_and_scrape())
    first, second = scrapes
    sent = ("bridge_kafka_messages_sent_total", ())
    assert first[sent] >= 3 and second[sent] >= first[sent] + 5
    assert 0 < max(rtt_seen) < 5
    assert second[("bridge_kafka_message_bytes_sent_total", ())] >= 8 * 100
    assert second[("bridge_producer_queue_messages", ())] == 0  # every record acknowledged
    brokers = [labels for name, labels in second if name == "bridge_kafka_broker_up"]
    assert brokers and all(second[("bridge_kafka_broker_up", labels)] == 1 for labels in brokers)
    assert all(dict(labels)["broker"].rsplit("/", 1)[1].isdigit() for labels in brokers)  # learned brokers only


def test_a_statistics_callback_that_raises_does_not_stop_the_deliveries(stack: Stack) -> None:
    """The callback runs inside poll(), on the thread that settles every delivery: its failure must not end it."""
    calls = []

    def broken(raw: str) -> None:
        calls.append(raw)
        raise RuntimeError("a bug in the statistics callback")

    publisher = KafkaPublisher(stack.bootstrap_servers, {"statistics.interval.ms": 100}, timeout=10, statistics=broken)
    topic = f"it-stats-broken-{uuid.uuid4().hex[:8]}"

    async def publish_across_intervals() -> None:
        async with publisher:
            for _ in range(5):
                await publisher.publish([Record(topic, b"k", b"v")])
                await asyncio.sleep(0.25)

    asyncio.run(publish_across_intervals())
    assert len(calls) >= 3  # it raised several times, and every publish was still acknowledged
