"""The pipeline: Delivery in, Outcome out. verify → normalise → encode → publish, with no transport in it.

HTTP (bridge/webhooks.py), dead-letter replay and the benchmark all call `Pipeline.process`; none
of them builds records by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bridge.avro import Encoder
from bridge.errors import PayloadInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.metrics import Metrics
from bridge.publisher import Publisher
from bridge.records import Record, dead_letter_record, event_record
from bridge.routes import Route


@dataclass(frozen=True)
class Published:
    """Every event the source publishes was acknowledged by Kafka; `filtered` ones were not published."""

    events: list[CanonicalEvent]
    filtered: list[CanonicalEvent] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLettered:
    """The delivery was authentic but unusable; its raw body is on the dead-letter topic."""

    reason: str


@dataclass(frozen=True)
class HandshakeReply:
    """A provider control message (SNS subscription confirmation), answered with `body`."""

    body: dict[str, Any]


Outcome = Published | DeadLettered | HandshakeReply


class Pipeline:
    def __init__(self, encoder: Encoder, publisher: Publisher, metrics: Metrics, prefix: str) -> None:
        self._encoder = encoder
        self._publisher = publisher
        self._metrics = metrics
        self._prefix = prefix

    async def process(self, route: Route, delivery: Delivery, *, authenticate: bool = True) -> Outcome:
        """Raise SignatureInvalid (nothing published) or Unavailable (retry); otherwise say what happened.

        `authenticate=False` is for deliveries that were authenticated when they arrived and were
        kept by the bridge itself (dead-letter replay): their signatures may have aged out since.
        """
        if authenticate:
            await self.authenticate(route, delivery)
            if route.handshake is not None and (reply := await route.handshake(delivery)) is not None:
                self._metrics.handshakes.labels(route.source.name, str(reply.get("status", ""))).inc()
                return HandshakeReply(reply)
        try:
            events = route.provider.normalise(delivery)
            wanted = [event for event in events if route.source.publishes(event.event_type)]
            records = [event_record(self._prefix, event, self._encoder.encode(event)) for event in wanted]
        except PayloadInvalid as error:
            return await self._dead_letter(route, delivery, str(error))
        if records:
            await self._publish(records)
        filtered = [event for event in events if not route.source.publishes(event.event_type)]
        self._count(wanted, filtered)
        return Published(wanted, filtered)

    async def authenticate(self, route: Route, delivery: Delivery) -> None:
        now = delivery.received_at.timestamp()
        if route.prepare is not None:
            await route.prepare(delivery.headers, delivery.body, now)
        route.verify(delivery.headers, delivery.body, now)

    async def _dead_letter(self, route: Route, delivery: Delivery, reason: str) -> DeadLettered:
        await self._publish([dead_letter_record(self._prefix, delivery, reason, route.private_headers)])
        self._metrics.dead_letters.labels(route.source.name).inc()
        return DeadLettered(reason)

    async def _publish(self, records: list[Record]) -> None:
        started = time.perf_counter()
        await self._publisher.publish(records)
        self._metrics.publish_seconds.observe(time.perf_counter() - started)

    def _count(self, published: list[CanonicalEvent], filtered: list[CanonicalEvent]) -> None:
        for event in filtered:
            self._metrics.filtered.labels(event.source, event.event_type).inc()
        for event in published:
            self._metrics.events.labels(event.source, event.event_type).inc()
            if event.event_type == UNMAPPED:
                self._metrics.unmapped.labels(event.source, event.provider_event).inc()
