"""The billing consumer's rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bridge.consumers.billing import Billing
from bridge.consumers.framework import Query
from bridge.consumers.store import Store
from tests.support.consumers import DAY, event, feed, rows

NEXT_DAY = DAY + timedelta(hours=1)  # 2026-12-01T00:30Z: another day, another month


def sends(store: Store) -> list[tuple[object, ...]]:
    return rows(
        store, "SELECT source, message_id, recipient, provider, first_event_type, billing_day FROM billable_sends"
    )


def test_one_send_per_message_and_recipient_on_the_day_of_its_first_event(store: Store) -> None:
    feed(store, Billing(), event("message.created", DAY), event("message.sent", NEXT_DAY))
    feed(store, Billing(), event("message.delivered", NEXT_DAY))
    assert sends(store) == [("lm", "m-1", "user@example.com", "lettermint", "message.created", "2026-11-30")]


def test_an_earlier_event_read_later_moves_the_send_to_its_day(store: Store) -> None:
    feed(store, Billing(), event("message.delivered", NEXT_DAY))
    feed(store, Billing(), event("message.created", DAY))
    assert sends(store) == [("lm", "m-1", "user@example.com", "lettermint", "message.created", "2026-11-30")]


def test_redeliveries_and_replays_never_count_twice(store: Store) -> None:
    delivered = event("message.delivered", event_id="evt-1")
    feed(store, Billing(), delivered, delivered)
    feed(store, Billing(), delivered)
    assert len(sends(store)) == 1


def test_each_recipient_and_each_source_is_its_own_send(store: Store) -> None:
    feed(
        store,
        Billing(),
        event("message.delivered", recipient="a@example.com"),
        event("message.delivered", recipient="B@example.com"),
        event("message.delivered", recipient="b@example.com "),  # the same address
        event("message.delivered", source="pm", provider="postmark", recipient="a@example.com"),
        event("message.delivered", message_id=None),  # nothing identifies it
    )
    assert len(sends(store)) == 3


def test_report_per_day_and_per_month(store: Store) -> None:
    feed(
        store,
        Billing(),
        event("message.created", DAY, message_id="m-1"),
        event("message.created", DAY, message_id="m-2"),
        event("message.sent", NEXT_DAY, message_id="m-3"),
    )
    with store.transaction() as work:
        found = Billing().report(work, Query())
    assert found == {
        "per_day": [
            {"source": "lm", "provider": "lettermint", "day": "2026-11-30", "billable_sends": 2},
            {"source": "lm", "provider": "lettermint", "day": "2026-12-01", "billable_sends": 1},
        ],
        "per_month": [
            {"source": "lm", "provider": "lettermint", "month": "2026-11", "billable_sends": 2},
            {"source": "lm", "provider": "lettermint", "month": "2026-12", "billable_sends": 1},
        ],
    }
