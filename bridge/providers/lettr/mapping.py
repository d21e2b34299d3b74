"""Lettr's payload: a JSON array of SparkPost-style `{"msys": {"<category>_event": {...}}}`, one event each.

Types map by meaning (docs/events.md, Lettr column; docs/providers.md#lettr-lettr for the table).
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.errors import PayloadInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.providers.auth import DIGITS
from bridge.providers.fields import (
    Details,
    as_list,
    derived_id,
    no_details,
    parse_json,
    parse_timestamp,
    stringify_map,
    text_field,
    unix_time,
)

# SparkPost writes `timestamp` as a string of Unix seconds; Lettr's docs show ISO 8601. Both are read.
UNIX_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
SMTP_CODE = re.compile(r"[245][0-9]{2}")
ENHANCED_STATUS = re.compile(r"(?<![.\d])[245]\.\d{1,3}\.\d{1,3}(?![.\d])")

# SparkPost bounce classification (support-docs deliverability/bounce-classification-codes.md): the
# Hard (10, 30, 90) and Admin (25, 80) categories are the ones SparkPost says warrant suppression.
# Soft, Block and Undetermined classes, and bounces without a class, are soft: usually temporary.
HARD_BOUNCE_CLASSES = frozenset({10, 25, 30, 80, 90})
BOUNCES = frozenset({"bounce", "out_of_band"})
INITIAL_OPENS = frozenset({"initial_open", "amp_initial_open"})
# Lettr's subscription names are `<category>.<type>`, with the legacy `engagament` spelling.
TYPE_PREFIXES = ("message.", "engagement.", "engagament.", "generation.", "unsubscribe.", "relay.")
# SparkPost's webhook validation batch is `[{"msys": {}}]`: published as webhook.test.
PING_EVENT = "ping"


def normalise(delivery: Delivery) -> list[CanonicalEvent]:
    """One event per batch element, in order; one bad element makes the whole batch PayloadInvalid."""
    return [_event(element, f"[{index}]", delivery) for index, element in enumerate(_parse_batch(delivery.body))]


def _parse_batch(body: bytes) -> list[dict[str, Any]]:
    value = parse_json(body)
    if not isinstance(value, list):
        raise PayloadInvalid(f"body is JSON {type(value).__name__}, expected an array of msys objects")
    for index, element in enumerate(value):
        if not isinstance(element, dict) or not isinstance(element.get("msys"), dict):
            raise PayloadInvalid(f"[{index}]: not an object with an msys object")
    return value


def _event(element: dict[str, Any], where: str, delivery: Delivery) -> CanonicalEvent:
    msys: dict[str, Any] = element["msys"]
    # Each event carries its own element, not the whole batch.
    raw = json.dumps(element, separators=(",", ":"), ensure_ascii=False)
    if not msys:
        return _ping(element, raw, delivery)
    if len(msys) != 1:
        raise PayloadInvalid(f"{where}.msys: expected one event category, got {', '.join(sorted(msys))}")
    [(category, data)] = msys.items()
    if not isinstance(data, dict):
        raise PayloadInvalid(f"{where}.msys.{category}: not an object")
    provider_event = data.get("type")
    if not isinstance(provider_event, str) or not provider_event:
        raise PayloadInvalid(f"{where}.msys.{category}.type: missing or not a string")
    kind = _kind(provider_event)
    event_type = _bounce_type(data) if kind in BOUNCES else TYPES.get(kind, UNMAPPED)
    message_id = text_field(data, "message_id")
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    event_id = text_field(data, "event_id") or text_field(data, "id") or _element_id(element)
    return CanonicalEvent.of(
        delivery,
        event_id=event_id,
        event_type=event_type,
        provider_event=provider_event,
        key=message_id or recipient or event_id,
        occurred_at=_occurred_at(data.get("timestamp"), f"{where}.msys.{category}.timestamp"),
        raw=raw,
        message_id=message_id,
        recipient=recipient,
        tags=tuple(tag for tag in as_list(data.get("rcpt_tags")) if isinstance(tag, str)),
        metadata=stringify_map(data.get("rcpt_meta")),
        details=DETAILS.get(event_type, no_details)(data, kind),
    )


def _ping(element: dict[str, Any], raw: str, delivery: Delivery) -> CanonicalEvent:
    """The validation batch has no time of its own: it happened as it arrived."""
    event_id = _element_id(element)
    return CanonicalEvent.of(
        delivery,
        event_id=event_id,
        event_type="webhook.test",
        provider_event=PING_EVENT,
        key=event_id,
        occurred_at=delivery.received_at,
        raw=raw,
    )


def _kind(provider_event: str) -> str:
    """`engagament.initial_open`, `engagement.initial_open` and `initial_open` are one type."""
    lowered = provider_event.lower()
    prefix = next((prefix for prefix in TYPE_PREFIXES if lowered.startswith(prefix)), "")
    return lowered[len(prefix) :]


def _bounce_class(data: dict[str, Any]) -> int | None:
    value = text_field(data, "bounce_class")
    return int(value) if value is not None and DIGITS.fullmatch(value) else None


def _bounce_type(data: dict[str, Any]) -> str:
    hard = _bounce_class(data) in HARD_BOUNCE_CLASSES
    return "message.hard_bounced" if hard else "message.soft_bounced"


def _occurred_at(value: object, field: str) -> datetime:
    if isinstance(value, str) and UNIX_SECONDS.fullmatch(value):
        return unix_time(float(value), field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return unix_time(value, field)
    return parse_timestamp(value, field)


def _element_id(element: dict[str, Any]) -> str:
    """Key order and whitespace do not change it; lone surrogates do not crash it."""
    canonical = json.dumps(element, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return derived_id(canonical.encode("utf-8", "surrogatepass"))


# --- Mapping by meaning ----------------------------------------------------------------------------

TYPES = {
    "injection": "message.created",
    "delivery": "message.delivered",
    "delay": "message.deferred",
    "spam_complaint": "message.spam_complaint",
    "policy_rejection": "message.policy_rejected",
    "generation_failure": "message.failed",
    "generation_rejection": "message.failed",
    "open": "message.opened",
    "initial_open": "message.opened",
    "amp_open": "message.opened",
    "amp_initial_open": "message.opened",
    "click": "message.clicked",
    "amp_click": "message.clicked",
    "list_unsubscribe": "message.unsubscribed",
    "link_unsubscribe": "message.unsubscribed",
    # The inbound message handed to your endpoint, the event Lettr's docs say to process. The other
    # relay_* events (queued, rejected, endpoint temp/perm failure) have no canonical type: unmapped.
    "relay_delivery": "message.inbound",
}

# Which recipient list of message.created the event's single recipient belongs to.
RECIPIENT_LISTS = {"to": "to", "cc": "cc", "bcc": "bcc"}


def _sender(data: dict[str, Any]) -> tuple[str | None, str | None]:
    name, address = email.utils.parseaddr(text_field(data, "friendly_from") or "")
    return address or text_field(data, "msg_from"), name or None


def _created(data: dict[str, Any], kind: str) -> Details:
    address, name = _sender(data)
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    listed = RECIPIENT_LISTS.get(text_field(data, "rcpt_type") or "to")
    lists: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
    if recipient and listed:
        lists[listed].append(recipient)
    return {
        "subject": text_field(data, "subject"),
        "from_address": address,
        "from_name": name,
        **lists,
        "reply_to": None,
    }


def _smtp_result(data: dict[str, Any], kind: str) -> Details:
    code = text_field(data, "error_code")
    responses = [text for text in (text_field(data, "raw_reason"), text_field(data, "reason")) if text]
    # Searched, not matched at the start: SparkPost quotes replies inside its own text. The lookarounds
    # keep an IP address ("IP (5.99.99.99)") from reading as a status code.
    enhanced = next((found.group() for text in responses if (found := ENHANCED_STATUS.search(text))), None)
    return {
        "reason": text_field(data, "reason"),
        "smtp_status_code": int(code) if code and SMTP_CODE.fullmatch(code) else None,
        "smtp_enhanced_status_code": enhanced,
        "smtp_response": text_field(data, "raw_reason"),
    }


def _classified(data: dict[str, Any], kind: str) -> Details:
    return {**_smtp_result(data, kind), "bounce_class": text_field(data, "bounce_class")}


def _failed(data: dict[str, Any], kind: str) -> Details:
    return {**_smtp_result(data, kind), "error_code": text_field(data, "error_code")}


def _opened(data: dict[str, Any], kind: str) -> Details:
    return {
        "subject": text_field(data, "subject"),
        # initial_* is the first open; SparkPost also sends `open` for a first open, so it says nothing.
        "first": True if kind in INITIAL_OPENS else None,
        "user_agent": text_field(data, "user_agent"),
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": text_field(data, "ip_address"),
    }


def _clicked(data: dict[str, Any], kind: str) -> Details:
    return {**_opened(data, kind), "url": text_field(data, "target_link_url"), "link_index": None}


def _policy_rejected(data: dict[str, Any], kind: str) -> Details:
    return {
        "subject": text_field(data, "subject"),
        "reason": text_field(data, "reason"),
        "spam_score": None,
        "spam_symbols": [],
    }


def _inbound(data: dict[str, Any], kind: str) -> Details:
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    return {
        "subject": text_field(data, "subject"),
        "from_address": _sender(data)[0],
        "to": [recipient] if recipient else [],
        "route": None,
        "is_spam": None,
        "spam_score": None,
    }


DETAILS: dict[str, Callable[[dict[str, Any], str], Details]] = {
    "message.created": _created,
    "message.delivered": _smtp_result,
    "message.deferred": _classified,
    "message.soft_bounced": _classified,
    "message.hard_bounced": _classified,
    "message.failed": _failed,
    "message.spam_complaint": lambda data, kind: {"feedback_type": text_field(data, "fbtype")},
    "message.policy_rejected": _policy_rejected,
    "message.opened": _opened,
    "message.clicked": _clicked,
    "message.inbound": _inbound,
}
