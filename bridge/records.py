"""The Kafka record format, in one place: event records, dead-letter records, their headers, and the way back.

Topic names, keys and header names are a contract with downstream teams (README, "Topics and
records"): change them only backward-compatibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bridge.events import DEAD_LETTER, CanonicalEvent, Delivery, topic_for
from bridge.headers import Headers

# Event record headers.
EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
PROVIDER = "provider"
SOURCE = "source"
ATTEMPT = "attempt"
RECEIVED_AT = "received_at"
# Dead-letter record headers: why, where from, and every request header as `http.<name>`.
DEAD_LETTER_REASON = "dead_letter_reason"
HTTP_PREFIX = "http."

# Dead-letter reasons quote payload values: bounded, so a reason cannot double a record.
MAX_REASON_CHARS = 300
# What a record carries beyond the body and the request headers: the key, the bridge's own headers,
# the Avro framing. A record above its limit is refused before Kafka sees it.
RECORD_OVERHEAD_BYTES = 64 * 1024
# Kafka's framing around one record in a batch, well above the ~100 bytes it takes.
BATCH_OVERHEAD_BYTES = 2048

RecordHeaders = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: RecordHeaders = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    """A dead-letter record read back: the delivery that produced it, and why it could not be used."""

    delivery: Delivery
    reason: str


def record_limit(max_body_bytes: int, max_header_bytes: int) -> int:
    """The largest record the bridge writes, so that every body it accepts can be published.

    An event record holds the body (`raw`) and the fields read from it, each a part of that same
    body: twice the body bounds it. A dead letter holds the body and the request headers. An event
    record beyond this (fields that repeat one value) is dead-lettered, and the dead letter fits.
    """
    return 2 * max_body_bytes + max_header_bytes + RECORD_OVERHEAD_BYTES


def topic_limit(record_bytes: int) -> int:
    """The `max.message.bytes` a topic needs for records of `record_bytes` (a batch of one, framed)."""
    return record_bytes + BATCH_OVERHEAD_BYTES


def record_size(record: Record) -> int:
    """Key, value and headers: what the producer counts against `message.max.bytes`."""
    headers = sum(len(name) + len(value or b"") for name, value in record.headers)
    return len(record.key) + len(record.value) + headers


def bounded_reason(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


def event_record(prefix: str, event: CanonicalEvent, value: bytes) -> Record:
    """`value` is the event, Avro-encoded; the key is the event's message id (or its stand-in)."""
    return Record(
        topic=topic_for(prefix, event.event_type),
        key=event.key.encode(),
        value=value,
        headers=[
            (EVENT_ID, event.event_id.encode()),
            (EVENT_TYPE, event.event_type.encode()),
            (PROVIDER, event.provider.encode()),
            (SOURCE, event.source.encode()),
            (ATTEMPT, b"" if event.attempt is None else str(event.attempt).encode()),
            (RECEIVED_AT, _timestamp(event.received_at)),
        ],
    )


def dead_letter_record(prefix: str, delivery: Delivery, reason: str, private: frozenset[str]) -> Record:
    """The raw body, whole, with why and where from in headers, so it can be replayed after a fix.

    Request headers named in `private` (credentials) are left out; the reason is cut to MAX_REASON_CHARS.
    """
    headers: RecordHeaders = [
        (DEAD_LETTER_REASON, bounded_reason(reason).encode()),
        (PROVIDER, delivery.provider.encode()),
        (SOURCE, delivery.source.encode()),
        (RECEIVED_AT, _timestamp(delivery.received_at)),
    ]
    headers += [
        (HTTP_PREFIX + name.decode("latin-1"), value)
        for name, value in delivery.headers.raw
        if name.decode("latin-1") not in private
    ]
    return Record(
        topic=topic_for(prefix, DEAD_LETTER), key=delivery.source.encode(), value=delivery.body, headers=headers
    )


def read_dead_letter(value: bytes | None, headers: Sequence[tuple[str, bytes | str | None]]) -> DeadLetter:
    """The inverse of `dead_letter_record`: the same Delivery (less its private headers) and the reason.

    ValueError if the record lacks a header every dead letter has.
    """
    found: dict[str, str] = {}
    request: list[tuple[bytes, bytes]] = []
    for name, raw in headers:
        data = raw.encode() if isinstance(raw, str) else raw or b""
        if name.startswith(HTTP_PREFIX):
            request.append((name[len(HTTP_PREFIX) :].encode("latin-1"), data))
        else:
            found.setdefault(name, data.decode("utf-8", "replace"))
    missing = [name for name in (DEAD_LETTER_REASON, PROVIDER, SOURCE, RECEIVED_AT) if name not in found]
    if missing:
        raise ValueError(f"not a dead-letter record: no {', '.join(missing)} header")
    delivery = Delivery(
        source=found[SOURCE],
        provider=found[PROVIDER],
        headers=Headers(raw=request),
        body=value or b"",
        received_at=datetime.fromisoformat(found[RECEIVED_AT]),
    )
    return DeadLetter(delivery, found[DEAD_LETTER_REASON])


def _timestamp(moment: datetime) -> bytes:
    return moment.isoformat(timespec="milliseconds").encode()
