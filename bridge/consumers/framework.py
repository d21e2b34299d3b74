"""The consumer framework: subscribe by canonical event type, decode via the registry, store once, then commit.

Every reference consumer (suppression, analytics, billing) is a `Consumer`: the event types it
reads, its tables, and `apply`, which changes them for one event inside the store's transaction.
`run` does the rest, the same way for each:

- one consumer group per consumer (`<prefix>.consumer.<name>`, or `consumers.<name>.group`);
- a batch of records is decoded with confluent-kafka's stock `AvroDeserializer`, then applied in
  ONE store transaction that also records each `event_id` as processed, so a redelivered or
  replayed event changes nothing;
- offsets are committed only after that transaction committed (at least once);
- a record that cannot be decoded (not the wire format, a schema id the registry does not know,
  any other registry 4xx) is stored in `consumer_dead_letters`, in the same transaction, and the
  group goes on; an unreachable registry (or a 5xx) is retried, never a dead letter.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

# The HTTP client the registry client itself uses (httpx2 where installed, else httpx): its transport errors are
# what an unreachable registry raises.
from confluent_kafka.schema_registry.common._httpx_compat import httpx as registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from bridge import reader
from bridge.consumers.store import Store, Transaction
from bridge.events import topic_for
from bridge.records import EVENT_ID
from bridge.settings import KafkaSettings

log = logging.getLogger("bridge.consumers")

FRAMEWORK = "consumer-framework"
# The framework's own tables, shared by every consumer in a store (keyed by consumer name).
FRAMEWORK_MIGRATIONS = (
    """CREATE TABLE processed_events (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )""",
    """CREATE TABLE consumer_dead_letters (
        consumer TEXT NOT NULL,
        topic TEXT NOT NULL,
        kafka_partition BIGINT NOT NULL,
        kafka_offset BIGINT NOT NULL,
        reason TEXT NOT NULL,
        record_key TEXT,
        value_base64 TEXT,
        headers_json TEXT NOT NULL,
        PRIMARY KEY (consumer, topic, kafka_partition, kafka_offset)
    )""",
)
# Back-off while the registry is unreachable: from the first to the longest wait.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
METADATA_TIMEOUT_SECONDS = 10.0
# How often an idle `--until-caught-up` run asks the broker for the group's committed offsets.
CAUGHT_UP_CHECK_SECONDS = 0.5
Rows = list[dict[str, object]]


@dataclass(frozen=True)
class Event:
    """One decoded event: the common fields, and every field of its schema in `fields`."""

    event_id: str
    event_type: str
    provider: str
    source: str
    occurred_at: datetime
    message_id: str | None
    recipient: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """What `bridge consumer report` asks for."""

    address: str | None = None


class Consumer(Protocol):
    """A reference consumer: its name, what it reads, its tables, and what one event does to them."""

    @property
    def name(self) -> str:
        """The CLI's name, the group's suffix, the key of its rows in the framework's tables."""

    @property
    def event_types(self) -> tuple[str, ...]:
        """The canonical types it reads: one topic each."""

    @property
    def migrations(self) -> tuple[str, ...]:
        """DDL, one statement per schema version; applied in order on start, never edited once released."""

    def apply(self, work: Transaction, event: Event) -> None:
        """Change the store for one event seen for the first time (inside the batch's transaction)."""

    def report(self, work: Transaction, query: Query) -> dict[str, Rows]:
        """The report: sections of rows, each row a mapping of column to value."""


@dataclass(frozen=True)
class RunOptions:
    group: str
    prefix: str
    batch_size: int = 500
    poll_seconds: float = 0.5
    from_beginning: bool = False
    until_caught_up: bool = False


@dataclass
class RunSummary:
    processed: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0


class Unavailable(Exception):
    """The registry did not answer (or answered 5xx): the record is retried, never dead-lettered."""


class Stopped(Exception):
    """Asked to stop while waiting for the registry: the batch is dropped uncommitted, so it comes again."""


@dataclass(frozen=True)
class Undecodable:
    """A record no retry will decode, and why: it goes to `consumer_dead_letters`."""

    record: Message
    reason: str


