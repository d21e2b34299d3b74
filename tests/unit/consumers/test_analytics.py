"""The analytics consumer's counts and rates, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bridge.consumers.analytics import Analytics, rates
from bridge.consumers.framework import Query
from bridge.consumers.store import Store
from tests.support.consumers import DAY, event, feed


def report(store: Store) -> dict[str, list[dict[str, object]]]:
    with store.transaction() as work:
        return Analytics().report(work, Query())


def test_counts_per_source_provider_type_and_hour_once_per_event(store: Store) -> None:
    delivered = event("message.delivered", DAY, event_id="evt-1")
    feed(store, Analytics(), delivered, delivered, event("message.delivered", DAY + timedelta(minutes=29)))
    feed(store, Analytics(), event("message.opened", DAY, provider="sendgrid", source="sg"), delivered)
    assert report(store)["counts"] == [
        {
            "hour": "2026-11-30T23:00:00Z",
            "source": "lm",
            "provider": "lettermint",
            "event_type": "message.delivered",
            "events": 2,
        },
        {
            "hour": "2026-11-30T23:00:00Z",
            "source": "sg",
            "provider": "sendgrid",
            "event_type": "message.opened",
            "events": 1,
        },
    ]


def test_rates_per_source_and_hour() -> None:
    counts = [
        {"hour": "h", "source": "lm", "provider": "lettermint", "event_type": "message.delivered", "events": 6},
        {"hour": "h", "source": "lm", "provider": "lettermint", "event_type": "message.hard_bounced", "events": 1},
        {"hour": "h", "source": "lm", "provider": "lettermint", "event_type": "message.soft_bounced", "events": 1},
        {"hour": "h", "source": "lm", "provider": "lettermint", "event_type": "message.failed", "events": 2},
        {"hour": "h", "source": "lm", "provider": "lettermint", "event_type": "message.spam_complaint", "events": 3},
        {"hour": "h", "source": "sg", "provider": "sendgrid", "event_type": "message.opened", "events": 4},
    ]
    assert rates(counts) == [
        {
            "hour": "h",
            "source": "lm",
            "delivered": 6,
            "bounced": 2,
            "failed": 2,
            "complaints": 3,
            "delivery_rate": 0.6,
            "bounce_rate": 0.2,
            "complaint_rate": 0.5,
        },
        {
            "hour": "h",
            "source": "sg",
            "delivered": 0,
            "bounced": 0,
            "failed": 0,
            "complaints": 0,
            "delivery_rate": None,
            "bounce_rate": None,
            "complaint_rate": None,
        },
    ]


def test_the_report_covers_the_24_hours_up_to_the_newest_event(store: Store) -> None:
    feed(
        store,
        Analytics(),
        event("message.delivered", DAY - timedelta(hours=24)),  # 25 hours before the newest: out
        event("message.delivered", DAY - timedelta(hours=23)),
        event("message.delivered", DAY),
    )
    assert [row["hour"] for row in report(store)["counts"]] == ["2026-11-30T00:00:00Z", "2026-11-30T23:00:00Z"]


def test_an_empty_store_reports_nothing(store: Store) -> None:
    feed(store, Analytics())
    assert report(store) == {"counts": [], "rates": []}
