"""The suppression consumer: addresses that must not be mailed, from bounces, complaints and unsubscribes.

An address is added (or refreshed) by a hard bounce, a spam complaint, an unsubscribe or a
provider's `suppression.added`, and removed by `suppression.removed`. A soft bounce does not
suppress. Records of different topics reach a consumer in no defined order, so every change is
decided by the events' `occurred_at`, never by arrival: a removal hides the entry only if no
suppressing event is newer, and the row stays as a tombstone that remembers when. A rebuild from
the earliest offsets therefore ends in the same table whatever the interleaving.
"""

from __future__ import annotations

from bridge.consumers.framework import Event, Query, Rows, iso, normalise_address
from bridge.consumers.store import Row, Transaction

SUPPRESSING = ("message.hard_bounced", "message.spam_complaint", "message.unsubscribed", "suppression.added")
REMOVING = "suppression.removed"
COLUMNS = ("address", "reason", "detail", "provider", "source", "first_seen", "last_seen", "event_count")
MIGRATIONS = (
    """CREATE TABLE suppressions (
        address TEXT PRIMARY KEY,
        reason TEXT,
        detail TEXT,
        provider TEXT,
        source TEXT,
        first_seen TEXT,
        last_seen TEXT,
        last_event_id TEXT,
        event_count BIGINT NOT NULL,
        removed_at TEXT
    )""",
)
# The newest suppressing event wins reason, provider and source; ties by event id, so the order of arrival never does.
_NEWER = (
    "(suppressions.last_seen IS NULL OR (excluded.last_seen, excluded.last_event_id) > "
    "(suppressions.last_seen, suppressions.last_event_id))"
)
ADD = f"""
INSERT INTO suppressions (address, reason, detail, provider, source, first_seen, last_seen, last_event_id, event_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (address) DO UPDATE SET
    reason = CASE WHEN {_NEWER} THEN excluded.reason ELSE suppressions.reason END,
    detail = CASE WHEN {_NEWER} THEN excluded.detail ELSE suppressions.detail END,
    provider = CASE WHEN {_NEWER} THEN excluded.provider ELSE suppressions.provider END,
    source = CASE WHEN {_NEWER} THEN excluded.source ELSE suppressions.source END,
    last_event_id = CASE WHEN {_NEWER} THEN excluded.last_event_id ELSE suppressions.last_event_id END,
    last_seen = CASE WHEN {_NEWER} THEN excluded.last_seen ELSE suppressions.last_seen END,
    first_seen = CASE WHEN suppressions.first_seen IS NULL OR excluded.first_seen < suppressions.first_seen
        THEN excluded.first_seen ELSE suppressions.first_seen END,
    event_count = suppressions.event_count + 1
"""
REMOVE = """
INSERT INTO suppressions (address, event_count, removed_at) VALUES (?, 0, ?)
ON CONFLICT (address) DO UPDATE SET
    removed_at = CASE WHEN suppressions.removed_at IS NULL OR excluded.removed_at > suppressions.removed_at
        THEN excluded.removed_at ELSE suppressions.removed_at END
"""
# Suppressed: some suppressing event, and none removed it later (a removal at the same millisecond wins).
ACTIVE = "last_seen IS NOT NULL AND (removed_at IS NULL OR last_seen > removed_at)"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM suppressions WHERE {ACTIVE}"


class Suppression:
    name = "suppression"
    event_types = (*SUPPRESSING, REMOVING)
    migrations = MIGRATIONS

    def apply(self, work: Transaction, event: Event) -> None:
        address = address_of(event)
        if address is None:
            return  # nothing names an address (an SMS event without a number): nothing to suppress
        if event.event_type == REMOVING:
            work.execute(REMOVE, (address, iso(event.occurred_at)))
            return
        if event.event_type not in SUPPRESSING:
            return  # a soft bounce, say: the address may work tomorrow
        at = iso(event.occurred_at)
        detail = next(
            (str(event.fields[k]) for k in ("reason", "feedback_type", "suppression_type") if event.fields.get(k)), None
        )
        work.execute(ADD, (address, event.event_type, detail, event.provider, event.source, at, at, event.event_id))

    def report(self, work: Transaction, query: Query) -> dict[str, Rows]:
        if query.address is not None:
            found = lookup(work, query.address)
            return {"suppressions": [] if found is None else [found]}
        return {"suppressions": [_entry(row) for row in work.rows(SELECT + " ORDER BY address")]}


def lookup(work: Transaction, address: str) -> dict[str, object] | None:
    """The entry for `address` (normalised) if it is suppressed now, else None."""
    rows = work.rows(SELECT + " AND address = ?", (normalise_address(address),))
    return _entry(rows[0]) if rows else None


def address_of(event: Event) -> str | None:
    """`suppression.*` name the value (`value`); message events the recipient."""
    raw = event.fields.get("value") if event.event_type.startswith("suppression.") else None
    raw = raw or event.recipient
    return normalise_address(raw) if isinstance(raw, str) and raw.strip() else None


def _entry(row: Row) -> dict[str, object]:
    entry = dict(zip(COLUMNS, row, strict=True))
    entry["event_count"] = int(row[-1])
    return entry
