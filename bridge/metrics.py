"""Prometheus metrics, on a registry of the app's own (so two apps in one process don't clash)."""

from __future__ import annotations

import platform
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bridge import version
from bridge.errors import Reason
from bridge.kafka_stats import KafkaStatistics

M = TypeVar("M", Counter, Gauge, Histogram)
# Request latency: from the first byte the app sees to the last one it sends, the ack wait included.
REQUEST_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Children(Generic[M]):
    """A labelled metric's children, each looked up once: prometheus_client's `labels()` checks the values
    and takes a lock on every call, which the request path pays per delivery otherwise. For labels whose
    values are bounded (configured sources, event types, status codes): the cache keeps every child."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Answers:
    """Per answered webhook request, the request counter's and the latency histogram's children for its
    (source, status), looked up once: no label strings are built on the request path. Statuses are the
    bridge's own few and sources are configured names (or `(unknown)`), so the cache stays small."""

    def __init__(self, requests: Counter, seconds: Histogram) -> None:
        self._requests = requests
        self._seconds = seconds
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def __call__(self, source: str, status: int) -> tuple[Counter, Histogram]:
        children = self._children.get((source, status))
        if children is None:
            status_class = f"{status // 100}xx"
            children = self._children[(source, status)] = (
                self._requests.labels(source, str(status), status_class),
                self._seconds.labels(source, status_class),
            )
        return children


class InFlight:
    """Webhook requests in progress: a plain int the request path bumps (no lock), read by the gauge at scrape."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> float:
        return self.count


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bridge_requests",
            "Webhook deliveries answered, by source, HTTP status and its class (2xx..5xx; 499: client went away).",
            ["source", "status", "status_class"],
            registry=self.registry,
        )
        self.events = Counter(
            "bridge_events_published",
            "Events acknowledged by Kafka, by source and event type.",
            ["source", "event_type"],
            registry=self.registry,
        )
        self.unmapped = Counter(
            "bridge_unmapped_events",
            "Events with no canonical type, published to <prefix>.unmapped.",
            ["source", "provider_event"],
            registry=self.registry,
        )
        self.filtered = Counter(
            "bridge_filtered_events",
            "Verified events outside their source's event_types allow-list: acknowledged, not published.",
            ["source", "event_type"],
            registry=self.registry,
        )
        self.handshakes = Counter(
            "bridge_handshakes",
            "Provider control messages (SNS subscription confirmations), by source and outcome.",
            ["source", "status"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "bridge_dead_letters",
            "Verified deliveries that could not be used, sent to <prefix>.dead-letter.",
            ["source"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "bridge_rejected",
            "Deliveries refused before publishing, by source and error code.",
            ["source", "code"],
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "bridge_connections_refused",
            "Connections or requests cut off by the server's limits (timeouts, header caps, capacity), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.aborted = Counter(
            "bridge_aborted_requests",
            "Requests whose client went away (or was cut off) before the body was read, by source.",
            ["source"],
            registry=self.registry,
        )
        self.failures = Counter(
            "bridge_processing_failures",
            "Authenticated deliveries whose processing failed unexpectedly (a bug), dead-lettered, by source.",
            ["source", "provider"],
            registry=self.registry,
        )
        self.unpublishable = Counter(
            "bridge_unpublishable_records",
            "Records larger than Kafka will take, by source; their delivery was dead-lettered or refused (413).",
            ["source"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "bridge_rate_limited",
            "Requests refused with 429 by a source's rate limit.",
            ["source"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "bridge_duplicates",
            "Deliveries answered as duplicates of one this process acknowledged or had in flight, by source.",
            ["source"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "bridge_publish_seconds",
            "Time from produce to broker acknowledgement for one delivery.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        # The per-delivery lookups (bounded labels only: not unmapped's provider_event); requests: see Answers.
        self.event_children = Children(self.events)
        self.schemas_registered = Gauge(
            "bridge_schemas_registered", "1 once every event schema is registered, else 0.", registry=self.registry
        )
        self.verification_failures = Counter(
            "bridge_verification_failures",
            "Deliveries that failed verification (answered 401), by source and reason (README: the reasons).",
            ["source", "reason"],
            registry=self.registry,
        )
        self.verification_children: Children[Counter] = Children(self.verification_failures)
        self.request_seconds = Histogram(
            "bridge_request_seconds",
            "Webhook request latency, from the request to the end of the answer, by source and status class.",
            ["source", "status_class"],
            registry=self.registry,
            buckets=REQUEST_BUCKETS,
        )
        self.answers = Answers(self.requests, self.request_seconds)
        self.in_flight = InFlight()
        Gauge("bridge_requests_in_flight", "Webhook requests being handled now.", registry=self.registry).set_function(
            self.in_flight
        )
        self.ready = Gauge(
            "bridge_ready", "1 while /readyz answered 200 the last time it was asked, else 0.", registry=self.registry
        )
        self.producer_queue = Gauge(
            "bridge_producer_queue_messages",
            "Records in the Kafka producer's queue, not yet acknowledged or failed (read at scrape time).",
            registry=self.registry,
        )
        self.producer_fatal = Gauge(
            "bridge_producer_fatal",
            "1 once the Kafka producer hit a fatal error (/healthz answers 503 until a restart), else 0.",
            registry=self.registry,
        )
        Gauge(
            "bridge_build_info",
            "Always 1: the bridge's version and Python's.",
            ["version", "python"],
            registry=self.registry,
        ).labels(version(), platform.python_version()).set(1)
        # librdkafka's statistics: fed by the producer's stats_cb (bridge/publisher.py), read at scrape time.
        self.kafka = KafkaStatistics()
        self.registry.register(self.kafka)

    def verification_failed(self, source: str, reason: Reason) -> None:
        self.verification_children(source, reason).inc()
