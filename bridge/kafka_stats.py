"""librdkafka's statistics (the producer's `stats_cb` JSON) as a few low-cardinality Prometheus series.

The callback runs on the poll thread every `statistics.interval.ms`: it parses the JSON once (orjson)
into a small snapshot and swaps a reference. Series are built from the newest snapshot at scrape
time, so a broker that left the cluster leaves the output with it, and nothing is done per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
MICROSECONDS = 1e-6
BROKER_UP = "UP"


@dataclass(frozen=True)
class BrokerStats:
    """One broker the producer learned from the cluster's metadata (bootstrap and internal ones are left out)."""

    name: str  # "host:port/node id": bounded by the cluster's size
    up: bool
    rtt_avg_seconds: float | None  # None: no request was answered in the last interval
    rtt_p99_seconds: float | None
    requests_queued: int  # outbuf_cnt: waiting to be sent
    requests_in_flight: int  # waitresp_cnt: sent, awaiting the answer
    tx_errors: int
    tx_retries: int
    request_timeouts: int
    disconnects: int


@dataclass(frozen=True)
class ProducerStats:
    queue_bytes: int  # msg_size
    messages_sent: int  # txmsgs: sent to brokers, retries included
    message_bytes_sent: int
    brokers: tuple[BrokerStats, ...]


def parse(raw: str | bytes) -> ProducerStats:
    """The fields the bridge exposes, from one statistics document (librdkafka's STATISTICS.md)."""
    stats = orjson.loads(raw)
    return ProducerStats(
        queue_bytes=int(stats.get("msg_size", 0)),
        messages_sent=int(stats.get("txmsgs", 0)),
        message_bytes_sent=int(stats.get("txmsg_bytes", 0)),
        brokers=tuple(_broker(broker) for broker in stats.get("brokers", {}).values() if broker.get("nodeid", -1) >= 0),
    )


def _broker(broker: dict[str, Any]) -> BrokerStats:
    rtt = broker.get("rtt") or {}
    answered = rtt.get("cnt", 0) > 0  # the window is the last interval: no answers, no round trip to report
    return BrokerStats(
        name=str(broker.get("name", "")),
        up=broker.get("state") == BROKER_UP,
        rtt_avg_seconds=rtt["avg"] * MICROSECONDS if answered else None,
        rtt_p99_seconds=rtt["p99"] * MICROSECONDS if answered else None,
        requests_queued=int(broker.get("outbuf_cnt", 0)),
        requests_in_flight=int(broker.get("waitresp_cnt", 0)),
        tx_errors=int(broker.get("txerrs", 0)),
        tx_retries=int(broker.get("txretries", 0)),
        request_timeouts=int(broker.get("req_timeouts", 0)),
        disconnects=int(broker.get("disconnects", 0)),
    )


class KafkaStatistics(Collector):
    """The newest ProducerStats as metric families; none before the first statistics arrive."""

    def __init__(self) -> None:
        self._latest: ProducerStats | None = None
        self._complaint: str | None = None

    def update(self, raw: str) -> None:
        """librdkafka's `stats_cb`. A document it cannot read keeps the last snapshot: an exception here would
        come out of the producer's poll(), on the thread that settles every delivery."""
        try:
            self._latest = parse(raw)
        except Exception as error:  # noqa: BLE001 - whatever librdkafka's next version writes
            complaint = f"{type(error).__name__}: {error}"
            if complaint != self._complaint:  # once per kind, not every interval
                log.warning("librdkafka statistics not understood (%s); keeping the last ones", complaint)
                self._complaint = complaint

    def describe(self) -> Iterable[Metric]:
        return list(_families(None))

    def collect(self) -> Iterable[Metric]:
        return list(_families(self._latest))


def _families(stats: ProducerStats | None) -> Iterator[Metric]:
    """Every family, with samples where `stats` has them (None: names only, for the registry's clash check)."""
    queue_bytes = GaugeMetricFamily("bridge_producer_queue_bytes", "Bytes of the records in the producer's queue.")
    sent = CounterMetricFamily("bridge_kafka_messages_sent", "Records sent to brokers (librdkafka txmsgs).")
    sent_bytes = CounterMetricFamily("bridge_kafka_message_bytes_sent", "Record bytes sent (librdkafka txmsg_bytes).")
    if stats is not None:
        queue_bytes.add_metric([], stats.queue_bytes)
        sent.add_metric([], stats.messages_sent)
        sent_bytes.add_metric([], stats.message_bytes_sent)
    yield from (queue_bytes, sent, sent_bytes)
    yield from _broker_families(stats.brokers if stats is not None else ())


def _broker_families(brokers: tuple[BrokerStats, ...]) -> Iterator[Metric]:
    label = ["broker"]
    up = GaugeMetricFamily("bridge_kafka_broker_up", "1 while the connection to the broker is UP.", labels=label)
    rtt_avg = GaugeMetricFamily(
        "bridge_kafka_broker_rtt_avg_seconds", "Mean request round trip over the last interval.", labels=label
    )
    rtt_p99 = GaugeMetricFamily(
        "bridge_kafka_broker_rtt_p99_seconds",
        "p99 request round trip over the last interval.",
        labels=label,
    )
    queued = GaugeMetricFamily("bridge_kafka_broker_requests_queued", "Requests waiting to be sent.", labels=label)
    waiting = GaugeMetricFamily("bridge_kafka_broker_requests_in_flight", "Requests awaiting an answer.", labels=label)
    errors = CounterMetricFamily("bridge_kafka_broker_tx_errors", "Request transmission errors.", labels=label)
    retries = CounterMetricFamily("bridge_kafka_broker_tx_retries", "Requests retried.", labels=label)
    timeouts = CounterMetricFamily("bridge_kafka_broker_request_timeouts", "Requests timed out.", labels=label)
    disconnects = CounterMetricFamily("bridge_kafka_broker_disconnects", "Connections lost.", labels=label)
    for broker in brokers:
        name = [broker.name]
        up.add_metric(name, 1 if broker.up else 0)
        if broker.rtt_avg_seconds is not None and broker.rtt_p99_seconds is not None:
            rtt_avg.add_metric(name, broker.rtt_avg_seconds)
            rtt_p99.add_metric(name, broker.rtt_p99_seconds)
        queued.add_metric(name, broker.requests_queued)
        waiting.add_metric(name, broker.requests_in_flight)
        errors.add_metric(name, broker.tx_errors)
        retries.add_metric(name, broker.tx_retries)
        timeouts.add_metric(name, broker.request_timeouts)
        disconnects.add_metric(name, broker.disconnects)
    yield from (up, rtt_avg, rtt_p99, queued, waiting, errors, retries, timeouts, disconnects)
