"""The analytics consumer: events per source, provider, canonical type and hour, and the rates per source and hour.

Hours are UTC hours of `occurred_at` (when it happened at the provider, not when it reached us),
so a replay or a late redelivery lands in the same bucket. Rates are computed when reported:

- delivery rate = delivered / (delivered + bounced + failed), bounced = hard + soft bounces;
- bounce rate = bounced / (delivered + bounced + failed);
- complaint rate = spam complaints / delivered (the mailbox providers' measure);

each `null` where its denominator is 0. The report covers the 24 hours up to the newest hour in
the store (not the wall clock), so the same store always gives the same report.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from bridge.consumers.framework import Event, Query, Rows
from bridge.consumers.store import Transaction
from bridge.events import EVENT_TYPES

COUNTED = tuple(event_type for event_type in EVENT_TYPES if event_type.startswith("message."))
DELIVERED = "message.delivered"
BOUNCED = ("message.hard_bounced", "message.soft_bounced")
FAILED = "message.failed"
COMPLAINED = "message.spam_complaint"
REPORT_HOURS = 24
HOUR_FORMAT = "%Y-%m-%dT%H:00:00Z"
MIGRATIONS = (
    """CREATE TABLE analytics_counts (
        source TEXT NOT NULL,
        provider TEXT NOT NULL,
        event_type TEXT NOT NULL,
        hour TEXT NOT NULL,
        events BIGINT NOT NULL,
        PRIMARY KEY (source, provider, event_type, hour)
    )""",
    "CREATE INDEX analytics_counts_hour ON analytics_counts (hour)",
)
ADD = """
INSERT INTO analytics_counts (source, provider, event_type, hour, events) VALUES (?, ?, ?, ?, 1)
ON CONFLICT (source, provider, event_type, hour) DO UPDATE SET events = analytics_counts.events + 1
"""
COUNTS = """
SELECT hour, source, provider, event_type, events FROM analytics_counts WHERE hour >= ?
ORDER BY hour, source, provider, event_type
"""


class Analytics:
    name = "analytics"
    event_types = COUNTED
    migrations = MIGRATIONS

    def apply(self, work: Transaction, event: Event) -> None:
        work.execute(ADD, (event.source, event.provider, event.event_type, hour_of(event.occurred_at)))

    def report(self, work: Transaction, query: Query) -> dict[str, Rows]:
        [(newest,)] = work.rows("SELECT MAX(hour) FROM analytics_counts")
        if newest is None:
            return {"counts": [], "rates": []}
        since = datetime.strptime(newest, HOUR_FORMAT) - timedelta(hours=REPORT_HOURS - 1)
        counts: Rows = [
            {"hour": hour, "source": source, "provider": provider, "event_type": event_type, "events": int(events)}
            for hour, source, provider, event_type, events in work.rows(COUNTS, (since.strftime(HOUR_FORMAT),))
        ]
        return {"counts": counts, "rates": rates(counts)}


def hour_of(moment: datetime) -> str:
    """The UTC hour `moment` falls in, as the store keeps it."""
    return moment.astimezone(UTC).strftime(HOUR_FORMAT)


def rates(counts: Rows) -> Rows:
    """Delivery, bounce and complaint rate per source and hour, all providers of the source together."""
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in counts:
        totals[(str(row["hour"]), str(row["source"]))][str(row["event_type"])] += int(str(row["events"]))
    found: Rows = []
    for (hour, source), by_type in sorted(totals.items()):
        delivered, failed, complaints = by_type[DELIVERED], by_type[FAILED], by_type[COMPLAINED]
        bounced = sum(by_type[name] for name in BOUNCED)
        outcomes = delivered + bounced + failed
        found.append(
            {
                "hour": hour,
                "source": source,
                "delivered": delivered,
                "bounced": bounced,
                "failed": failed,
                "complaints": complaints,
                "delivery_rate": _ratio(delivered, outcomes),
                "bounce_rate": _ratio(bounced, outcomes),
                "complaint_rate": _ratio(complaints, delivered),
            }
        )
    return found


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)