def normalise_address(address: str) -> str:
    """Addresses compare case-insensitively: trimmed and lower-cased (README, "Downstream consumers")."""
    return address.strip().lower()


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, one fixed width: the text the stores keep, so it sorts as time does."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def prepare(store: Store, consumer: Consumer) -> None:
    """Create or migrate the framework's tables and the consumer's (each has its own schema_version row)."""
    store.migrate(FRAMEWORK, FRAMEWORK_MIGRATIONS)
    store.migrate(consumer.name, consumer.migrations)


def topics(consumer: Consumer, prefix: str) -> list[str]:
    return [topic_for(prefix, event_type) for event_type in consumer.event_types]


def event_of(value: object, record: Message) -> Event:
    """The decoded value as an Event; ValueError where it is not one of ours."""
    if not isinstance(value, dict):
        raise ValueError("the value is not an Avro record")
    headers = dict(record.headers() or [])
    header_id = headers.get(EVENT_ID)
    event_id = header_id.decode() if isinstance(header_id, bytes) else value.get("event_id")
    occurred_at = value.get("occurred_at")
    if not isinstance(event_id, str) or not isinstance(occurred_at, datetime):
        raise ValueError("no event_id or occurred_at")
    return Event(
        event_id=event_id,
        event_type=str(value.get("event_type")),
        provider=str(value.get("provider")),
        source=str(value.get("source")),
        occurred_at=occurred_at,
        message_id=value.get("message_id"),
        recipient=value.get("recipient"),
        fields=value,
    )


