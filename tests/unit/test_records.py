"""records: the event and dead-letter record format, and a dead letter read back as the Delivery it came from."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.records import dead_letter_record, event_record, read_dead_letter

RECEIVED = datetime(2026, 12, 1, 9, 30, 15, 123000, tzinfo=UTC)
RAW = [
    (b"content-type", b"application/json"),
    (b"x-lettermint-signature", b"t=1,v1=ab"),
    (b"authorization", b"Basic c2VjcmV0"),
    (b"x-repeated", b"one"),
    (b"x-repeated", b"two"),
    (b"x-latin", "caf\u00e9".encode("latin-1")),
]
DELIVERY = Delivery("lm", "lettermint", Headers(raw=RAW), b'{"not": "usable"}\xff', RECEIVED)
PRIVATE = frozenset({"authorization"})


def test_a_dead_letter_reads_back_as_the_delivery_that_made_it_less_its_credentials() -> None:
    record = dead_letter_record("webhooks", DELIVERY, "data: missing", PRIVATE)
    assert (record.topic, record.key, record.value) == ("webhooks.dead-letter", b"lm", DELIVERY.body)
    letter = read_dead_letter(record.value, [(name, value) for name, value in record.headers])
    assert letter.reason == "data: missing"
    public = Headers(raw=[pair for pair in RAW if pair[0] != b"authorization"])
    assert letter.delivery == Delivery("lm", "lettermint", public, DELIVERY.body, RECEIVED)
    assert letter.delivery.headers.getlist("x-repeated") == ["one", "two"]


def test_the_dead_letter_headers_are_the_documented_ones() -> None:
    record = dead_letter_record("webhooks", DELIVERY, "why", PRIVATE)
    names = [name for name, _ in record.headers]
    assert names[:4] == ["dead_letter_reason", "provider", "source", "received_at"]
    assert dict(record.headers)["received_at"] == b"2026-12-01T09:30:15.123+00:00"
    assert "http.authorization" not in names
    assert names.count("http.x-repeated") == 2


def test_a_record_that_is_not_a_dead_letter_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no dead_letter_reason, received_at header"):
        read_dead_letter(b"{}", [("provider", b"lettermint"), ("source", b"lm")])


def test_event_records_carry_the_contract_headers() -> None:
    event = CanonicalEvent.of(
        DELIVERY,
        event_id="e1",
        event_type="message.delivered",
        provider_event="message.delivered",
        key="m1",
        occurred_at=RECEIVED,
        raw="{}",
        attempt=3,
    )
    record = event_record("webhooks", event, b"\x00avro")
    assert (record.topic, record.key, record.value) == ("webhooks.message.delivered", b"m1", b"\x00avro")
    assert record.headers == [
        ("event_id", b"e1"),
        ("event_type", b"message.delivered"),
        ("provider", b"lettermint"),
        ("source", b"lm"),
        ("attempt", b"3"),
        ("received_at", b"2026-12-01T09:30:15.123+00:00"),
    ]


def test_headers_are_case_insensitive_and_keep_repeats_and_order() -> None:
    headers = Headers(raw=[(b"X-One", b"1"), (b"x-one", b"2")])
    assert (headers["x-ONE"], headers.getlist("X-One"), "x-one" in headers, "x-two" in headers) == (
        "1",
        ["1", "2"],
        True,
        False,
    )
    assert headers.get("missing") is None
    assert list(headers) == ["x-one"] and len(headers) == 1
    assert Headers({"Content-Type": "a"}) == Headers(raw=[(b"content-type", b"a")])
    with pytest.raises(KeyError):
        headers["x-two"]
