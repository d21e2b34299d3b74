"""Prometheus metrics, on a registry of the app's own (so two apps in one process don't clash)."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

M = TypeVar("M", Counter, Gauge, Histogram)


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
        # The per-delivery lookups (bounded labels only: not unmapped's provider_event).
        self.event_children = Children(self.events)
        self.request_children = Children(self.requests)
        self.schemas_registered = Gauge(
            "bridge_schemas_registered", "1 once every event schema is registered, else 0.", registry=self.registry
        )