class Decoder:
    """confluent-kafka's stock AvroDeserializer (it caches schemas by id), and what its failures mean."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._deserializer = AvroDeserializer(registry)

    def decode(self, record: Message) -> Event | Undecodable:
        """The event, or why the record can never be decoded; Unavailable if the registry cannot answer now."""
        context = SerializationContext(record.topic() or "", MessageField.VALUE)
        try:
            return event_of(self._deserializer(record.value(), context), record)
        except SchemaRegistryError as error:
            if error.http_status_code >= 500 or error.http_status_code < 400:
                raise Unavailable(str(error)) from error
            return Undecodable(record, f"registry: {error}")
        except (registry_http.HTTPError, OSError) as error:  # connection refused, timeouts, DNS
            raise Unavailable(str(error) or type(error).__name__) from error
        except (SerializationError, ValueError, TypeError, KeyError, EOFError, IndexError) as error:
            return Undecodable(record, f"{type(error).__name__}: {error}")


def apply_once(work: Transaction, consumer: Consumer, event: Event) -> bool:
    """Apply `event` unless its id is already recorded as processed (then nothing changes); whether it applied.

    The id is recorded in the same transaction as the change, so the two commit or fail together.
    """
    first = work.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (consumer.name, event.event_id),
    )
    if first:
        consumer.apply(work, event)
    return bool(first)


class Runner:
    """One consumer's run: its Kafka consumer, deserializer and store, until stopped or caught up."""

    def __init__(
        self,
        consumer: Consumer,
        store: Store,
        kafka: KafkaSettings,
        registry: SchemaRegistryClient,
        options: RunOptions,
        stop: threading.Event,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.options = options
        self.stop = stop
        self.summary = RunSummary()
        self._kafka = reader.consumer(kafka, options.group)
        self._decoder = Decoder(registry)
        self._topics = topics(consumer, options.prefix)

    def run(self) -> RunSummary:
        """Process until `stop` is set (SIGTERM) or, with `until_caught_up`, up to the end offsets seen at start."""
        try:
            ends = self._end_offsets()
            if self.options.from_beginning:
                self._reset_to_earliest()
            self._kafka.subscribe(self._topics)
            last_check = 0.0
            while not self.stop.is_set():
                records = self._kafka.consume(self.options.batch_size, self.options.poll_seconds)
                self._handle(records)
                if self.options.until_caught_up and (
                    records or time.monotonic() - last_check > CAUGHT_UP_CHECK_SECONDS
                ):
                    last_check = time.monotonic()
                    if self._caught_up(ends):
                        break
        except Stopped:
            pass
        finally:
            self._kafka.close()
        return self.summary

    def _handle(self, records: Sequence[Message]) -> None:
        usable = [record for record in records if not self._is_error(record)]
        if not usable:
            return
        items = [self._decode(record) for record in usable]
        with self.store.transaction() as work:
            for item in items:
                if isinstance(item, Undecodable):
                    self._dead_letter(work, item)
                elif apply_once(work, self.consumer, item):
                    self.summary.processed += 1
                else:
                    self.summary.duplicates += 1
        # Only now, with the store committed: a crash before this line redelivers, and the event ids dedupe.
        self._commit(usable)
        self.summary.batches += 1

    def _is_error(self, record: Message) -> bool:
        error = record.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer %s: %s", self.consumer.name, error.str())
        return True

    def _decode(self, record: Message) -> Event | Undecodable:
        wait = RETRY_FIRST_SECONDS
        while True:
            try:
                return self._decoder.decode(record)
            except Unavailable as error:
                log.warning(
                    "consumer %s: registry unavailable (%s); retrying in %.1f s", self.consumer.name, error, wait
                )
                if self.stop.wait(wait):
                    raise Stopped from None
                wait = min(wait * 2, RETRY_MAX_SECONDS)

    def _dead_letter(self, work: Transaction, item: Undecodable) -> None:
        record = item.record
        key, value = record.key(), record.value()
        headers = [[name, _text(raw)] for name, raw in list(record.headers() or [])]
        added = work.execute(
            "INSERT INTO consumer_dead_letters (consumer, topic, kafka_partition, kafka_offset, reason, record_key, "
            "value_base64, headers_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                self.consumer.name,
                record.topic(),
                record.partition(),
                record.offset(),
                item.reason[:1000],
                None if key is None else _text(key),
                None if value is None else base64.b64encode(value).decode(),
                json.dumps(headers),
            ),
        )
        self.summary.dead_letters += added
        if added:
            log.warning(
                "consumer %s: %s:%s:%s dead-lettered: %s",
                self.consumer.name,
                record.topic(),
                record.partition(),
                record.offset(),
                item.reason,
            )

    def _commit(self, records: Sequence[Message]) -> None:
        nexts: dict[tuple[str, int], int] = {}
        for record in records:
            where = (record.topic() or "", record.partition() or 0)
            nexts[where] = max(nexts.get(where, 0), (record.offset() or 0) + 1)
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in nexts.items()]
        try:
            self._kafka.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:  # a rebalance took the partition: its new owner redelivers, ids dedupe
            log.warning("consumer %s: commit failed: %s", self.consumer.name, error)

    def _partitions(self) -> dict[str, list[int]]:
        metadata = self._kafka.list_topics(timeout=METADATA_TIMEOUT_SECONDS).topics
        return {
            topic: sorted(metadata[topic].partitions)
            for topic in self._topics
            if topic in metadata and metadata[topic].error is None
        }

    def _end_offsets(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(low, high) watermark of every partition of the subscribed topics, as they are now."""
        return {
            (topic, partition): self._watermarks(topic, partition)
            for topic, partitions in self._partitions().items()
            for partition in partitions
        }

    def _reset_to_earliest(self) -> None:
        """Commit the earliest offsets for the group (a rebuild). Kafka refuses it while other members are active."""
        earliest = [
            TopicPartition(topic, partition, self._watermarks(topic, partition)[0])
            for topic, partitions in self._partitions().items()
            for partition in partitions
        ]
        if earliest:
            self._kafka.assign(earliest)
            self._kafka.commit(offsets=earliest, asynchronous=False)
            self._kafka.unassign()

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        where = TopicPartition(topic, partition)
        low, high = self._kafka.get_watermark_offsets(where, timeout=METADATA_TIMEOUT_SECONDS)
        return int(low), int(high)

    def _caught_up(self, ends: Mapping[tuple[str, int], tuple[int, int]]) -> bool:
        """Every partition's committed offset is at its end offset from the start (or it had nothing to read).

        The group's committed offsets, not this process's positions: they are what survives a restart.
        """
        pending = [where for where, (low, high) in ends.items() if low < high]
        if not pending:
            return True
        asked = [TopicPartition(topic, partition) for topic, partition in pending]
        committed = self._kafka.committed(asked, timeout=METADATA_TIMEOUT_SECONDS)
        return all(done.offset >= ends[(done.topic, done.partition)][1] for done in committed)


def _text(value: str | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value or ""
