"""Dead letters you can act on: list, show and replay `<prefix>.dead-letter` through today's pipeline.

Replay re-verifies every dead letter with its source's current configuration, ignoring only the
timestamp window (a dead letter is old by nature), and publishes what now succeeds on its proper
topic with a `replayed_from` header. Progress is a consumer group per selection, so replaying the
same selection twice publishes nothing the second time.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Message, TopicPartition

from bridge.app import kafka_publisher, max_record_bytes, registry_client
from bridge.avro import Encoder, load_schemas
from bridge.config import Settings
from bridge.dedupe import RecentDeliveries
from bridge.errors import SignatureInvalid
from bridge.events import DEAD_LETTER, topic_for
from bridge.metrics import Metrics
from bridge.pipeline import DeadLettered, Duplicate, Pipeline, Published
from bridge.providers import build as build_providers
from bridge.providers.base import Provider
from bridge.publisher import Publisher
from bridge.reader import consumer, records
from bridge.records import DeadLetter, read_dead_letter
from bridge.routes import Route

REPLAYED_FROM = "replayed_from"  # header on replayed records: <topic>:<partition>:<offset> of the dead letter
# "Ignoring the timestamp window": wide enough for any dead letter, still a number every verifier compares.
REPLAY_TOLERANCE_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True)
class Selection:
    """Which dead letters: by source, a piece of the reason, and received-at bounds (inclusive)."""

    source: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        received = letter.delivery.received_at
        return (
            (self.source is None or letter.delivery.source == self.source)
            and (self.reason is None or self.reason.lower() in letter.reason.lower())
            and (self.since is None or received >= self.since)
            and (self.until is None or received <= self.until)
        )

    def group(self, prefix: str) -> str:
        """The consumer group that remembers how far this selection was replayed."""
        fields = (
            self.source,
            self.reason,
            self.since and self.since.isoformat(),
            self.until and self.until.isoformat(),
        )
        if fields == (None, None, None, None):
            return f"{prefix}.dlq-replay.all"
        digest = hashlib.sha256(repr(fields).encode()).hexdigest()[:12]
        return f"{prefix}.dlq-replay.{digest}"


@dataclass(frozen=True)
class Entry:
    """One record of the dead-letter topic; `letter` is None for a record that is not a dead letter."""

    partition: int
    offset: int
    letter: DeadLetter | None
    problem: str | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def entry(record: Message) -> Entry:
    partition, offset = record.partition() or 0, record.offset() or 0
    headers = record.headers() or []
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    try:
        return Entry(partition, offset, read_dead_letter(record.value(), pairs))
    except ValueError as error:
        return Entry(partition, offset, None, str(error))


def line(item: Entry) -> str:
    """`list`'s one line: position, received-at, source, provider, reason."""
    if item.letter is None:
        return f"{item.position}  (not a dead letter: {item.problem})"
    delivery = item.letter.delivery
    received = delivery.received_at.isoformat(timespec="milliseconds")
    return f"{item.position}  {received}  {delivery.source}  {delivery.provider}  {item.letter.reason}"


def whole(item: Entry) -> dict[str, Any]:
    """`show`'s view: everything the dead letter holds, the body as text (base64 if it is not UTF-8)."""
    if item.letter is None:
        return {"partition": item.partition, "offset": item.offset, "problem": item.problem}
    delivery = item.letter.delivery
    try:
        body: dict[str, str] = {"body": delivery.body.decode("utf-8")}
    except UnicodeDecodeError:
        body = {"body_base64": base64.b64encode(delivery.body).decode()}
    return {
        "partition": item.partition,
        "offset": item.offset,
        "reason": item.letter.reason,
        "source": delivery.source,
        "provider": delivery.provider,
        "received_at": delivery.received_at.isoformat(timespec="milliseconds"),
        "headers": [f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in delivery.headers.raw],
        **body,
    }


def dead_letter_topic(settings: Settings) -> str:
    return topic_for(settings.topics.prefix, DEAD_LETTER)


@dataclass
class Report:
    """What a replay did, by outcome: published, duplicate, still-unusable, refused, skipped."""

    outcomes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, outcome: str, text: str) -> None:
        self.outcomes.setdefault(outcome, []).append(text)

    def count(self, outcome: str) -> int:
        return len(self.outcomes.get(outcome, []))


class Replayer:
    """Runs dead letters through today's pipeline, with a fresh set of providers (no replay caches)."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, providers: Mapping[str, Provider[Any]] | None = None
    ) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._providers = providers if providers is not None else build_providers()

    async def replay(self, item: Entry, topic: str) -> tuple[str, str]:
        """(outcome, detail) for one entry; Unavailable propagates (stop, retry the replay later)."""
        if item.letter is None:
            return "skipped", f"{item.position}: {item.problem}"
        delivery = item.letter.delivery
        source = self._settings.source(delivery.source)
        if source is None or source.provider != delivery.provider:
            return "skipped", f"{item.position}: source {delivery.source!r} ({delivery.provider}) is not configured"
        route = Route.build(source.model_copy(update={"tolerance_seconds": REPLAY_TOLERANCE_SECONDS}),
                            self._providers[source.provider])  # fmt: skip
        origin = f"{topic}:{item.position}".encode()
        try:
            outcome = await self._pipeline.process(
                route, delivery, keep_unusable=False, headers=[(REPLAYED_FROM, origin)]
            )
        except SignatureInvalid as error:
            return "refused", f"{item.position}: does not verify, not published ({error})"
        if isinstance(outcome, Published):
            ids = ", ".join(event.event_id for event in outcome.events) or "nothing to publish"
            return "published", f"{item.position}: {ids}"
        if isinstance(outcome, Duplicate):
            return "duplicate", f"{item.position}: already published"
        if isinstance(outcome, DeadLettered):
            return "still-unusable", f"{item.position}: {outcome.reason}"
        return "skipped", f"{item.position}: a control message, nothing to publish"


async def replay(
    settings: Settings,
    selection: Selection,
    group: str | None = None,
    providers: Mapping[str, Provider[Any]] | None = None,
    publisher: Publisher | None = None,
) -> Report:
    """Replay the selected dead letters not replayed before by `group`; commit each one once handled."""
    topic = dead_letter_topic(settings)
    group = group or selection.group(settings.topics.prefix)
    report = Report()
    with registry_client(settings) as registry:
        encoder = Encoder(registry, load_schemas(), settings.topics.prefix)
        encoder.register(settings.schema_registry.auto_register)
        kafka = publisher if publisher is not None else kafka_publisher(settings)
        pipeline = Pipeline(encoder, kafka, Metrics(), settings.topics.prefix, max_record_bytes(settings),
                            RecentDeliveries(0, 1))  # fmt: skip
        replayer = Replayer(settings, pipeline, providers)
        reader = consumer(settings.kafka, group)
        try:
            async with kafka:
                for record in records(reader, topic, committed=True):
                    item = entry(record)
                    if item.letter is None or selection.matches(item.letter):
                        outcome, detail = await replayer.replay(item, topic)
                        report.add(outcome, detail)
                    done = TopicPartition(topic, item.partition, item.offset + 1)
                    reader.commit(offsets=[done], asynchronous=False)
        finally:
            reader.close()
    return report
