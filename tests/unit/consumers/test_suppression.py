"""The suppression consumer's rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from bridge.consumers.framework import Query
from bridge.consumers.store import Store
from bridge.consumers.suppression import Suppression, lookup
from tests.support.consumers import DAY, event, feed

LATER = DAY + timedelta(hours=1)


def report(store: Store, address: str | None = None) -> list[dict[str, object]]:
    with store.transaction() as work:
        return Suppression().report(work, Query(address=address))["suppressions"]


def test_a_hard_bounce_suppresses_and_a_soft_bounce_does_not(store: Store) -> None:
    feed(
        store,
        Suppression(),
        event("message.hard_bounced", recipient="Hard@Example.com ", reason="550 5.1.1 no such user"),
        event("message.soft_bounced", recipient="soft@example.com"),
    )
    assert report(store) == [
        {
            "address": "hard@example.com",
            "reason": "message.hard_bounced",
            "detail": "550 5.1.1 no such user",
            "provider": "lettermint",
            "source": "lm",
            "first_seen": "2026-11-30T23:30:00.000Z",
            "last_seen": "2026-11-30T23:30:00.000Z",
            "event_count": 1,
        }
    ]


def test_a_redelivered_event_changes_nothing(store: Store) -> None:
    bounce = event("message.hard_bounced", event_id="evt-1")
    assert feed(store, Suppression(), bounce, bounce) == 1
    assert feed(store, Suppression(), bounce) == 0
    assert report(store)[0]["event_count"] == 1


def test_a_later_complaint_from_another_provider_refreshes_the_entry(store: Store) -> None:
    feed(store, Suppression(), event("message.hard_bounced"))
    complaint = event("message.spam_complaint", LATER, provider="postmark", source="pm", feedback_type="abuse")
    feed(store, Suppression(), complaint)
    [entry] = report(store)
    assert (entry["reason"], entry["detail"], entry["provider"], entry["source"]) == (
        "message.spam_complaint",
        "abuse",
        "postmark",
        "pm",
    )
    assert (entry["first_seen"], entry["last_seen"], entry["event_count"]) == (
        "2026-11-30T23:30:00.000Z",
        "2026-12-01T00:30:00.000Z",
        2,
    )


def test_an_older_event_read_later_keeps_the_newest_reason_but_counts(store: Store) -> None:
    feed(store, Suppression(), event("message.unsubscribed", LATER))
    feed(store, Suppression(), event("message.hard_bounced", DAY))
    [entry] = report(store)
    assert (entry["reason"], entry["first_seen"], entry["event_count"]) == (
        "message.unsubscribed",
        "2026-11-30T23:30:00.000Z",
        2,
    )


def test_suppression_removed_removes_and_a_newer_add_brings_it_back(store: Store) -> None:
    added = event("suppression.added", DAY, value="x@example.com", suppression_type="manual", recipient=None)
    feed(store, Suppression(), added, event("suppression.removed", LATER, value="X@example.com", recipient=None))
    assert report(store) == []
    feed(store, Suppression(), event("message.hard_bounced", LATER + timedelta(minutes=1), recipient="x@example.com"))
    assert [entry["address"] for entry in report(store)] == ["x@example.com"]


def test_a_removal_read_before_an_older_add_still_wins(store: Store) -> None:
    """Records of two topics arrive in any order: time decides, so a rebuild ends the same."""
    feed(store, Suppression(), event("suppression.removed", LATER, value="x@example.com"))
    feed(store, Suppression(), event("suppression.added", DAY, value="x@example.com"))
    assert report(store) == []


def test_report_and_lookup_by_address_ignore_case(store: Store) -> None:
    feed(store, Suppression(), event("message.hard_bounced", recipient="a@example.com"))
    assert [entry["address"] for entry in report(store, " A@EXAMPLE.com")] == ["a@example.com"]
    assert report(store, "b@example.com") == []
    with store.transaction() as work:
        assert lookup(work, "nobody@example.com") is None


def test_an_event_without_an_address_is_skipped(store: Store) -> None:
    assert feed(store, Suppression(), event("message.hard_bounced", recipient=None)) == 1
    assert report(store) == []
