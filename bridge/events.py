"""CanonicalEvent: the only shape that leaves providers/, and the topic it goes to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.headers import Headers

UNMAPPED = "unmapped"
DEAD_LETTER = "dead-letter"

# The canonical vocabulary (docs/events.md). Each has schemas/<type>.avsc; "unmapped"
# carries a provider event we have no canonical name for, raw, so nothing is dropped.
EVENT_TYPES = (
    "message.created",
    "message.sent",
    "message.delivered",
    "message.deferred",
    "message.soft_bounced",
    "message.hard_bounced",
    "message.spam_complaint",
    "message.failed",
    "message.policy_rejected",
    "message.suppressed",
    "message.opened",
    "message.clicked",
    "message.unsubscribed",
    "message.inbound",
    "message.read",
    "message.scheduled",
    "message.rescheduled",
    "message.canceled",
    "message.released",
    "message.auto_replied",
    "suppression.added",
    "suppression.removed",
    "session.disconnected",
    "verification.completed",
    "verification.expired",
    "webhook.test",
    UNMAPPED,
)
# What follows `<prefix>.` in every topic the bridge writes: one per event type (unmapped included), dead letters.
WRITTEN_TOPICS = (*EVENT_TYPES, DEAD_LETTER)

CHANNELS = ("email", "sms", "whatsapp")


@dataclass(frozen=True)
class Delivery:
    """One verified HTTP delivery, as the provider sent it."""

    source: str
    provider: str
    headers: Headers
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class CanonicalEvent:
    """One provider event in the canonical vocabulary.

    `key` is the record key: the message id, or the natural id of what the event is about where
    there is no message (suppressed address, webhook id). `details` holds the fields of this
    event type's schema beyond the common ones.
    """

    event_id: str
    event_type: str
    provider: str
    source: str
    provider_event: str
    key: str
    occurred_at: datetime
    received_at: datetime
    raw: str
    channel: str = "email"
    message_id: str | None = None
    recipient: str | None = None
    attempt: int | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, delivery: Delivery, **fields: Any) -> CanonicalEvent:
        """An event of `delivery`: provider, source and received_at from it, `raw` the body unless given."""
        if "raw" not in fields:
            fields["raw"] = delivery.body.decode("utf-8")
        return cls(provider=delivery.provider, source=delivery.source, received_at=delivery.received_at, **fields)


def topic_for(prefix: str, event_type: str) -> str:
    return f"{prefix}.{event_type}"
