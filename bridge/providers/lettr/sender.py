"""`bridge send-test` for Lettr: one-element batches in SparkPost's sample shape, signed with `lettr-signature`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.providers.lettr.signature import SIGNATURE_HEADER, plain_signature

if TYPE_CHECKING:  # the package imports this module to build its SPEC
    from bridge.providers.lettr import LettrSource

NO_SIGNATURE_SECRET = (
    "a Lettr test delivery is signed with a lettr-signature secret and this source has none; "
    "Basic and Bearer credentials are not built by send-test (curl -u user:password works for Basic)"
)


def signature_headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers of a delivery of `body` signed with `secret`: the knowledge-base form, hex HMAC of the body."""
    return {SIGNATURE_HEADER: plain_signature(secret, body), "Content-Type": "application/json"}


class LettrSender:
    """Examples of every canonical type Lettr sends, signed with the source's first signature secret."""

    def example(self, event_type: str, now: datetime) -> bytes:
        if event_type == "webhook.test":
            return b'[{"msys":{}}]'
        if event_type not in _EXAMPLES:
            sendable = ", ".join(sorted([*_EXAMPLES, "webhook.test"]))
            raise ValueError(f"Lettr sends no event that maps to {event_type}; it can send: {sendable}")
        category, kind, extra = _EXAMPLES[event_type]
        data = {"type": kind, **_example_common(kind, now), **extra}
        return json.dumps([{"msys": {category: data}}], separators=(",", ":"), ensure_ascii=False).encode()

    def sign(self, body: bytes, source: LettrSource, now: float) -> tuple[bytes, dict[str, str]]:
        # The plain form signs no time, so `now` is not used.
        secrets = source.secret_values()
        if not secrets:
            raise ValueError(NO_SIGNATURE_SECRET)
        return body, signature_headers(body, secrets[0])


_USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
# canonical type → (msys category, Lettr type, fields beyond the common ones)
_EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "message.created": ("message_event", "injection", {"msg_size": "1337"}),
    "message.delivered": ("message_event", "delivery", {"num_retries": "0", "queue_time": "412"}),
    "message.deferred": (
        "message_event",
        "delay",
        {"bounce_class": "22", "error_code": "452", "raw_reason": "452 4.2.2 Mailbox full", "reason": "Mailbox full"},
    ),
    "message.soft_bounced": (
        "message_event",
        "bounce",
        {"bounce_class": "22", "error_code": "452", "raw_reason": "452 4.2.2 Mailbox full", "reason": "Mailbox full"},
    ),
    "message.hard_bounced": (
        "message_event",
        "bounce",
        {"bounce_class": "10", "error_code": "550", "raw_reason": "550 5.1.1 User unknown", "reason": "User unknown"},
    ),
    "message.spam_complaint": ("message_event", "spam_complaint", {"fbtype": "abuse", "report_by": "example.com"}),
    "message.failed": (
        "gen_event",
        "generation_failure",
        {"error_code": "554", "raw_reason": "554 5.3.3 [internal] Error while rendering part html"},
    ),
    "message.policy_rejected": (
        "message_event",
        "policy_rejection",
        {"bounce_class": "25", "error_code": "554", "reason": "554 5.7.1 recipient address suppressed"},
    ),
    "message.opened": ("track_event", "initial_open", {"user_agent": _USER_AGENT, "ip_address": "203.0.113.7"}),
    "message.clicked": (
        "track_event",
        "click",
        {"user_agent": _USER_AGENT, "ip_address": "203.0.113.7", "target_link_url": "https://example.com/welcome"},
    ),
    "message.unsubscribed": ("unsubscribe_event", "link_unsubscribe", {"user_agent": _USER_AGENT}),
    "message.inbound": ("relay_event", "relay_delivery", {"rcpt_to": "support@inbound.example.com"}),
}


def _example_common(kind: str, now: datetime) -> dict[str, Any]:
    common: dict[str, Any] = {
        "event_id": str(uuid.uuid4().int)[:17],
        "timestamp": str(int(now.timestamp())),
        "rcpt_to": "user@example.com",
        "friendly_from": "bridge send-test <sender@example.com>",
        "msg_from": "bounces@example.com",
        "subject": "Hello from bridge send-test",
    }
    if kind.startswith("relay_"):  # inbound: no outbound message, transmission or tags
        return common
    return {
        **common,
        "message_id": uuid.uuid4().hex[:20],
        "transmission_id": str(uuid.uuid4().int)[:17],
        "rcpt_meta": {"sent_by": "bridge send-test"},
        "rcpt_tags": ["send-test"],
    }
