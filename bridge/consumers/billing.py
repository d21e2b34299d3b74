"""The billing consumer: one billable send per (source, message id, recipient) the provider accepted.

Accepted means `message.created`, `message.sent` or `message.delivered`, whichever comes first by
`occurred_at`. The send is counted on the UTC day of that first event, and never twice: one row per
send (the primary key), and a later-read but earlier-occurred event moves it to its own day, so
replays, redeliveries, other event types for the same message and the order of arrival across
topics change nothing.
"""

from __future__ import annotations

from bridge.consumers.framework import Event, Query, Rows, iso, normalise_address
from bridge.consumers.store import Transaction

ACCEPTED = ("message.created", "message.sent", "message.delivered")
MIGRATIONS = (
    """CREATE TABLE billable_sends (
        source TEXT NOT NULL,
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        provider TEXT NOT NULL,
        first_event_type TEXT NOT NULL,
        first_event_id TEXT NOT NULL,
        first_event_at TEXT NOT NULL,
        billing_day TEXT NOT NULL,
        PRIMARY KEY (source, message_id, recipient)
    )""",
    "CREATE INDEX billable_sends_day ON billable_sends (billing_day)",
)
_EARLIER = (
    "(excluded.first_event_at, excluded.first_event_id) < "
    "(billable_sends.first_event_at, billable_sends.first_event_id)"
)
ADD = f"""
INSERT INTO billable_sends
    (source, message_id, recipient, provider, first_event_type, first_event_id, first_event_at, billing_day)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, message_id, recipient) DO UPDATE SET
    provider = CASE WHEN {_EARLIER} THEN excluded.provider ELSE billable_sends.provider END,
    first_event_type = CASE WHEN {_EARLIER} THEN excluded.first_event_type ELSE billable_sends.first_event_type END,
    billing_day = CASE WHEN {_EARLIER} THEN excluded.billing_day ELSE billable_sends.billing_day END,
    first_event_at = CASE WHEN {_EARLIER} THEN excluded.first_event_at ELSE billable_sends.first_event_at END,
    first_event_id = CASE WHEN {_EARLIER} THEN excluded.first_event_id ELSE billable_sends.first_event_id END
"""
PER_DAY = """
SELECT source, provider, billing_day, COUNT(*) FROM billable_sends
GROUP BY source, provider, billing_day ORDER BY billing_day, source, provider
"""
PER_MONTH = """
SELECT source, provider, SUBSTR(billing_day, 1, 7) AS month, COUNT(*) FROM billable_sends
GROUP BY source, provider, SUBSTR(billing_day, 1, 7) ORDER BY month, source, provider
"""


class Billing:
    name = "billing"
    event_types = ACCEPTED
    migrations = MIGRATIONS

    def apply(self, work: Transaction, event: Event) -> None:
        if event.event_type not in ACCEPTED or not event.message_id:
            return  # nothing identifies the send; providers always give accepted messages an id
        recipient = normalise_address(event.recipient or "")
        at = iso(event.occurred_at)
        work.execute(
            ADD,
            (event.source, event.message_id, recipient, event.provider, event.event_type, event.event_id, at, at[:10]),
        )

    def report(self, work: Transaction, query: Query) -> dict[str, Rows]:
        return {
            "per_day": [
                {"source": s, "provider": p, "day": day, "billable_sends": int(n)}
                for s, p, day, n in work.rows(PER_DAY)
            ],
            "per_month": [
                {"source": s, "provider": p, "month": month, "billable_sends": int(n)}
                for s, p, month, n in work.rows(PER_MONTH)
            ],
        }
