"""The pipeline: Delivery in, Outcome out. verify → normalise → encode → publish, with no transport in it.

HTTP (bridge/webhooks.py), dead-letter replay (bridge/dlq.py) and the benchmark all call
`Pipeline.process`; none of them builds records by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.avro import Encoder
from bridge.dedupe import RecentDeliveries
from bridge.errors import BridgeError, PayloadInvalid, RecordTooLarge, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.metrics import Metrics
from bridge.publisher import Publisher
from bridge.records import Record, bounded_reason, dead_letter_record, event_record, record_size
from bridge.routes import Route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """Every event the source publishes was acknowledged by Kafka; `filtered` ones were not published."""

    events: list[CanonicalEvent]
    filtered: list[CanonicalEvent] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLettered:
    """The delivery was authentic but unusable; its raw body is on the dead-letter topic, unless not `kept`."""

    reason: str
    kept: bool = True


@dataclass(frozen=True)
class Duplicate:
    """The same events from the same source were acknowledged recently, or just now: nothing published again."""

    events: list[CanonicalEvent]


@dataclass(frozen=True)
class HandshakeReply:
    """A provider control message (SNS subscription confirmation), answered with `body`."""

    body: dict[str, Any]


Outcome = Published | DeadLettered | Duplicate | HandshakeReply
ExtraHeaders = Sequence[tuple[str, bytes]]


class Pipeline:
    """One delivery at a time: authenticate, normalise, encode, publish; what cannot be used is kept whole.

    Nothing authentic ends in an unexpected error: a provider or encoder bug dead-letters the
    delivery (logged once at ERROR, counted); only Unavailable (retry later) and RecordTooLarge
    (a dead letter Kafka cannot take either) escape after authentication. `recent` coalesces
    duplicates of the same (source, event ids); without it only concurrent copies are coalesced.
    """

    def __init__(
        self,
        encoder: Encoder,
        publisher: Publisher,
        metrics: Metrics,
        prefix: str,
        max_record_bytes: int,
        recent: RecentDeliveries | None = None,
    ) -> None:
        self._encoder = encoder
        self._publisher = publisher
        self._metrics = metrics
        self._prefix = prefix
        self._max_record_bytes = max_record_bytes
        self._recent = recent if recent is not None else RecentDeliveries(ttl_seconds=0, max_entries=1)

    async def process(
        self,
        route: Route,
        delivery: Delivery,
        *,
        authenticate: bool = True,
        keep_unusable: bool = True,
        headers: ExtraHeaders = (),
    ) -> Outcome:
        """Raise SignatureInvalid (nothing published) or Unavailable (retry); otherwise say what happened.

        Dead-letter replay passes `keep_unusable=False` (what is still unusable is not dead-lettered
        again) and `headers` naming the dead letter, added to every record it publishes.
        `authenticate=False` skips verification, for deliveries the bridge authenticated itself.
        """
        if authenticate:
            await self.authenticate(route, delivery)
            try:
                reply = await route.handshake(delivery) if route.handshake is not None else None
            except BridgeError:
                raise
            except Exception as error:  # noqa: BLE001 - a provider bug: the delivery is authentic, keep it
                return await self._failed(route, delivery, error, keep_unusable)
            if reply is not None:
                self._metrics.handshakes.labels(route.source.name, str(reply.get("status", ""))).inc()
                return HandshakeReply(reply)
        try:
            events = route.provider.normalise(delivery)
        except PayloadInvalid as error:
            return await self._dead_letter(route, delivery, str(error), keep_unusable)
        except BridgeError:
            raise
        except Exception as error:  # noqa: BLE001 - a provider bug: the delivery is authentic, keep it
            return await self._failed(route, delivery, error, keep_unusable)
        if not events:
            return Published([])
        key = (route.source.name, tuple(sorted({event.event_id for event in events})))
        if not await self._recent.claim(key):
            self._metrics.duplicates.labels(route.source.name).inc()
            return Duplicate(events)
        outcome: Outcome | None = None
        try:
            outcome = await self._publish_events(route, delivery, events, keep_unusable, headers)
            return outcome
        finally:
            # Only what Kafka acknowledged is remembered; a failure lets a waiting copy try itself.
            self._recent.settle(key, acknowledged=isinstance(outcome, Published))

    async def authenticate(self, route: Route, delivery: Delivery) -> None:
        """Raise SignatureInvalid unless the delivery is authentic; a verifier that crashes has not verified it."""
        now = delivery.received_at.timestamp()
        try:
            if route.prepare is not None:
                await route.prepare(delivery.headers, delivery.body, now)
            route.verify(delivery.headers, delivery.body, now)
        except BridgeError:
            raise
        except Exception as error:  # noqa: BLE001 - a verifier bug must not become a 500 anyone can trigger
            self._log_failure(route, "verifying", error)
            raise SignatureInvalid("the delivery could not be verified", "verifier_failed") from None

    async def _publish_events(
        self, route: Route, delivery: Delivery, events: list[CanonicalEvent], keep: bool, headers: ExtraHeaders
    ) -> Outcome:
        wanted = [event for event in events if route.source.publishes(event.event_type)]
        try:
            records = [self._record(event, headers) for event in wanted]
        except PayloadInvalid as error:
            return await self._dead_letter(route, delivery, str(error), keep)
        except RecordTooLarge as error:
            return await self._too_large(route, delivery, error, keep)
        except BridgeError:
            raise
        except Exception as error:  # noqa: BLE001 - an encoder bug: the delivery is authentic, keep it
            return await self._failed(route, delivery, error, keep)
        if records:
            try:
                await self._publish(records)
            except RecordTooLarge as error:  # the broker's limit is below ours: keep the delivery whole
                return await self._too_large(route, delivery, error, keep)
        filtered = [event for event in events if not route.source.publishes(event.event_type)]
        self._count(wanted, filtered)
        return Published(wanted, filtered)

    def _record(self, event: CanonicalEvent, headers: ExtraHeaders) -> Record:
        record = event_record(self._prefix, event, self._encoder.encode(event))
        return self._fitting(Record(record.topic, record.key, record.value, [*record.headers, *headers]))

    def _fitting(self, record: Record) -> Record:
        size = record_size(record)
        if size > self._max_record_bytes:
            raise RecordTooLarge(
                f"a {record.topic} record of {size} bytes exceeds the {self._max_record_bytes}-byte record limit"
            )
        return record

    async def _failed(self, route: Route, delivery: Delivery, error: Exception, keep: bool) -> DeadLettered:
        self._log_failure(route, "processing", error)
        return await self._dead_letter(route, delivery, f"processing failed: {type(error).__name__}: {error}", keep)

    def _log_failure(self, route: Route, stage: str, error: Exception) -> None:
        self._metrics.failures.labels(route.source.name, route.source.provider).inc()
        log.error(
            "%s failed unexpectedly (a bug): %s",
            stage,
            type(error).__name__,
            exc_info=error,
            extra={"source": route.source.name, "provider": route.source.provider},
        )

    async def _too_large(self, route: Route, delivery: Delivery, error: RecordTooLarge, keep: bool) -> DeadLettered:
        self._metrics.unpublishable.labels(route.source.name).inc()
        return await self._dead_letter(route, delivery, str(error), keep)

    async def _dead_letter(self, route: Route, delivery: Delivery, reason: str, keep: bool) -> DeadLettered:
        if not keep:
            return DeadLettered(bounded_reason(reason), kept=False)
        record = dead_letter_record(self._prefix, delivery, reason, route.private_headers)
        try:
            await self._publish([self._fitting(record)])
        except RecordTooLarge:
            self._metrics.unpublishable.labels(route.source.name).inc()
            raise
        self._metrics.dead_letters.labels(route.source.name).inc()
        return DeadLettered(bounded_reason(reason))

    async def _publish(self, records: list[Record]) -> None:
        started = time.perf_counter()
        await self._publisher.publish(records)
        self._metrics.publish_seconds.observe(time.perf_counter() - started)

    def _count(self, published: list[CanonicalEvent], filtered: list[CanonicalEvent]) -> None:
        for event in filtered:
            self._metrics.filtered.labels(event.source, event.event_type).inc()
        for event in published:
            self._metrics.event_children(event.source, event.event_type).inc()
            if event.event_type == UNMAPPED:
                self._metrics.unmapped.labels(event.source, event.provider_event).inc()
