"""Reading a topic for the commands (`consume`, `dlq`): from the start, or a group's committed offsets, to its end."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from bridge.logs import kafka_logger
from bridge.publisher import client_config
from bridge.settings import KafkaSettings

POLL_SECONDS = 1.0


def consumer(kafka: KafkaSettings, group: str) -> Consumer:
    """A consumer with the producer's address, TLS and SASL settings (kafka.producer is every librdkafka
    property the configuration gives, security_protocol, sasl and tls mapped), committing only when told to."""
    shared = client_config({"bootstrap.servers": kafka.bootstrap_servers, **kafka.producer})
    return Consumer(
        {
            **shared,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": kafka_logger(),  # librdkafka's lines through the bridge's handler, one per kind per 10 s
        }
    )


class MissingTopic(LookupError):
    """The topic does not exist (the consumer never creates one: allow.auto.create.topics is off)."""


def records(
    source: Consumer, topic: str, committed: bool = False, follow: bool = False, from_end: bool = False
) -> Iterator[Message]:
    """From the beginning (or the group's committed offsets, or with `from_end` the end) up to the end as it
    was at the start, or for ever with `follow`. Raises MissingTopic for a topic that does not exist."""
    metadata = source.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise MissingTopic(f"topic {topic} does not exist")
        raise KafkaException(metadata.error)
    partitions = sorted(metadata.partitions)
    bounds = {p: source.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    starts = {p: bounds[p][1 if from_end else 0] for p in partitions}
    if committed:
        for done in source.committed([TopicPartition(topic, p) for p in partitions], timeout=10):
            if done.offset >= 0:
                starts[done.partition] = max(done.offset, starts[done.partition])
    ends = {p: bounds[p][1] for p in partitions}
    pending = {p for p in partitions if starts[p] < ends[p]}
    if not (pending or follow):
        return
    source.assign([TopicPartition(topic, p, starts[p]) for p in partitions])
    while follow or pending:
        record = source.poll(POLL_SECONDS)
        if record is None:
            continue
        if record.error() is not None:
            raise KafkaException(record.error())
        partition, offset = record.partition() or 0, record.offset() or 0
        if offset + 1 >= ends[partition]:
            pending.discard(partition)
        if follow or offset < ends[partition]:
            yield record
